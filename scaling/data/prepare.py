"""`scaling data prepare`: tokenize .txt/.jsonl/.parquet files with a pretrained tokenizer into token shards.

Streaming: documents are read one at a time (a .txt file in ~1 MiB blocks cut at line ends), encoded
in batches of a few MB and appended to the open shard of their split; memory stays flat whatever the
corpus size.

The split: a document (a jsonl line, a parquet row, a .txt block) is held out when the hash of its key
(file name relative to the inputs' common folder, plus line/row/block number) falls under
`eval_fraction`: the same files give the same split on every machine. Documents end with EOS; the
blocks of one .txt file stay one document while consecutive blocks land in the same split.

Resumable and reproducible: inputs are done in order, and after each one the token count of every
shard is journalled atomically (`.prepare/progress.json`). A rerun after a kill truncates the shards
back to the journal and continues with the next input, so its output is byte-identical to a run that
was never interrupted. `manifest.json` is written last, and only it marks a preparation as finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from scaling.data.shards import FORMAT, FORMAT_VERSION, MANIFEST, SPLITS, TOKENIZER_FILE
from scaling.data.sources import Document, SourceFile, is_eval_document, iter_text_blocks, read_documents, user_files
from scaling.errors import UserError
from scaling.files import first_difference, write_atomic

# Tried in order when --eos is not given: GPT-2/NeoX/Pythia, Llama 3, Llama 2/Mistral/T5, Gemma, this lab's
# own BPE, then BERT-style vocabularies, whose [SEP] ends a segment.
EOS_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "[SEP]")
TEXT_BLOCK_BYTES = 1 << 20
ENCODE_BATCH_BYTES = 4_000_000
DEFAULT_SHARD_TOKENS = 1 << 27  # 256 MiB of uint16 per shard
WORK_DIR = ".prepare"


@dataclass
class PreparedTokenizer:
    path: Path
    blob: bytes
    tok: Any  # tokenizers.Tokenizer
    vocab_size: int
    eos_id: int
    eos_token: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()

    @property
    def dtype(self) -> str:
        return "uint16" if self.vocab_size <= 1 << 16 else "uint32"


def load_tokenizer(path: str, eos: str | None) -> PreparedTokenizer:
    """A Hugging Face tokenizer.json (or a folder holding one) and its end-of-text token; one-line errors."""
    import tokenizers as hf_tokenizers

    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "tokenizer.json"
    if not file.is_file():
        raise UserError(f"--tokenizer: {path}: no such file (expected a Hugging Face tokenizer.json)")
    blob = file.read_bytes()
    try:
        tok = hf_tokenizers.Tokenizer.from_str(blob.decode("utf-8"))
    except Exception as e:  # tokenizers raises a bare Exception for malformed JSON or unknown models
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UserError(f"--tokenizer: {path} is not a readable tokenizer.json ({reason})") from None
    tok.encode_special_tokens = True  # a document that spells "</s>" keeps it as text, not as an EOS
    vocab = tok.get_vocab(with_added_tokens=True)
    if not vocab:
        raise UserError(f"--tokenizer: {path} has an empty vocabulary")
    vocab_size = max(vocab.values()) + 1  # ids can be sparse: the model needs the largest one
    if eos is not None:
        if tok.token_to_id(eos) is None:
            raise UserError(f"--eos: {eos!r} is not a token of {path}")
        return PreparedTokenizer(file, blob, tok, vocab_size, tok.token_to_id(eos), eos)
    for candidate in EOS_CANDIDATES:
        if tok.token_to_id(candidate) is not None:
            return PreparedTokenizer(file, blob, tok, vocab_size, tok.token_to_id(candidate), candidate)
    raise UserError(f"--tokenizer: {path} has none of the usual end-of-text tokens ({', '.join(EOS_CANDIDATES)}); "
                    "name the one to put between documents with --eos")


@dataclass
class Request:
    """Everything the output depends on: equal requests give byte-identical preparations."""

    files: list[SourceFile]
    tokenizer: PreparedTokenizer
    text_field: str
    eval_fraction: float
    shard_tokens: int

    def describe(self) -> dict[str, Any]:
        t = self.tokenizer
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "tokenizer": {"file": TOKENIZER_FILE, "sha256": t.sha256,
                          "vocab_size": t.vocab_size, "eos_id": t.eos_id, "eos_token": t.eos_token},
            "dtype": t.dtype,
            "byte_order": "little",
            "inputs": [{"path": str(f.path), "key": f.key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
                       for f in self.files for st in [f.path.stat()]],
            "text_field": self.text_field,
            "split": {"eval_fraction": self.eval_fraction,
                      "rule": "a document is held out when the hash of its key (path relative to the inputs' common "
                              "folder, plus :line for jsonl, :row for parquet, #block for 1 MiB .txt blocks) falls "
                              "below eval_fraction"},
            "shard_tokens": self.shard_tokens,
        }


@dataclass
class SplitWriter:
    """Appends tokens to the numbered shards of one split, opening the next one when a shard is full."""

    out: Path
    split: str
    dtype: np.dtype
    shard_tokens: int
    shards: list[int] = field(default_factory=list)  # tokens in each shard so far
    documents: int = 0
    bytes: int = 0
    _file: BinaryIO | None = None

    def name(self, index: int) -> str:
        return f"{self.split}-{index:05d}.bin"

    def write(self, tokens: np.ndarray) -> None:
        tokens = tokens.astype(self.dtype, copy=False)
        while len(tokens):
            if not self.shards or self.shards[-1] == self.shard_tokens:
                self._open(len(self.shards))
            take = min(len(tokens), self.shard_tokens - self.shards[-1])
            self._file.write(tokens[:take].tobytes())
            self.shards[-1] += take
            tokens = tokens[take:]

    def _open(self, index: int) -> None:
        self.close()
        self.shards.append(0)
        self._file = open(self.out / self.name(index), "wb")

    def sync(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def state(self) -> dict[str, Any]:
        return {"shards": list(self.shards), "documents": self.documents, "bytes": self.bytes}

    def restore(self, state: dict[str, Any]) -> None:
        """Back to a journalled state: the last shard is truncated to its journalled length and reopened,
        shards written after the journal are deleted."""
        self.shards, self.documents, self.bytes = list(state["shards"]), state["documents"], state["bytes"]
        itemsize = self.dtype.itemsize
        for index, count in enumerate(self.shards):
            path = self.out / self.name(index)
            if not path.is_file() or path.stat().st_size < count * itemsize:
                raise UserError(f"--out: {path} is shorter than its journal says; the preparation cannot be "
                                f"resumed: remove {self.out} and prepare again")
        index = len(self.shards)
        while (self.out / self.name(index)).exists():
            (self.out / self.name(index)).unlink()
            index += 1
        if self.shards:
            last = self.out / self.name(len(self.shards) - 1)
            os.truncate(last, self.shards[-1] * itemsize)
            self._file = open(last, "ab")

    def summary(self) -> dict[str, Any]:
        return {"tokens": sum(self.shards), "documents": self.documents, "bytes": self.bytes,
                "shards": [{"file": self.name(i), "tokens": n} for i, n in enumerate(self.shards)]}


def _pieces(source: SourceFile, text_field: str, eval_fraction: float) -> Iterator[tuple[str, str, bool]]:
    """(split, text, ends_document) for one input file. A .txt block ends its document unless the file's
    next block continues it in the same split; one-block lookahead tells."""
    def split_of(doc: Document) -> str:
        return "eval" if is_eval_document(doc.split_key, eval_fraction) else "train"

    if source.path.suffix.lower() != ".txt":
        for doc in read_documents(source, text_field):
            yield split_of(doc), doc.text, True
        return
    previous = None
    for doc in iter_text_blocks(source, TEXT_BLOCK_BYTES):
        if previous is not None:
            yield split_of(previous), previous.text, split_of(doc) != split_of(previous)
        previous = doc
    if previous is not None:
        yield split_of(previous), previous.text, True


class _Journal:
    def __init__(self, out: Path):
        self.work = out / WORK_DIR
        self.request_path = self.work / "request.json"
        self.progress_path = self.work / "progress.json"

    def read(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def _differing_field(old: dict[str, Any], new: dict[str, Any]) -> str:
    field = first_difference(old, new)
    return "inputs (files, sizes or modification times)" if field == "inputs" else field


def _claim_out(out: Path, request: dict[str, Any], journal: _Journal) -> dict[str, Any] | None:
    """Checks --out against this request. Returns the finished manifest if it already holds exactly this
    preparation, None if there is work to do (fresh, or resuming); refuses anything else."""
    manifest = journal.read(out / MANIFEST) if (out / MANIFEST).is_file() else None
    if manifest is not None:
        done = {k: manifest.get(k) for k in request}
        if done == request:
            return manifest
        raise UserError(f"--out: {out} holds a different preparation ({_differing_field(done, request)} differs); "
                        "choose another --out or remove it")
    started = journal.read(journal.request_path)
    if started is not None:
        if started != request:
            raise UserError(f"--out: {out} holds an unfinished preparation of something else "
                            f"({_differing_field(started, request)} differs); choose another --out or remove it")
        return None
    # (an empty work folder alone: a prepare killed before it wrote its request, which is safe to take over)
    if out.exists() and (not out.is_dir() or any(p.name != WORK_DIR for p in out.iterdir())):
        raise UserError(f"--out: {out} exists and is not an empty folder or a preparation")
    journal.work.mkdir(parents=True, exist_ok=True)
    write_atomic(journal.request_path, _json_bytes(request))
    return None


def prepare_shards(inputs: list[str], tokenizer: str | PreparedTokenizer, out: str, *, text_field: str = "text",
                   eval_fraction: float = 0.05, eos: str | None = None, shard_tokens: int = DEFAULT_SHARD_TOKENS,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Prepare (or finish preparing) `out`; returns its manifest. `progress(done_bytes, total_bytes)` is
    called as input bytes are consumed."""
    if not 0 <= eval_fraction <= 0.5:
        raise UserError(f"--eval-fraction: must be between 0 and 0.5, got {eval_fraction}")
    if shard_tokens < 1:
        raise UserError(f"--shard-tokens: must be positive, got {shard_tokens}")
    if not text_field:
        raise UserError("--text-field: must not be empty")
    files = user_files(inputs, label="FILES")
    _check_parquet_columns(files, text_field)
    prepared = tokenizer if isinstance(tokenizer, PreparedTokenizer) else load_tokenizer(tokenizer, eos)
    request = Request(files, prepared, text_field, eval_fraction, shard_tokens).describe()
    out_dir = Path(out).expanduser()
    journal = _Journal(out_dir)
    finished = _claim_out(out_dir, request, journal)
    if finished is not None:
        return finished

    dtype = np.dtype(prepared.dtype).newbyteorder("<")
    writers = {s: SplitWriter(out_dir, s, dtype, shard_tokens) for s in SPLITS}
    state = journal.read(journal.progress_path) or {"done": 0, "splits": {s: w.state() for s, w in writers.items()}}
    for split, writer in writers.items():
        writer.restore(state["splits"][split])
    sizes = [entry["size"] for entry in request["inputs"]]
    report = progress or (lambda done, total: None)
    report(sum(sizes[: state["done"]]), sum(sizes))
    try:
        for index in range(state["done"], len(files)):
            _tokenize_file(files[index], prepared, writers, text_field, eval_fraction,
                           lambda n, base=sum(sizes[:index]), cap=sizes[index]: report(base + min(n, cap), sum(sizes)))
            report(sum(sizes[: index + 1]), sum(sizes))
            for writer in writers.values():
                writer.sync()
            state = {"done": index + 1, "splits": {s: w.state() for s, w in writers.items()}}
            write_atomic(journal.progress_path, _json_bytes(state))
    finally:
        for writer in writers.values():
            writer.close()

    if sum(writers["train"].shards) == 0:
        raise UserError(f"FILES: the inputs hold no text (field {text_field!r} for jsonl/parquet)")
    manifest = {**request, "splits": {s: w.summary() for s, w in writers.items()}}
    write_atomic(out_dir / TOKENIZER_FILE, prepared.blob)
    write_atomic(out_dir / MANIFEST, _json_bytes(manifest))
    shutil.rmtree(journal.work, ignore_errors=True)
    return manifest


def _check_parquet_columns(files: list[SourceFile], text_field: str) -> None:
    """A parquet file without the text column is refused before anything is written (its schema is cheap
    to read); a jsonl line without the field can only be found by reading up to it."""
    for source in files:
        if source.path.suffix.lower() == ".parquet":
            next(read_documents(source, text_field), None)


def _tokenize_file(source: SourceFile, prepared: PreparedTokenizer, writers: dict[str, SplitWriter],
                   text_field: str, eval_fraction: float, advanced: Callable[[int], None]) -> None:
    pending: list[tuple[str, str, bool]] = []
    pending_bytes = consumed = 0
    eos = np.array([prepared.eos_id], dtype=np.int64)

    def flush() -> None:
        encoded = prepared.tok.encode_batch_fast([text for _, text, _ in pending], add_special_tokens=False)
        for (split, text, ends), tokens in zip(pending, encoded):
            writer = writers[split]
            ids = np.asarray(tokens.ids, dtype=np.int64)
            writer.write(np.concatenate([ids, eos]) if ends else ids)
            writer.documents += ends
            writer.bytes += len(text.encode("utf-8"))
        pending.clear()

    for split, text, ends in _pieces(source, text_field, eval_fraction):
        pending.append((split, text, ends))
        pending_bytes += len(text)
        if pending_bytes >= ENCODE_BATCH_BYTES:
            flush()
            consumed += pending_bytes
            advanced(consumed)
            pending_bytes = 0
    if pending:
        flush()
