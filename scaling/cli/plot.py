"""`scaling plot SOURCE --out DIR`: fit what the data supports, write figures (PNG + SVG) and report.md.

SOURCE is a sweep directory, a CSV file, or an analysis file (`analysis/*.yaml`) naming the source,
its columns and the figures; options given on the command line override the analysis file.
Thin: parses arguments and calls scaling.plots. JAX and matplotlib load only when it runs.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from scaling.cli.fit import add_column_options, columns_from_args, load_text_source
from scaling.errors import UserError
from scaling.outputs import check_output_dir

FIGURES = ("loss_vs_compute", "isoflop", "optimal_allocation", "isoloss_contours", "accuracy_vs_compute", "residuals")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="figures (PNG + SVG) and report.md for a sweep, a CSV or an analysis file",
        description="Fit every law the data supports (Chinchilla and isoFLOP for pretraining runs; log-linear "
        "and sigmoid for accuracy curves) and write the figures as PNG and SVG plus a report.md with the "
        "fitted parameters and bootstrap intervals.")
    p.add_argument("source", metavar="SOURCE", help="sweep directory, CSV file, or analysis YAML (analysis/*.yaml)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (required unless the analysis file sets out)")
    add_column_options(p)
    p.add_argument("--bootstrap", type=int, default=None, metavar="K",
                   help="bootstrap replicates for intervals and bands (default 200, or the analysis file's)")
    p.add_argument("--figures", default=None, metavar="LIST",
                   help="comma-separated subset of: " + ", ".join(FIGURES))
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.laws import Columns
    from scaling.laws.bootstrap import check_replicates
    from scaling.bundled import locate
    from scaling.plots import load_analysis, make_report

    settings = dict(source=args.source, out=None, title=None, columns=Columns(), drop_highest_loss=0,
                    bootstrap=200, seed=0, figures=None)
    if args.source.endswith((".yaml", ".yml")):
        analysis, source, out = load_analysis(locate(args.source, "analysis"))
        settings.update(source=source, out=out, title=analysis.title, columns=Columns(**analysis.columns.model_dump()),
                        drop_highest_loss=analysis.drop_highest_loss, bootstrap=analysis.bootstrap,
                        seed=analysis.seed, figures=analysis.figures)
    overrides = {k: v for k, v in columns_from_args(args).__dict__.items() if v is not None}
    if overrides:
        settings["columns"] = Columns(**{**settings["columns"].__dict__, **overrides})
    for key in ("out", "title", "bootstrap", "seed"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.drop_highest_loss:
        settings["drop_highest_loss"] = args.drop_highest_loss
    if args.figures:
        settings["figures"] = [f.strip() for f in args.figures.split(",") if f.strip()]
        unknown = sorted(set(settings["figures"]) - set(FIGURES))
        if unknown:
            raise UserError(f"--figures: unknown {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    if settings["out"] is None:
        raise UserError("--out DIR is required (or set out: in the analysis file)")
    if settings["drop_highest_loss"] < 0:
        raise UserError(f"--drop-highest-loss {settings['drop_highest_loss']}: must be >= 0")
    check_replicates(settings["bootstrap"])
    check_output_dir(settings["out"], "--out")

    report = load_text_source(lambda: make_report(
        settings["source"], Path(settings["out"]), settings["columns"], drop_highest_loss=settings["drop_highest_loss"],
        bootstrap=settings["bootstrap"], figures=settings["figures"], title=settings["title"], seed=settings["seed"],
        command="scaling plot " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if
        len(sys.argv) > 2 and sys.argv[1] == "plot" else None), settings["source"])
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {len(report.files)} files to {report.out_dir}:")
    for path in report.files:
        print(f"  {path}")
    return 0
