"""`scaling data prepare FILES... --tokenizer PATH --out DIR`: tokenize a corpus into token shards once."""
from __future__ import annotations

import json
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "data", help="prepare your own corpus as token shards",
        description="Corpora: `data prepare` tokenizes text files with a pretrained tokenizer into token shards "
        "that runs read with `data: {source: shards, paths: [DIR]}`.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "prepare", help="tokenize .txt/.jsonl/.parquet files into token shards (resumes when run again)",
        description="Tokenize FILES (files, folders or globs of .txt, .jsonl, .parquet) with a Hugging Face "
        "tokenizer.json into uint16 (vocabulary <= 65,536) or uint32 token shards in DIR, documents joined by "
        "the tokenizer's end-of-text token, with a held-out split and DIR/manifest.json. Running the same "
        "command again after an interruption continues it; the result is the same bytes as an uninterrupted run.")
    s.add_argument("files", nargs="+", metavar="FILES")
    s.add_argument("--tokenizer", required=True, metavar="PATH", help="a tokenizer.json (or a folder holding one)")
    s.add_argument("--out", required=True, metavar="DIR", help="where the shards and manifest.json go")
    s.add_argument("--text-field", default="text", metavar="NAME", help="jsonl key / parquet column of the text "
                   "(default: text)")
    s.add_argument("--eval-fraction", type=float, default=0.05, metavar="F",
                   help="share of documents held out for evaluation (default 0.05)")
    s.add_argument("--eos", default=None, metavar="TOKEN", help="the token put after each document (default: the "
                   "tokenizer's own <|endoftext|>, <|end_of_text|>, </s>, <eos>, <|eos|> or [SEP], first found)")
    s.add_argument("--shard-tokens", type=int, default=None, metavar="N",
                   help="tokens per shard file (default 134,217,728)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_prepare)


def run_prepare(args) -> int:
    from scaling.data.prepare import DEFAULT_SHARD_TOKENS, load_tokenizer, prepare_shards

    tokenizer = load_tokenizer(args.tokenizer, args.eos)
    if not args.quiet:
        print(f"end of text: {tokenizer.eos_token!r} (id {tokenizer.eos_id}); vocabulary {tokenizer.vocab_size:,} "
              f"-> {tokenizer.dtype} shards", file=sys.stderr)
    with _ProgressBar(enabled=not args.quiet) as bar:
        manifest = prepare_shards(args.files, tokenizer, args.out, text_field=args.text_field,
                                  eval_fraction=args.eval_fraction, eos=args.eos,
                                  shard_tokens=args.shard_tokens or DEFAULT_SHARD_TOKENS, progress=bar.update)
    splits = manifest["splits"]
    if args.eval_fraction > 0 and splits["eval"]["tokens"] == 0:
        print(f"warning: no document fell in the held-out split ({splits['train']['documents']} documents); "
              "training on these shards cannot evaluate", file=sys.stderr)
    print(json.dumps({"out": args.out, "eos_token": manifest["tokenizer"]["eos_token"],
                      "eos_id": manifest["tokenizer"]["eos_id"], "vocab_size": manifest["tokenizer"]["vocab_size"],
                      "dtype": manifest["dtype"],
                      **{f"{s}_{k}": splits[s][k] for s in ("train", "eval") for k in ("tokens", "documents")},
                      "shards": len(splits["train"]["shards"]) + len(splits["eval"]["shards"])}))
    return 0


class _ProgressBar:
    """Input bytes tokenized so far, as a rich bar on stderr; nothing when quiet or not on a terminal."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self.bar = Progress(TextColumn("[bold]tokenizing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task("tokenizing", total=None)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
