"""`scaling train CONFIG --out RUN_DIR`: one pretraining run; re-running the same command resumes it."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train one model (resumes when run again on the same RUN_DIR)",
        description="Train one decoder for a token or FLOP budget and leave a run directory with config.yaml, "
        "metrics.jsonl, summary.json and Orbax checkpoints. Running the same command again resumes.")
    p.add_argument("config", metavar="CONFIG",
                   help="run YAML (model, data, mesh, optimizer, train), or a bundled recipe's name (tiny-math)")
    p.add_argument("--out", metavar="RUN_DIR", help="the run directory (required unless --dry-run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field, e.g. train.tokens=1e6")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config and print the run (size, budget, mesh, attention kernel); write nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.bundled import locate
    from scaling.config.run import load_run_config
    from scaling.parallel import maybe_initialize_distributed
    from scaling.errors import UserError
    from scaling.train import run_training

    if not args.out and not args.dry_run:
        raise UserError("--out: required (the run directory), unless --dry-run")
    maybe_initialize_distributed()
    cfg = load_run_config(locate(args.config, "train"), args.set)
    if args.dry_run:
        from scaling.train.dryrun import describe_run

        print("\n".join(describe_run(cfg, args.out)))
        return 0
    summary = run_training(cfg, args.out, quiet=args.quiet)
    keys = ("status", "model", "n_params", "tokens", "flops", "flop_convention", "loss", "eval_loss", "eval_bpb", "wall_s")
    print(json.dumps({k: summary.get(k) for k in keys}))
    return 0
