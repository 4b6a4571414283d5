"""The comparison's figures: both compute axes on one plot, the RL curves, the gains, the loss law.

Legends sit outside the axes (right of them): the RL curves crowd the top right of the combined
plot, where an inside legend would cover them. Lines are solid where the law was fitted and dashed
where they extrapolate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogFormatterSciNotation, LogLocator

from scaling.compare.analysis import IN_RANGE, Comparison, LawFit, predict
from scaling.laws.power import predict as predict_power
from scaling.laws.sources import Points
from scaling.plots import figures as F
from scaling.plots.style import CYCLE, GREY, LABELS, new_figure, save, styled

TOTAL = "compute: pretraining + RL (FLOPs, full convention)"
RL_X = "RL compute (FLOPs, full convention: rollout + update)"
PRE = "black"


def _grid(lo: float, hi: float, n: int = 200) -> np.ndarray:
    return np.logspace(np.log10(lo), np.log10(hi), n)


def _colors(cmp: Comparison) -> dict[str, str]:
    inits = list(dict.fromkeys(r.init_run_id for r in cmp.rl))
    return {init: CYCLE[i % len(CYCLE)] for i, init in enumerate(inits)}


def _init_name(cmp: Comparison, init: str) -> str:
    return next(r.extra.get("init_name", init) for r in cmp.rl if r.init_run_id == init)


def _fit_line(ax, law: LawFit, grid: np.ndarray, fitted: tuple[float, float], color, label: str, ls="-"):
    """The law over `grid`: its line (solid inside the fitted range, dashed outside) and 95% band."""
    inside = (grid >= fitted[0]) & (grid <= fitted[1])
    y = predict(law, grid)
    ax.plot(np.where(inside, grid, np.nan), y, color=color, lw=1.8, ls=ls, label=label, zorder=2)
    ax.plot(np.where(inside, np.nan, grid), y, color=color, lw=1.2, ls=":", zorder=2)
    s = law.result.samples
    if law.law == "loglinear" and s:
        draws = s["a"][:, None] + s["b"][:, None] * np.log10(grid)[None]
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        if len(draws) >= 2:
            lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.12, linewidth=0, zorder=1)


def _sparse_log_x(ax):
    """Over a decade or two matplotlib labels every minor tick (2,3,...,9 ×10^k) and they overlap;
    keep only the 2 and 5 ones, and label those."""
    lo, hi = ax.get_xlim()
    if np.log10(hi / lo) < 1:  # under a decade matplotlib crowds labels at 1.6, 1.8, 2, ...: show one decade
        middle = np.sqrt(lo * hi)
        lo, hi = middle / 10**0.5, middle * 10**0.5
        ax.set_xlim(lo, hi)
    if np.log10(hi / lo) < 2.5:
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf)))


def _accuracy_axes(ax, y_values, xlabel: str, metric: str):
    top = max([0.1, *[v for v in y_values if v is not None]])
    ax.set(xscale="log", xlabel=xlabel, ylabel=f"accuracy ({metric})",
           ylim=(-0.02, min(1.02, top * 1.15 + 0.02)))
    _sparse_log_x(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)


@styled
def plot_total_compute(ax, cmp: Comparison, metric: str):
    """Pretrained models against pretraining FLOPs, and each RL run from its starting model's point
    onwards, against pretraining + RL FLOPs: one compute axis."""
    x = np.array([p.flops for p in cmp.pretrain])
    y = np.array([p.accuracy for p in cmp.pretrain])
    ax.scatter(x, y, color=PRE, s=30, zorder=4, label="pretrained models (no RL)")
    lo, hi = cmp.pretrain_range
    grid = _grid(lo / 2, max(hi, max(r.total_flops for r in cmp.rl)) * 2)
    ll, sig = cmp.pretrain_fits["loglinear"], cmp.pretrain_fits["sigmoid"]
    if ll.ok:
        _fit_line(ax, ll, grid, (lo, hi), PRE, f"pretraining log-linear fit: {ll.result.params['b'] + 0.0:+.3f} per decade")
    if sig.ok:
        _fit_line(ax, sig, grid, (lo, hi), GREY, f"pretraining sigmoid fit (A = {sig.result.params['A']:.3f})", ls="-.")
    colors, labelled = _colors(cmp), set()
    ys = list(y)
    for run in cmp.rl:
        color = colors[run.init_run_id]
        xs = [run.init_flops + p.rl_flops for p in run.curve]
        acc = [p.accuracy for p in run.curve]
        if run.initial_accuracy is not None:
            xs, acc = [run.init_flops, *xs], [run.initial_accuracy, *acc]
        label = None if run.init_run_id in labelled else f"+ RL from {_init_name(cmp, run.init_run_id)}"
        labelled.add(run.init_run_id)
        ax.plot(xs, acc, "o-", color=color, ms=3.5, lw=1.1, alpha=0.9, label=label, zorder=3)
        ax.scatter(xs[-1:], acc[-1:], s=45, marker="D", color=color, edgecolors="black", linewidths=0.5, zorder=5)
        ys += acc
    ax.scatter([], [], s=45, marker="D", color="white", edgecolors="black", linewidths=0.5, label="RL run, final")
    _legend_for_fits(ax)
    _accuracy_axes(ax, ys, TOTAL, metric)


def _legend_for_fits(ax):
    ax.fill_between([], [], [], color=GREY, alpha=0.3, linewidth=0, label="95% bootstrap band (log-linear)")
    ax.plot([], [], color=GREY, lw=1.2, ls=":", label="fit extrapolated beyond its points")


@styled
def plot_rl_compute(ax, cmp: Comparison, metric: str):
    """Accuracy along the RL runs against RL FLOPs alone, one colour and one fit per starting model."""
    colors, ys = _colors(cmp), []
    for init, fits in cmp.rl_fits.items():
        runs = [r for r in cmp.rl if r.init_run_id == init]
        color = colors[init]
        for i, run in enumerate(runs):
            ax.plot([p.rl_flops for p in run.curve], [p.accuracy for p in run.curve], "o-", color=color, ms=3.5,
                    lw=0.9, alpha=0.85, label=f"RL from {_init_name(cmp, init)}" if i == 0 else None, zorder=3)
            ys += [p.accuracy for p in run.curve]
        xs = [p.rl_flops for r in runs for p in r.curve]
        if fits["loglinear"].ok:
            fitted = (min(xs), max(xs))
            _fit_line(ax, fits["loglinear"], _grid(fitted[0] / 1.5, fitted[1] * 1.5), fitted, color,
                      f"  log-linear fit: {fits['loglinear'].result.params['b'] + 0.0:+.3f} per decade", ls="--")
    _legend_for_fits(ax)
    _accuracy_axes(ax, ys, RL_X, metric)


@styled
def plot_gains(ax, cmp: Comparison) -> bool:
    """Compute-equivalent gain of every RL run's final point (log-linear pretraining law), with its
    95% interval; False when there is none to draw."""
    gains = [g for g in cmp.gains if g.final and g.law == "loglinear" and g.gain is not None]
    if not gains:
        return False
    colors = _colors(cmp)
    init_of = {r.run_id: r.init_run_id for r in cmp.rl}
    for init in dict.fromkeys(init_of[g.run_id] for g in gains):
        ax.plot([], [], "o", color=colors[init], label=f"RL from {_init_name(cmp, init)}")
    for g in gains:
        lo, hi = g.ci if g.ci else (g.gain, g.gain)
        hi = min(hi, g.gain * 1e3)  # an unbounded interval is drawn as a long bar, and said so in the report
        ax.errorbar([g.spent], [g.gain], yerr=[[g.gain - lo], [hi - g.gain]], fmt="o" if g.status == IN_RANGE else "s",
                    mfc=colors[init_of[g.run_id]] if g.status == IN_RANGE else "white", color=colors[init_of[g.run_id]],
                    capsize=3, ms=6, zorder=3)
        if g.ci and not np.isfinite(g.ci[1]):
            ax.plot([g.spent], [hi], "^", color=colors[init_of[g.run_id]], ms=7, zorder=3)
    if any(g.ci and not np.isfinite(g.ci[1]) for g in gains):
        ax.plot([], [], "^", color=GREY, label="interval open above (some replicates never reach it)")
    ax.axhline(1.0, color="black", lw=0.8, ls="--", label="break-even: RL = more pretraining")
    ax.plot([], [], "o", color=GREY, label="within the pretraining points")
    ax.plot([], [], "s", mfc="white", color=GREY, label="outside them (extrapolated)")
    ax.set(xscale="log", yscale="log", xlabel=TOTAL,
           ylabel="compute-equivalent gain\n(pretraining FLOPs for the same accuracy / FLOPs spent)")
    _sparse_log_x(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
    return True


def plot_loss_law(law: LawFit, loss_pts: Points | None, power_pts: Points | None, convention: str, name: str):
    """The pretraining loss law that was fitted (isoFLOP profiles, Chinchilla frontier or power law)."""
    c_label = f"pretraining compute C (FLOPs, {convention} convention)"
    if law.law == "isoflop":
        fig, (ax1, ax2) = new_figure(n_cols=2, width=6.2)
        F.plot_isoflop(ax1, law.result, loss_pts)
        ax1.set_title("IsoFLOP profiles")
        F.plot_loss_vs_compute(ax2, loss_pts, None, law.result)
        ax2.set(xlabel=c_label, title="Final eval loss vs compute")
        fig.suptitle(f"Pretraining loss law ({name}): N_opt ∝ C^{law.result.params['a']:.3f}")
        return fig
    fig, (ax,) = new_figure(width=7.0)
    if law.law == "power":
        _power(ax, law, power_pts)
    elif loss_pts is not None:
        F.plot_loss_vs_compute(ax, loss_pts, law.result if law.law == "chinchilla" else None, None)
    ax.set(xlabel=c_label)
    title = {"chinchilla": "Chinchilla fit L(N, D), compute-optimal frontier",
             "power": f"power law L = E + A·C^-α, α = {law.result.params['alpha']:.3f}" if law.ok else ""}
    ax.set_title(f"Pretraining loss law ({name}):\n" + title.get(law.law, "no law could be fitted (see report.md)"))
    return fig


@styled
def _power(ax, law: LawFit, pts: Points):
    ax.scatter(pts.x, pts.y, color=PRE, s=24, zorder=3, label="pretraining runs (final eval loss)")
    grid = _grid(pts.x.min() / 1.5, pts.x.max() * 3)
    ax.plot(grid, predict_power(law.result.params, grid), color=CYCLE[1], lw=1.8, label="power-law fit", zorder=2)
    s = law.result.samples
    if s:
        with np.errstate(over="ignore", invalid="ignore"):  # wandering replicates: dropped just below
            draws = s.get("E", np.full(len(s["A"]), law.result.params["E"]))[:, None] + s["A"][:, None] * grid[None] ** (
                -s["alpha"][:, None])
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        if len(draws) >= 2:
            lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
            ax.fill_between(grid, lo, hi, color=CYCLE[1], alpha=0.15, linewidth=0, label="95% bootstrap band")
    # A handful of runs leaves the band wide open: keep the axes on the data, not on the band.
    ax.set(xscale="log", yscale="log", ylabel=LABELS["loss"], ylim=(pts.y.min() / 1.5, pts.y.max() * 1.5))
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):  # 3, 4, 6 rather than 3×10^0
        axis(FormatStrFormatter("%g"))
    _sparse_log_x(ax)
    ax.legend(loc="upper right")


def write_figures(cmp: Comparison, law: LawFit, loss_pts, power_pts, convention: str, metric: str, task: str,
                  name: str, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Every figure as PNG + SVG; returns the files and a note for each figure left out."""
    # Titles go on the figure, not the axes: the legend beside the axes narrows them, and a long
    # axes title would then run off the left edge.
    files, notes = [], []
    fig, (ax,) = new_figure(width=9.0, height=4.8)
    plot_total_compute(ax, cmp, metric)
    fig.suptitle(f"{task}: accuracy vs pretraining compute, and vs pretraining + RL compute")
    files += save(fig, out_dir, "accuracy_vs_total_compute")
    fig, (ax,) = new_figure(width=8.4, height=4.6)
    plot_rl_compute(ax, cmp, metric)
    fig.suptitle(f"{task}: accuracy along RL, per starting model")
    files += save(fig, out_dir, "rl_accuracy_vs_rl_compute")
    fig, (ax,) = new_figure(width=8.8, height=4.6)
    if plot_gains(ax, cmp):
        fig.suptitle(f"{task}: compute-equivalent gain of RL (final points, log-linear pretraining law)")
        files += save(fig, out_dir, "compute_equivalent_gain")
    else:
        notes.append("compute_equivalent_gain: not drawn, no RL run has a defined gain (see the table)")
    files += save(plot_loss_law(law, loss_pts, power_pts, convention, name), out_dir, "pretraining_loss_law")
    return files, notes
