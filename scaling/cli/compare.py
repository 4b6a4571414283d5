"""`scaling compare PRETRAIN_SWEEP RL_SWEEP --out DIR`: pretraining compute vs RL compute on one task;
`scaling compare SPLIT_SWEEP --out DIR`: the report of a pretraining/RL split sweep.

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

With one sweep, a `kind: split` sweep directory (or a CSV of total_flops, rl_share, accuracy): its
report. Iso-compute profiles (accuracy against RL share, one curve per total budget, every budget
drawn; the best share starred with its interval where `scaling fit split` finds it, the reason
where not), the best share against total compute, and test-time compute: every pretrained model and
RL policy of the sweep draws --test-time-k samples per problem once; maj@k and pass@k for k = 1, 2,
4, ... at k x FLOPs per sample, and the exchange rate between training and test-time compute
(`scaling fit testtime`) or why it is undefined. Cached in DIR/testtime_eval.jsonl.
"""


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser("compare", help="pretraining vs RL compute on one task: laws, gains, report",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pretrain_sweep", metavar="PRETRAIN_SWEEP|SPLIT_SWEEP",
                   help="a pretraining sweep directory; alone: a split sweep directory or CSV")
    p.add_argument("rl_sweep", metavar="RL_SWEEP", nargs="?", default=None,
                   help="an rlvr sweep directory (its runs give the task); left out for a split sweep")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="K",
                   help="bootstrap replicates for the 95%% intervals (default 1000; 0 for none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--metric", choices=("greedy", "pass@1"), default="greedy",
                   help="accuracy on both axes: greedy pass@1 (default), or sampled pass@1, the mean over the RL "
                        "runs' eval.pass_k samples per problem (lower variance; needs eval.pass_k >= 2)")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate the models again instead of reading DIR/pretrain_eval.jsonl (testtime_eval.jsonl)")
    p.add_argument("--test-time-k", type=int, default=16, metavar="K",
                   help="split sweeps: samples per problem per model, the largest k (default 16; 0: no test-time)")
    p.add_argument("--test-time-problems", type=int, default=128, metavar="N",
                   help="split sweeps: held-out problems for test-time compute (default 128)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.compare import run_compare
    from scaling.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    command = None
    if len(sys.argv) > 2 and sys.argv[1] == "compare":
        command = "scaling compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if args.rl_sweep is None:
        return _split(args, command)
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


def _split(args, command) -> int:
    from scaling.compare.split import run_split_report
    from scaling.errors import UserError
    from scaling.laws.isoflop import format_flops

    if args.metric != "greedy":
        raise UserError("--metric: a split sweep's pipelines are scored by their RL runs' greedy pass@1; "
                        "--metric applies to PRETRAIN_SWEEP RL_SWEEP")
    report = run_split_report(args.pretrain_sweep, args.out, bootstrap=args.bootstrap, seed=args.seed,
                              k=args.test_time_k, problems=args.test_time_problems, reevaluate=args.reevaluate,
                              command=command, log=lambda line: print(line, file=sys.stderr, flush=True))
    for b in report.analysis.budgets:
        if b.reason:
            best = f"no optimum ({b.reason}); best share tried {b.best_measured[0]:g}"
        else:
            ci = b.ci.get("share_opt")
            best = f"{b.share_opt:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
        print(f"C = {format_flops(b.C)}: best RL share {best}")
    for r in report.rates:
        if r.result is None:
            print(f"exchange rate ({r.metric}): undefined ({r.reason})")
        else:
            ci = r.result.ci.get("exchange_rate")
            interval = f" [{min(ci):.3g}, {max(ci):.3g}]" if ci else ""
            print(f"exchange rate ({r.metric}): {r.result.params['exchange_rate']:.3g}x test-time compute per 10x "
                  f"training compute{interval}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {len(report.files)} files to {report.out_dir} (report.md, compare.json, figures)")
    return 0
