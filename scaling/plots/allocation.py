"""Figures of the allocation laws: where the next FLOP should go.

`plot_split_profiles`: accuracy against RL share, one curve per total budget, the best share starred
with its interval (the isoFLOP figure of the pretraining/RL split). `plot_best_share` and
`plot_best_accuracy`: the optimum's trend in total compute. `plot_testtime_curves` and
`plot_testtime_frontier`: accuracy against test-time compute per model, and the iso-accuracy lines
in training × test-time compute whose slope is the exchange rate. `write_split_figures` and
`write_testtime_figures` lay them out and save PNG + SVG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from scaling.laws.isoflop import format_flops
from scaling.laws.results import FitResult
from scaling.laws.sources import Points
from scaling.laws.split import curve_accuracy, predict_best_accuracy, predict_share
from scaling.plots.style import GREY, OKABE_ITO, SEQUENTIAL, new_figure, save, short_source, styled

TREND = OKABE_ITO["vermillion"]


def _accuracy_label(pts: Points) -> str:
    column = pts.labels.get("y", "accuracy")
    return "accuracy" if column == "accuracy" else f"accuracy ({column})"


def budget_colors(budgets):
    import matplotlib

    norm = LogNorm(vmin=min(budgets), vmax=max(budgets) * 1.0001)
    cmap = matplotlib.colormaps[SEQUENTIAL]
    return lambda c: cmap(0.9 * norm(c))  # the palest viridis yellow is unreadable on white


def share_ticks(ax, lo: float, hi: float, zero_at: float | None):
    """Readable ticks on a logit share axis (0.01, 0.05, 0.1, 0.25, 0.5, ...), with '0' where pure
    pretraining is drawn."""
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99) if lo <= t <= hi]
    labels = [f"{t:g}" for t in ticks]
    if zero_at is not None:
        ticks, labels = [zero_at] + ticks, ["0"] + labels
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, i: labels[i] if i is not None and i < len(labels) else ""))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


@styled
def plot_split_profiles(ax, fit: FitResult, pts: Points):
    """Accuracy against RL share per budget: runs, fitted curve around the optimum, optimum with its interval."""
    curve = fit.state["curve"]
    kept = [b["C"] for b in fit.extra["budgets"]]
    color = budget_colors(np.unique(pts.budget))
    positive = pts.x[(pts.x > 0) & (pts.x < 1)]
    zero_at = None
    if curve == "logit":
        lo, hi = positive.min() / 1.6, min(1 - (1 - positive.max()) / 1.6, 0.999)
        zero_at = lo / 1.6 if (pts.x == 0).any() else None  # f = 0 has no place on a logit axis: drawn apart
        ax.set_xscale("logit")
        ax.axvspan((zero_at or lo) / 1.3, lo, color=GREY, alpha=0.12, linewidth=0)
    for budget in np.unique(pts.budget):
        m = pts.budget == budget
        x = np.where(pts.x[m] == 0, zero_at, pts.x[m]) if zero_at is not None else pts.x[m]
        c = color(budget) if budget in kept else GREY
        label = f"C = {format_flops(budget)}" + ("" if budget in kept else " (no optimum)")
        ax.scatter(x, pts.y[m], s=14, color=c, alpha=0.75, zorder=3, label=label, linewidths=0)
    for row in fit.extra["budgets"]:
        lo_f, hi_f = fit.state["fitted_shares"][row["C"]]  # the shares around the optimum it was fitted to
        grid = (np.logspace(np.log10(lo_f), np.log10(hi_f), 200) if curve == "logit" else np.linspace(lo_f, hi_f, 200))
        ax.plot(grid, curve_accuracy(curve, fit.state["coef"][row["C"]], grid), color=color(row["C"]), lw=1.6, zorder=3)
        ci = row["ci"].get("share_opt")
        xerr = None if not ci else [[row["share_opt"] - ci[0]], [ci[1] - row["share_opt"]]]
        ax.errorbar([row["share_opt"]], [row["accuracy_opt"]], xerr=xerr, fmt="none", ecolor="black", elinewidth=1,
                    capsize=3, zorder=4)
        ax.scatter([row["share_opt"]], [row["accuracy_opt"]], marker="*", s=130, color=color(row["C"]),
                   edgecolors="black", linewidths=0.7, zorder=5)
    if curve == "logit":
        ax.set_xlim((zero_at or lo) / 1.3, hi)
        share_ticks(ax, lo, hi, zero_at)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", color="black", linestyle="none", markersize=10))
    labels.append("best share (95% CI)" if fit.ci else "best share")
    # Below the axes: the profiles fill every corner.
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
    scale = "logit scale; 0 = pretraining only" if curve == "logit" else "linear scale"
    ax.set(xlabel=f"RL share of total compute f ({scale})", ylabel=_accuracy_label(pts),
           title="iso-compute profiles: accuracy against RL share")


@styled
def plot_best_share(ax, fit: FitResult):
    """Best RL share against total compute, with intervals, the fitted trend and its bootstrap band."""
    budgets = fit.extra["budgets"]
    C = np.array([b["C"] for b in budgets])
    grid = np.logspace(np.log10(C.min()) - 0.2, np.log10(C.max()) + 0.5, 100)
    p = fit.params
    if "slope" in p:
        draws = fit.samples["intercept"][:, None] + fit.samples["slope"][:, None] * np.log10(grid)[None]
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        if len(draws) >= 2:
            lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
            ax.fill_between(grid, lo, hi, color=TREND, alpha=0.15, linewidth=0, label="trend, 95% bootstrap band")
        sign = "−" if p["slope"] < 0 else "+"
        ax.plot(grid, predict_share(p, grid), color=TREND, lw=1.8,
                label=f"share_opt = {p['intercept']:.3f} {sign} {abs(p['slope']):.3f}·log10 C")
    else:
        _refusal_box(ax, fit.extra["refused"]["share_trend"])
    _points_with_ci(ax, C, budgets, "share_opt", "best share per budget")
    ax.set(xscale="log", xlabel="total compute C (FLOPs, pretraining + RL)", ylabel="best RL share f_opt",
           title="where the next FLOP goes: best RL share")
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize=8)


@styled
def plot_best_accuracy(ax, fit: FitResult):
    budgets = fit.extra["budgets"]
    C = np.array([b["C"] for b in budgets])
    grid = np.logspace(np.log10(C.min()) - 0.2, np.log10(C.max()) + 0.5, 100)
    p = fit.params
    if "logit_accuracy_slope" in p:
        ax.plot(grid, predict_best_accuracy(p, grid), color=TREND, lw=1.8,
                label=f"logit trend: {p['logit_accuracy_slope']:+.3f} logit per 10x C")
    else:
        _refusal_box(ax, fit.extra["refused"]["accuracy_trend"])
    _points_with_ci(ax, C, budgets, "accuracy_opt", "best accuracy per budget")
    f0 = [(b["C"], b["accuracy_f0"]) for b in budgets if "accuracy_f0" in b]
    if f0:
        ax.scatter(*zip(*f0), marker="s", s=18, color=GREY, zorder=3, label="pretraining only (f = 0)")
    ax.set(xscale="log", xlabel="total compute C (FLOPs, pretraining + RL)", ylabel="accuracy at the best share",
           title="what a well-split budget buys")
    ax.legend(loc="best", fontsize=8)


def _refusal_box(ax, reason: str):
    """A trend the law refuses is not drawn: its reason stands where the line would be."""
    import textwrap

    ax.text(0.03, 0.03, textwrap.fill(f"no trend: {reason}", 60), transform=ax.transAxes, va="bottom", fontsize=7,
            bbox=dict(boxstyle="round", facecolor="white", edgecolor=GREY))


def _points_with_ci(ax, C, budgets, key, label):
    y = np.array([b[key] for b in budgets])
    ci = [b["ci"].get(key) for b in budgets]
    if all(ci):
        yerr = np.array([[v - c[0] for v, c in zip(y, ci)], [c[1] - v for v, c in zip(y, ci)]])
        ax.errorbar(C, y, yerr=yerr, fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=4)
        label += " (95% CI)"
    ax.scatter(C, y, marker="*", s=110, color="black", zorder=5, label=label)


@styled
def plot_testtime_curves(ax, fit: FitResult, pts: Points):
    """Accuracy against test-time compute per model, with each model's logit-linear fit."""
    models = fit.extra["models"]
    color = budget_colors([m["train_C"] for m in models] or list(pts.C))
    for m in models:
        sel = pts.C == m["train_C"]
        c = color(m["train_C"])
        ax.scatter(pts.x[sel], pts.y[sel], s=16, color=c, zorder=3,
                   label=f"trained with {format_flops(m['train_C'])} FLOPs")
        grid = np.logspace(*np.log10(m["test_C_range"]), 100)
        ax.plot(grid, 1 / (1 + np.exp(-(m["intercept"] + m["test_slope"] * np.log10(grid)))), color=c, lw=1.3)
    for level in fit.extra["levels"]:
        ax.axhline(level["accuracy"], color=GREY, lw=0.6, ls=":", zorder=1)
    ax.set(xscale="log", xlabel="test-time compute per problem (FLOPs: k samples × FLOPs per sample)",
           ylabel=_accuracy_label(pts), title="accuracy against test-time compute")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color=GREY, lw=0.8, ls=":"))
    labels.append("iso-accuracy levels")
    ax.legend(handles, labels, loc="best", fontsize=8)


@styled
def plot_testtime_frontier(ax, fit: FitResult):
    """Test-time compute each model needs for each accuracy level, against its training compute, with
    the fitted parallel iso-accuracy lines (shared slope)."""
    from scaling.laws.testtime import _needed

    models, slope = fit.extra["models"], fit.params["slope"]
    import matplotlib

    cmap = matplotlib.colormaps["plasma"]
    levels = [lv["accuracy"] for lv in fit.extra["levels"]]
    level_labels = distinct_labels(levels)
    for j, level in enumerate(levels):
        idx = [i for i, lv in fit.state["pairs"] if lv == level]
        train = np.array([models[i]["train_C"] for i in idx])
        need = np.array([_needed(models[i], level) for i in idx])
        c = cmap(0.85 * j / max(1, len(levels) - 1))
        ax.scatter(train, 10**need, color=c, s=20, zorder=3, label=f"accuracy {level_labels[j]}")
        offset = np.mean(need - slope * np.log10(train))
        grid = np.logspace(np.log10(train.min()) - 0.15, np.log10(train.max()) + 0.15, 20)
        ax.plot(grid, 10 ** (offset + slope * np.log10(grid)), color=c, lw=1.2)
    rate, ci = fit.params["exchange_rate"], fit.ci.get("exchange_rate")
    text = f"10x training compute ≙ {rate:.3g}x test-time compute"
    if ci:
        text += f"\n(95% CI {min(ci):.3g}x – {max(ci):.3g}x)"
    ax.text(0.97, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=9,
            bbox=dict(boxstyle="round", facecolor="white", edgecolor=GREY))
    ax.set(xscale="log", yscale="log", xlabel="training compute C_train (FLOPs)",
           ylabel="test-time compute needed (FLOPs per problem)",
           title=f"iso-accuracy frontier: slope {slope:.3f} decades per decade")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 4)  # headroom for the exchange-rate box
    ax.legend(loc="lower left", fontsize=8)


def distinct_labels(values, min_digits: int = 2, max_digits: int = 6) -> list[str]:
    """The values with the fewest significant digits (at least `min_digits`) that tell them all apart: levels
    spaced evenly in logit crowd near 0, where two decimals print 0.00 for three of them."""
    for digits in range(min_digits, max_digits + 1):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{v:.{max_digits}g}" for v in values]


def write_split_figures(fit: FitResult, pts: Points, out_dir: Path, name: str = "split") -> list[Path]:
    fig, (a, b, c) = new_figure(n_cols=3, width=5.6, height=4.4)
    plot_split_profiles(a, fit, pts)
    plot_best_share(b, fit)
    plot_best_accuracy(c, fit)
    fig.suptitle(f"pretraining/RL split: {short_source(pts.source)}")
    return save(fig, Path(out_dir), name)


def write_testtime_figures(fit: FitResult, pts: Points, out_dir: Path, name: str = "testtime") -> list[Path]:
    fig, (a, b) = new_figure(n_cols=2, width=6.0, height=4.6)
    plot_testtime_curves(a, fit, pts)
    plot_testtime_frontier(b, fit)
    fig.suptitle(f"training vs test-time compute: {short_source(pts.source)}")
    return save(fig, Path(out_dir), name)
