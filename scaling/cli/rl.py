"""`scaling rl CONFIG --init PRETRAINED_RUN_DIR --out RUN_DIR`: GRPO on a verifiable task."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "rl", help="improve a pretrained model with GRPO on a verifiable task (resumable)",
        description="Start from a pretraining run's checkpoint and run GRPO on a task whose answers a program "
        "checks; logs held-out pass@1 against cumulative RL FLOPs (rollout + update). Re-running resumes.")
    p.add_argument("config", metavar="CONFIG",
                   help="RL YAML (task, sampling, grpo, optimizer, budget, eval), or a bundled RL recipe's name")
    p.add_argument("--init", metavar="PRETRAINED_RUN_DIR", help="pretraining run directory (or init_run: in CONFIG)")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.config.base import load_config
    from scaling.config.rl import RLConfig
    from pathlib import Path

    from scaling.bundled import locate
    from scaling.errors import UserError
    from scaling.outputs import check_writable_dir
    from scaling.rl.loop import run_rl

    cfg = load_config(RLConfig, locate(args.config, "rl"), args.set)
    init = args.init or cfg.init_run
    if not init:
        raise UserError("--init: give the pretraining run directory to start from")
    if Path(args.out).absolute() == Path(init).absolute() or Path(args.out).resolve() == Path(init).resolve():
        raise UserError(f"--out {args.out}: is the --init run; the RL run needs its own directory")
    check_writable_dir(args.out, "--out")
    summary = run_rl(cfg.model_copy(update={"init_run": None}), init, args.out, quiet=args.quiet)
    keys = ("status", "task", "model", "steps", "rl_flops", "initial_accuracy", "accuracy", "wall_s")
    print(json.dumps({k: summary.get(k) for k in keys}))
    return 0
