"""The split report's figures: iso-compute profiles, the best share against total compute, and
accuracy against test-time compute with its iso-accuracy frontier.

Every budget is drawn with its measured pipelines, whether or not the law finds its optimum: a
budget without one says why in the legend (the report's table has the full reason). Colours follow
plots.allocation: viridis by total compute (budgets) or by training compute (models).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from scaling.compare.figures import _sparse_log_x
from scaling.compare.split.analysis import ExchangeRate, SplitAnalysis
from scaling.laws.isoflop import format_flops
from scaling.laws.split import curve_accuracy
from scaling.plots.allocation import budget_colors, plot_best_share, plot_testtime_frontier, share_ticks
from scaling.plots.style import GREY, SEQUENTIAL, new_figure, save, styled


def short_reason(reason: str) -> str:
    """The gist of a refusal, for a legend: the law's reason up to its parenthesis."""
    if reason.startswith("pure pretraining"):
        return "f = 0 beats the fitted optimum"
    return reason.split(" (")[0]


def _share_axis(ax, a: SplitAnalysis):
    """Logit share axis for the logit curve (shares spread over decades), with f = 0 drawn apart; linear
    otherwise. Returns where f = 0 is drawn."""
    shares = np.concatenate([b.shares for b in a.budgets])
    positive = shares[(shares > 0) & (shares < 1)]
    if a.curve != "logit" or len(positive) == 0:
        ax.set_xlim(-0.03, max(shares.max(), 0.1) * 1.08)
        return 0.0
    lo, hi = positive.min() / 1.6, min(1 - (1 - positive.max()) / 1.6, 0.999)
    zero_at = lo / 1.6
    ax.set_xscale("logit")
    ax.axvspan(zero_at / 1.3, lo, color=GREY, alpha=0.12, linewidth=0)
    ax.set_xlim(zero_at / 1.3, hi)
    share_ticks(ax, lo, hi, zero_at if (shares == 0).any() else None)
    return zero_at


@styled
def plot_iso_compute(ax, a: SplitAnalysis, metric: str):
    """Accuracy against RL share, one colour per total budget: measured pipelines (joined through the mean
    of each share), the fitted curve around the optimum and the optimum starred with its interval where the
    law finds one; otherwise the reason in the legend."""
    color = budget_colors([b.C for b in a.budgets])
    zero_at = _share_axis(ax, a)
    for b in a.budgets:
        c = color(b.C)
        f = np.asarray(b.shares)
        x = np.where(f == 0, zero_at, f)
        ax.scatter(x, b.accuracy, s=22, color=c, alpha=0.85, zorder=3, linewidths=0)
        order = np.unique(f)
        means = [np.mean(np.asarray(b.accuracy)[f == s]) for s in order]
        ax.plot(np.where(order == 0, zero_at, order), means, color=c, lw=0.9, ls=":", zorder=2)
        if b.reason:
            label = textwrap.fill(f"C = {format_flops(b.C)}: no optimum ({short_reason(b.reason)})", 58)
            ax.plot([], [], "o", color=c, ms=5, label=label)
            continue
        lo, hi = b.fitted_shares
        grid = np.logspace(np.log10(lo), np.log10(hi), 200) if a.curve == "logit" else np.linspace(lo, hi, 200)
        ax.plot(grid, curve_accuracy(a.curve, b.coef, grid), color=c, lw=1.8, zorder=3)
        ci = b.ci.get("share_opt")
        if ci:
            ax.errorbar([b.share_opt], [b.accuracy_opt], xerr=[[b.share_opt - ci[0]], [ci[1] - b.share_opt]],
                        fmt="none", ecolor="black", elinewidth=1, capsize=3, zorder=4)
        ax.scatter([b.share_opt], [b.accuracy_opt], marker="*", s=150, color=c, edgecolors="black", linewidths=0.7,
                   zorder=5)
        interval = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else " (no interval)"
        ax.plot([], [], "o-", color=c, ms=5, label=f"C = {format_flops(b.C)}: best share {b.share_opt:.3g}{interval}")
    handles, labels = ax.get_legend_handles_labels()
    if any(not b.reason for b in a.budgets):  # a star is drawn only where the law found an optimum
        handles.append(Line2D([], [], marker="*", color="black", linestyle="none", markersize=11))
        labels.append("fitted best share (95% CI)")
    handles.append(Line2D([], [], color=GREY, lw=0.9, ls=":"))
    labels.append("measured: mean per share")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
              fontsize=8)
    top = max(max(b.accuracy) for b in a.budgets)
    ax.set_ylim(-0.02, min(1.02, max(0.1, top * 1.1 + 0.02)))  # all-zero accuracies stay at the bottom, not mid-axis
    scale = "logit scale; 0 = pretraining only" if a.curve == "logit" and zero_at else "linear scale"
    ax.set(xlabel=f"RL share of total compute f ({scale})",
           ylabel=metric if metric.startswith("accuracy") else f"accuracy ({metric})")


@styled
def plot_best_share_vs_compute(ax, a: SplitAnalysis):
    """Best RL share against total compute: fitted optima with intervals and their trend (the law's own
    figure) where it is fitted; the best share tried, hollow, for each budget without an optimum."""
    refusal = a.share_trend_refusal()
    if refusal is None:
        plot_best_share(ax, a.fit)
    else:
        fitted = [b for b in a.budgets if not b.reason]
        for b in fitted:
            ci = b.ci.get("share_opt")
            if ci:
                ax.errorbar([b.C], [b.share_opt], yerr=[[b.share_opt - ci[0]], [ci[1] - b.share_opt]], fmt="none",
                            ecolor="black", elinewidth=1, capsize=3, zorder=4)
        if fitted:
            ax.scatter([b.C for b in fitted], [b.share_opt for b in fitted], marker="*", s=110, color="black",
                       zorder=5, label="best share per budget" + (" (95% CI)" if fitted[0].ci else ""))
        ax.text(0.03, 0.97, textwrap.fill(f"no trend: {refusal}", 70), transform=ax.transAxes, va="top",
                fontsize=7.5, bbox=dict(boxstyle="round", facecolor="white", edgecolor=GREY))
        ax.set(xscale="log", xlabel="total compute C (FLOPs, pretraining + RL)", ylabel="best RL share f_opt")
    refused = [b for b in a.budgets if b.reason]
    if refused:
        ax.scatter([b.C for b in refused], [b.best_measured[0] for b in refused], s=50, facecolors="none",
                   edgecolors="black", linewidths=1.1, zorder=4, label="no fitted optimum: best share tried")
    C = [b.C for b in a.budgets]
    ax.set_xlim(min(C) / 2, max(C) * 2)
    shares = [b.best_measured[0] for b in a.budgets] + [b.share_opt for b in a.budgets if b.share_opt is not None]
    ax.set_ylim(-0.03, max(0.2, max(shares) * 1.3) + (0.25 if refusal else 0))
    ax.set_title("")  # the figure's title says it
    if refusal:  # the reason's box fills the top of the axes: the legend goes below them
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False)
    else:
        ax.legend(loc="upper right", fontsize=8)


def _model_norm(models: list[dict]):
    flops = [m["train_flops"] for m in models]
    return LogNorm(vmin=min(flops), vmax=max(flops) * 1.0001)


@styled
def plot_test_time(ax, models: list[dict], rate: ExchangeRate):
    """One metric's accuracy against test-time compute per model (colour: its training compute; circle:
    pretrained, diamond: after RL), with the law's logit-linear curve for each model it fitted."""
    import matplotlib

    norm, cmap = _model_norm(models), matplotlib.colormaps[SEQUENTIAL]
    fitted = {m["train_C"]: m for m in rate.result.extra["models"]} if rate.result else {}
    for m in models:
        c = cmap(0.9 * norm(m["train_flops"]))
        x = np.asarray(m["k"]) * m["sample_flops"]
        ax.plot(x, m[rate.metric], marker="o" if m["role"] == "pretrained" else "D", ms=4, color=c, lw=0.8,
                ls=":" if m["train_flops"] in fitted else "-", alpha=0.9, zorder=3)
        f = fitted.get(m["train_flops"])
        if f:
            grid = np.logspace(*np.log10(f["test_C_range"]), 50)
            ax.plot(grid, 1 / (1 + np.exp(-(f["intercept"] + f["test_slope"] * np.log10(grid)))), color=c, lw=1.6,
                    zorder=2)
    sm = ScalarMappable(norm=norm, cmap=matplotlib.colors.ListedColormap(cmap(np.linspace(0, 0.9, 256))))
    ax.figure.colorbar(sm, ax=ax, label="training compute (FLOPs, full: pretraining + RL)")
    handles = [Line2D([], [], marker="o", color=GREY, ls="none"), Line2D([], [], marker="D", color=GREY, ls="none"),
               Line2D([], [], color=GREY, lw=1.6)]
    ax.legend(handles, ["pretrained model", "after RL (final policy)", "logit-linear fit (testtime law)"],
              loc="upper left", fontsize=8)
    if rate.result:
        r, ci = rate.result.params["exchange_rate"], rate.result.ci.get("exchange_rate")
        title = f"{rate.metric}: 10x training ≙ {r:.3g}x test-time compute"
        title += f"\n(95% CI {min(ci):.3g}x – {max(ci):.3g}x)" if ci else ""
    else:
        title = textwrap.fill(f"{rate.metric}: exchange rate undefined ({rate.reason})", 70)
    top = max(max(m[rate.metric]) for m in models)
    ax.set_ylim(-0.02, min(1.02, max(0.1, top * 1.1 + 0.02)))
    ax.set(xscale="log", xlabel="test-time compute per problem (FLOPs: k samples × forward FLOPs per sample)",
           ylabel=f"accuracy ({rate.metric}, k = {', '.join(str(k) for k in models[0]['k'])})", title=title)
    ax.title.set_fontsize(9.5)
    _sparse_log_x(ax)  # 2 and 5 x 10^k labels only: all minor labels collide over one or two decades


def write_figures(a: SplitAnalysis, models: list[dict], rates: list[ExchangeRate], metric: str, name: str,
                  out_dir: Path) -> list[Path]:
    files = []
    fig, (ax,) = new_figure(width=10.0, height=5.0)
    plot_iso_compute(ax, a, metric)
    fig.suptitle(f"{name}: iso-compute profiles, accuracy against RL share at fixed total compute")
    files += save(fig, out_dir, "iso_compute")
    fig, (ax,) = new_figure(width=7.0, height=4.8)
    plot_best_share_vs_compute(ax, a)
    fig.suptitle(f"{name}: where the next FLOP goes,\nbest RL share against total compute")
    files += save(fig, out_dir, "best_share")
    if models:
        fig, axes = new_figure(n_cols=len(rates), width=6.6, height=5.0)
        for ax, rate in zip(axes, rates):
            plot_test_time(ax, models, rate)
        fig.suptitle(f"{name}: accuracy against test-time compute, every pretrained model and RL policy")
        files += save(fig, out_dir, "test_time")
    fitted = [r for r in rates if r.result]
    if fitted:
        fig, axes = new_figure(n_cols=len(fitted), width=6.2, height=4.8)
        for ax, rate in zip(axes, fitted):
            plot_testtime_frontier(ax, rate.result)
            ax.set_title(f"{rate.metric}: {ax.get_title()}", fontsize=9.5)
        fig.suptitle(f"{name}: iso-accuracy lines in training × test-time compute")
        files += save(fig, out_dir, "test_time_frontier")
    return files
