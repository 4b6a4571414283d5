"""`scaling fit LAW SOURCE`: fit a scaling law to a sweep directory or a CSV file.

Thin: parses arguments and calls scaling.laws. JAX is imported only when a fit runs.
"""
from __future__ import annotations

import argparse
import sys

from scaling.errors import UserError
from scaling.outputs import check_output_dir, check_output_file

LAWS = ("power", "chinchilla", "isoflop", "loglinear", "sigmoid", "split", "testtime")  # mirrors scaling.laws.LAWS

DESCRIPTION = """\
Fit a scaling law and print its parameters (with bootstrap intervals when asked).

laws:
  power       y = E + A·x^-α, in log space (default x: --c column, y: --loss column; --fix E=0)
  chinchilla  L(N, D) = E + A/N^α + B/D^β, Hoffmann et al. Approach 3: summed Huber (δ=1e-3) on
              log L, L-BFGS from 4,500 starts; also reports a = β/(α+β), b = α/(α+β) and G
  isoflop     per-budget parabolas in log N; N_opt ∝ C^a, D_opt ∝ C^b (Approach 2)
  loglinear   y = a + b·log10 x, and ln(1 - y) = c - k·ln x on the error rate
  sigmoid     R(C) = R0 + (A - R0)/(1 + (C_mid/C)^B), A in [R0, 1] (ScaleRL)
  split       per total budget C (--c, default total_flops), accuracy (--y) against the RL share f
              (--x, default rl_share): parabola in logit f or in f (--method auto|logit|share) around
              its maximum; budgets [{C, share_opt, accuracy_opt, ci}], share_opt = slope·log10 C + intercept
  testtime    iso-accuracy frontier of training compute (--c, default train_flops) against test-time
              compute (--x, default test_flops, or --k times --sample-flops): how many times more
              test-time compute replaces 10x training compute (Jones 2021)

SOURCE is a sweep directory (its registry.sqlite: finished runs for power/chinchilla/isoflop,
accuracy curves for loglinear/sigmoid, the finished pipelines of a `kind: split` sweep for split:
pretraining + RL FLOPs and RL share as run, budgets the planned C) or a CSV file (testtime: a CSV).
When D is missing, D = C/(6N).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit a scaling law (" + ", ".join(LAWS) + ")",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("law", metavar="LAW", help="one of: " + ", ".join(LAWS))
    p.add_argument("source", metavar="SOURCE", help="sweep directory or CSV file")
    add_column_options(p)
    p.add_argument("--bootstrap", type=int, default=0, metavar="K",
                   help="K bootstrap replicates (isoflop: residuals about each budget's parabola; others: "
                        "points); 95%% percentile intervals")
    p.add_argument("--holdout-largest", action="store_true",
                   help="also fit without the largest budget (or x) and report the error predicting it")
    p.add_argument("--method", default=None, metavar="M",
                   help="chinchilla: huber (default, Hoffmann), huber-mle (Besiroglu et al. 2024), "
                        "huber-mean (averaged terms: stops early, for comparison); split: the curve in the "
                        "RL share, auto (default: the lower leave-one-out error), logit or share")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a parameter fixed: E for power (e.g. E=0), R0 for sigmoid")
    p.add_argument("--k", default=None, metavar="COL", dest="k_col",
                   help="testtime: samples per problem k; test-time compute = k x --sample-flops (default k)")
    p.add_argument("--sample-flops", default=None, metavar="COL",
                   help="testtime: inference FLOPs of one sample (default sample_flops)")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="split, testtime: also write their figures (PNG + SVG) to DIR")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", default=None, metavar="FILE|-",
                   help="write the result as one JSON object to FILE, or to stdout instead of the table with -")
    p.set_defaults(func=run)


def add_column_options(p: argparse.ArgumentParser) -> None:
    """Column names and row filters; shared with `scaling plot`."""
    cols = p.add_argument_group("columns (defaults are the sweep registry's names)")
    cols.add_argument("--n", default=None, metavar="COL", help="parameter count N (default n_params)")
    cols.add_argument("--d", default=None, metavar="COL", help="training tokens D (default tokens)")
    cols.add_argument("--c", default=None, metavar="COL", help="training compute C in FLOPs (default flops)")
    cols.add_argument("--loss", default=None, metavar="COL", help="loss in nats/token (default eval_loss)")
    cols.add_argument("--x", default=None, metavar="COL", help="x for curve laws (default flops)")
    cols.add_argument("--y", default=None, metavar="COL", help="y for curve laws (default accuracy)")
    cols.add_argument("--group", default=None, metavar="COL",
                      help="isoFLOP budget column (default budget; if absent, C rounded to 2 significant figures)")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                   help="drop the K highest-loss points before fitting: keeps loss < sorted(loss)[-K] "
                        "(5 reproduces Epoch AI's 240-point Chinchilla set)")


def columns_from_args(args):
    from scaling.laws import Columns

    return Columns(n=args.n, d=args.d, c=args.c, loss=args.loss, x=args.x, y=args.y, group=args.group)


def load_text_source(load, source: str):
    """`load()`, with a binary file given as SOURCE (a CSV that is not UTF-8 text) as one line."""
    try:
        return load()
    except UnicodeDecodeError:
        raise UserError(f"{source}: not a text file (it is not valid UTF-8); expected a CSV or a sweep directory") \
            from None


def parse_fixed(items: list[str]) -> dict[str, float]:
    fixed = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UserError(f"--fix {item!r}: expected NAME=VALUE, e.g. E=0")
    return fixed


def run(args) -> int:
    from scaling import laws

    law = laws.check_law(args.law)
    if args.drop_highest_loss < 0:
        raise UserError(f"--drop-highest-loss {args.drop_highest_loss}: must be >= 0")
    if law != "testtime" and (args.k_col or args.sample_flops):
        raise UserError(f"--k and --sample-flops apply to testtime only, not {law}")
    if args.plot and law not in ("split", "testtime"):
        raise UserError(f"--plot applies to split and testtime; for {law} use `scaling plot`")
    if args.json and args.json != "-":
        check_output_file(args.json, "--json", reads=(args.source,))
    if args.plot:
        check_output_dir(args.plot, "--plot")
    pts = load_text_source(lambda: laws.load_points(args.source, law, columns_from_args(args), args.drop_highest_loss,
                                                    k=args.k_col, sample_flops=args.sample_flops), args.source)
    result = laws.fit(law, pts, method=args.method, fixed=parse_fixed(args.fix), bootstrap=args.bootstrap,
                      holdout_largest=args.holdout_largest, seed=args.seed)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.plot:
        write_figures(result, pts, args.plot)
    if args.json == "-":
        print(result.dumps())
        return 0
    if args.json:
        try:
            with open(args.json, "w") as fh:
                fh.write(result.dumps() + "\n")
        except OSError as e:
            raise UserError(f"--json {args.json}: cannot write ({e.strerror})") from None
    print(laws.render_table(result))
    return 0


def write_figures(result, pts, out_dir: str) -> None:
    """The split or test-time figures, written before the result is printed (a write error exits 2)."""
    from pathlib import Path

    from scaling.plots.allocation import write_split_figures, write_testtime_figures

    write = write_split_figures if result.law == "split" else write_testtime_figures
    try:
        paths = write(result, pts, Path(out_dir))
    except OSError as e:
        raise UserError(f"--plot {out_dir}: cannot write ({e.strerror})") from None
    print(f"figures: {', '.join(str(p) for p in paths)}", file=sys.stderr)
