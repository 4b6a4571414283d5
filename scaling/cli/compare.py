"""`scaling compare PRETRAIN_SWEEP RL_SWEEP --out DIR`: pretraining compute vs RL compute on one task.

Thin: parses arguments and calls scaling.compare. JAX and matplotlib load only when it runs.
"""
from __future__ import annotations

import shlex
import sys

DESCRIPTION = """\
Evaluate every finished pretrained model of PRETRAIN_SWEEP on the task of RL_SWEEP's runs with the
RL runs' own evaluation (greedy pass@1, or --metric pass@1: the mean over its samples), put both on one
compute axis (FLOPs, full convention: pretraining, and pretraining + RL), fit the log-linear and
sigmoid accuracy laws on each, and report with bootstrap intervals: accuracy per decade of
pretraining compute and of RL compute, the compute-equivalent gain of every RL run (pretraining
FLOPs needed for its accuracy / FLOPs it spent), and the sweep's pretraining loss law.

Writes DIR/report.md, DIR/compare.json and figures (PNG + SVG). Evaluations are cached in
DIR/pretrain_eval.jsonl, so running it again only refits and redraws.
"""


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser("compare", help="pretraining vs RL compute on one task: laws, gains, report",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pretrain_sweep", metavar="PRETRAIN_SWEEP", help="a pretraining sweep directory")
    p.add_argument("rl_sweep", metavar="RL_SWEEP", help="an rlvr sweep directory (its runs give the task)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="K",
                   help="bootstrap replicates for the 95%% intervals (default 1000; 0 for none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--metric", choices=("greedy", "pass@1"), default="greedy",
                   help="accuracy on both axes: greedy pass@1 (default), or sampled pass@1, the mean over the RL "
                        "runs' eval.pass_k samples per problem (lower variance; needs eval.pass_k >= 2)")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate the pretrained models again instead of reading DIR/pretrain_eval.jsonl")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.compare import run_compare
    from scaling.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    command = None
    if len(sys.argv) > 2 and sys.argv[1] == "compare":
        command = "scaling compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    result = run_compare(args.pretrain_sweep, args.rl_sweep, args.out, bootstrap=args.bootstrap, seed=args.seed,
                         reevaluate=args.reevaluate, command=command, metric=args.metric,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    slopes = result.comparison.slopes
    for key, slope in slopes.items():
        axis = "pretraining" if key == "pretrain" else f"RL from {key[3:]}"
        value = f"{slope.value + 0.0:+.4f}" if slope.value is not None else f"undefined ({slope.reason})"
        print(f"accuracy per decade of {axis} compute: {value}")
    for warning in result.collected.warnings + result.comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {len(result.files)} files to {result.out_dir} (report.md, compare.json, figures)")
    return 0
