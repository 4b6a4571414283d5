"""`scaling plot`: fit every law the data supports, draw the figures, write report.md.

Pretraining data (N, D or C, loss) gets the Chinchilla and isoFLOP fits and their figures;
accuracy curves (RL evaluations) get the log-linear and sigmoid fits. Every figure is written as
PNG and SVG next to a report.md that lists the fitted parameters with bootstrap intervals.
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaling.errors import UserError
from scaling.laws import fit
from scaling.laws.results import FitResult, format_value
from scaling.laws.sources import Columns, Points, load_loss_points, load_xy_points, open_table
from scaling.plots import figures as F
from scaling.plots.style import LABELS, new_figure, save, short_source

PRETRAIN_FIGURES = ("loss_vs_compute", "isoflop", "optimal_allocation", "isoloss_contours")
ALL_FIGURES = PRETRAIN_FIGURES + ("accuracy_vs_compute", "residuals")


@dataclass
class Report:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    fits: dict[str, FitResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _has_rows(table, needed: list[str]) -> bool:
    return bool(table.row_labels) and all(table.has(c) for c in needed)


def available_data(source, cols: Columns) -> tuple[bool, bool]:
    """(pretraining runs?, accuracy curves?) in the source. A column named explicitly counts as a
    request, so its absence is reported rather than silently skipped."""
    runs = open_table(source, "runs")
    pretrain = _has_rows(runs, [cols.name("n"), cols.name("loss")]) and (
        runs.has(cols.name("d")) or runs.has(cols.name("c")))
    pretrain |= any(cols.explicit(r) for r in ("n", "d", "loss", "group"))
    curves = open_table(source, "curves") if Path(source).is_dir() else runs
    accuracy = _has_rows(curves, [cols.name("x"), cols.name("y")]) or cols.explicit("y")
    if not pretrain and not accuracy:
        raise UserError(f"{source}: nothing to plot: no pretraining columns ({cols.name('n')}, {cols.name('loss')}, "
                        f"{cols.name('d')} or {cols.name('c')}) and no accuracy curves ({cols.name('x')}, "
                        f"{cols.name('y')}); name the columns with --n/--loss/--c or --x/--y")
    return pretrain, accuracy


def make_report(source, out_dir, columns: Columns = Columns(), drop_highest_loss: int = 0, bootstrap: int = 200,
                figures: list[str] | None = None, title: str | None = None, seed: int = 0,
                command: str | None = None) -> Report:
    out_dir = Path(out_dir)
    wanted = set(figures or ALL_FIGURES)
    report = Report(out_dir)
    pretrain, accuracy = available_data(source, columns)
    name = short_source(str(source))
    pts = apts = None
    if pretrain:
        pts = load_loss_points(source, columns, drop_highest_loss)
        _try_fit(report, "chinchilla", pts, bootstrap, seed)
        _try_fit(report, "isoflop", pts, bootstrap, seed)
    if accuracy:
        apts = load_xy_points(source, "sigmoid", columns)
        _try_fit(report, "loglinear", apts, bootstrap, seed)
        _try_fit(report, "sigmoid", apts, bootstrap, seed)
    for result in report.fits.values():
        report.warnings.extend(result.warnings)

    chin, iso = report.fits.get("chinchilla"), report.fits.get("isoflop")
    if pts is not None and "loss_vs_compute" in wanted:
        fig, (ax,) = new_figure()
        F.plot_loss_vs_compute(ax, pts, chin, iso)
        ax.set_title(f"Final loss vs compute, {len(pts)} runs ({name})")
        report.files += save(fig, out_dir, "loss_vs_compute")
    if iso is not None and "isoflop" in wanted:
        fig, (ax,) = new_figure(width=7.2)
        F.plot_isoflop(ax, iso, pts)
        ax.set_title(f"IsoFLOP profiles: {iso.extra['n_budgets']} budgets with an interior minimum\n({name})")
        report.files += save(fig, out_dir, "isoflop")
    if pts is not None and "optimal_allocation" in wanted:
        fig, axes = new_figure(n_cols=2, width=5.6)
        c_range = (pts.C.min(), pts.C.max())
        for ax, which in zip(axes, "ND"):
            F.plot_optimal_allocation(ax, which, c_range, iso, chin)
            ax.set_title(f"Compute-optimal {'model size N_opt(C)' if which == 'N' else 'training tokens D_opt(C)'}")
        fig.suptitle(f"Compute-optimal allocation, fits with 95% bootstrap bands ({name})")
        report.files += save(fig, out_dir, "optimal_allocation")
    if chin is not None and "isoloss_contours" in wanted:
        fig, (ax,) = new_figure(width=7.0, height=5.2)
        F.plot_isoloss_contours(ax, chin, pts)
        ax.set_title(f"Chinchilla fit: iso-loss contours of L(N, D) ({name})")
        report.files += save(fig, out_dir, "isoloss_contours")
    if apts is not None and "accuracy_vs_compute" in wanted:
        fig, (ax,) = new_figure(width=7.0)
        F.plot_accuracy(ax, apts, report.fits.get("loglinear"), report.fits.get("sigmoid"),
                        xlabel=_x_label(apts))
        ax.set_title(f"Accuracy vs compute, {len(apts)} evaluations ({name})")
        report.files += save(fig, out_dir, "accuracy_vs_compute")
    if report.fits and "residuals" in wanted:
        report.files += _residuals_figure(report, pts, apts, out_dir, name)
    report.files.append(_write_markdown(report, source, pts, apts, title, bootstrap, command))
    return report


def _try_fit(report: Report, law: str, pts: Points, bootstrap: int, seed: int) -> None:
    """Fits that legitimately fail on some data (too few points or usable budgets) become report
    warnings: a small sweep still gets its figures and the fits it can support."""
    try:
        report.fits[law] = fit(law, pts, bootstrap=bootstrap, seed=seed)
    except UserError as e:
        report.warnings.append(f"{law} fit skipped: {e}")


def _x_label(pts: Points) -> str:
    column = pts.labels.get("x", "x")
    return LABELS["rl_flops"] if column == "flops" else f"{column} (log scale)"


def _residuals_figure(report: Report, pts, apts, out_dir: Path, name: str) -> list[Path]:
    panels = [(law, r) for law, r in report.fits.items()]
    n_cols = min(2, len(panels))
    fig, axes = new_figure(n_cols=n_cols, n_rows=math.ceil(len(panels) / n_cols), width=5.2, height=3.6)
    for ax, (law, result) in zip(axes, panels):
        if law == "chinchilla":
            F.plot_residuals(ax, result, pts.C, LABELS["C"])
        elif law == "isoflop":
            F.plot_residuals(ax, result, np.array([b["C"] for b in result.extra["budgets"]]),
                             "budget C (FLOPs)", log_ratio=True)
        else:
            F.plot_residuals(ax, result, apts.x, _x_label(apts))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"Residuals of every fit ({name})")
    return save(fig, out_dir, "residuals")


def _param_table(result: FitResult) -> list[str]:
    rows = ["| quantity | value | 95% CI (bootstrap) |", "|---|---:|---:|"]
    values = dict(result.params)
    values.update({k: result.extra[k] for k in ("a", "b", "G") if k in result.extra and k not in values})
    for key, value in values.items():
        lo_hi = result.ci.get(key)
        ci = f"[{format_value(lo_hi[0])}, {format_value(lo_hi[1])}]" if lo_hi else "–"
        rows.append(f"| {key} | {format_value(value)} | {ci} |")
    quality = [f"objective {result.objective:.6g}" if result.objective is not None else None,
               f"R² {result.r2:.4f}" if result.r2 is not None else None]
    return rows + ["", f"{result.n_points} points; {result.method}; " + "; ".join(q for q in quality if q) + "."]


def _write_markdown(report: Report, source, pts, apts, title, bootstrap, command) -> Path:
    lines = [f"# {title or 'Scaling-law report'}", "",
             f"Source: `{source}`  ", f"Generated {datetime.date.today().isoformat()}"
             + (f" by `{command}`" if command else "") + "  ",
             f"Intervals: 95% percentile bootstrap, {bootstrap} replicates." if bootstrap else
             "No bootstrap intervals (bootstrap 0).", "", "## Data", ""]
    if pts is not None:
        lines.append(f"- {len(pts)} pretraining runs: N {pts.N.min():.3g}–{pts.N.max():.3g} parameters, "
                     f"D {pts.D.min():.3g}–{pts.D.max():.3g} tokens, C {pts.C.min():.3g}–{pts.C.max():.3g} FLOPs.")
        lines += [f"- {note}" for note in pts.notes]
    if apts is not None:
        n_curves = len(np.unique(apts.curve)) if apts.curve is not None else 1
        lines.append(f"- {len(apts)} accuracy evaluations in {n_curves} curve(s), "
                     f"x = {apts.labels['x']} {apts.x.min():.3g}–{apts.x.max():.3g}.")
    headings = {"chinchilla": "Chinchilla parametric fit (Approach 3)", "isoflop": "IsoFLOP profiles (Approach 2)",
                "loglinear": "Log-linear accuracy law", "sigmoid": "Sigmoid accuracy law (ScaleRL)"}
    for law, result in report.fits.items():
        lines += ["", f"## {headings[law]}", ""] + _param_table(result)
        lines += _law_details(law, result)
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    lines += ["", "## Figures", ""]
    for path in report.files:
        if path.suffix == ".png":
            lines += [f"![{path.stem}]({path.name})", f"({path.stem}: [SVG]({path.stem}.svg))", ""]
    path = report.out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _law_details(law: str, result: FitResult) -> list[str]:
    if law == "chinchilla":
        e = result.extra
        return ["", f"Compute-optimal allocation (C = 6ND): N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b with "
                f"a = {e['a']:.4f}, b = {e['b']:.4f}, G = {e['G']:.4g}."]
    if law == "isoflop":
        rows = ["", "| budget C (FLOPs) | N_opt | D_opt | L_opt |", "|---:|---:|---:|---:|"]
        rows += [f"| {b['C']:.3g} | {b['N_opt']:.4g} | {b['D_opt']:.4g} | {b['L_opt']:.4g} |" for b in result.extra["budgets"]]
        return rows + ["", f"R² of the N_opt power law {result.r2:.4f}, of the D_opt power law {result.extra['r2_D']:.4f}."]
    if law == "loglinear" and "error_rate" in result.extra:
        er = result.extra["error_rate"]
        return ["", f"Error-rate form: ln(1 − y) = {er['c']:.4g} − {er['k']:.4g}·ln x (R² {er['r2']:.4f})."]
    return []
