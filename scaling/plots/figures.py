"""The figures of a scaling-law report, one function per panel, each drawing into a given `ax`.

They take fitted `FitResult`s and the `Points` they were fitted on, so other reports (e.g. a
pretraining-vs-RL comparison) can compose them into their own layouts.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter

from scaling.laws.accuracy import predict_error_rate, predict_loglinear, predict_sigmoid
from scaling.laws.chinchilla import compute_optimal, predict_loss
from scaling.laws.isoflop import format_flops, predict_optimal
from scaling.laws.results import FitResult
from scaling.laws.sources import Points
from scaling.plots.style import GREY, LABELS, OKABE_ITO, SEQUENTIAL, n_label, styled

FRONTIER = OKABE_ITO["vermillion"]
ISOFLOP = OKABE_ITO["blue"]


def _log_grid(lo: float, hi: float, n: int = 200) -> np.ndarray:
    return np.logspace(np.log10(lo), np.log10(hi), n)


def _plain_log_y(ax):
    """Loss spans well under a decade: label it 2.2, 2.4, ... rather than 2x10^0, 3x10^0."""
    lo, hi = ax.get_ylim()
    ticks = [t for t in MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _band(ax, x, draws: np.ndarray, color, label=None):
    """Shade the central 95% of bootstrap curves (draws: K x len(x))."""
    draws = draws[np.all(np.isfinite(draws), axis=1)]
    if len(draws) >= 2:
        lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0, label=label)


@styled
def plot_loss_vs_compute(ax, pts: Points, chinchilla: FitResult | None = None, isoflop: FitResult | None = None):
    """Every run's final loss against its compute, coloured by model size, with the compute-optimal frontier."""
    sc = ax.scatter(pts.C, pts.loss, c=pts.N, norm=LogNorm(), cmap=SEQUENTIAL, s=16, linewidths=0.3,
                    edgecolors="white", label="runs", zorder=3)
    ax.figure.colorbar(sc, ax=ax, pad=0.01).set_label(n_label(pts))
    if chinchilla is not None:
        grid = _log_grid(pts.C.min(), pts.C.max() * 10)
        n_opt, d_opt = compute_optimal(chinchilla.params, grid)
        ax.plot(grid, predict_loss(chinchilla.params, n_opt, d_opt), color=FRONTIER, lw=2,
                label="compute-optimal frontier (Chinchilla fit)", zorder=4)
    if isoflop is not None:
        budgets = isoflop.extra["budgets"]
        ax.scatter([b["C"] for b in budgets], [b["L_opt"] for b in budgets], marker="*", s=70, color="black",
                   label="isoFLOP minima", zorder=5)
    ax.set(xscale="log", yscale="log", xlabel=LABELS["C"], ylabel=LABELS["loss"])
    _plain_log_y(ax)
    ax.legend(loc="upper right")


@styled
def plot_isoflop(ax, fit: FitResult, pts: Points):
    """Loss against N for each budget, with its fitted parabola (in log N) and minimum."""
    kept = fit.state["kept"]
    excluded = ~np.isin(pts.budget, kept)
    if excluded.any():
        ax.scatter(pts.N[excluded], pts.loss[excluded], s=8, color=GREY, alpha=0.6,
                   label=f"runs in excluded budgets ({excluded.sum()})", zorder=2)
    norm = LogNorm(vmin=min(kept), vmax=max(kept) * 1.0001)
    many = len(kept) > 8  # too many budgets for a legend: a colour bar instead
    if many:
        ax.figure.colorbar(_mappable(norm), ax=ax, pad=0.01).set_label("budget C (FLOPs)")
    colormap = _colormap()
    for row in fit.state["budgets"]:
        if row["C"] not in kept:
            continue
        color = colormap(norm(row["C"]))
        members = pts.budget == row["C"]
        lo, hi = row["log_n_range"]
        u = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 100)
        label = None if many else f"C = {format_flops(row['C'])}"
        ax.scatter(pts.N[members], pts.loss[members], s=16, color=color, zorder=3, label=label)
        ax.plot(10**u, np.polyval(row["parabola"], u), color=color, lw=1.3, zorder=3)
        ax.scatter([row["N_opt"]], [row["L_opt"]], marker="*", s=90, color=color, edgecolors="black",
                   linewidths=0.6, zorder=4)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", color="black", linestyle="none", markersize=9))
    labels.append("parabola minimum (N_opt, L_opt)")
    ax.legend(handles, labels, loc="best")  # the parabolas fill different corners from sweep to sweep
    ax.set(xscale="log", xlabel=n_label(pts), ylabel=LABELS["loss"])


def _colormap():
    import matplotlib

    return matplotlib.colormaps[SEQUENTIAL]


def _mappable(norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=_colormap())


@styled
def plot_optimal_allocation(ax, which: str, c_range: tuple[float, float], isoflop: FitResult | None = None,
                            chinchilla: FitResult | None = None, extend_decades: float = 1.0):
    """N_opt(C) (which="N") or D_opt(C) (which="D"): fitted power laws, extrapolated a decade,
    with 95% bootstrap bands, and the isoFLOP minima they were fitted to."""
    hi = c_range[1] * 10**extend_decades
    grid = _log_grid(c_range[0], hi)
    ax.axvspan(c_range[1], hi, color=GREY, alpha=0.12, linewidth=0, label="extrapolation")
    column = 0 if which == "N" else 1
    if isoflop is not None:
        p, s = isoflop.params, isoflop.samples
        exponent, prefactor = ("a", "k_N") if which == "N" else ("b", "k_D")
        if s:
            _band(ax, grid, s[prefactor][:, None] * grid[None] ** s[exponent][:, None], ISOFLOP)
        ax.plot(grid, predict_optimal(p, grid)[column], color=ISOFLOP, lw=2,
                label=f"isoFLOP fit: {which}_opt ∝ C^{p[exponent]:.3f}")
        budgets = isoflop.extra["budgets"]
        ax.scatter([b["C"] for b in budgets], [b[f"{which}_opt"] for b in budgets], color="black", s=18, zorder=4,
                   label="isoFLOP minima")
    if chinchilla is not None:
        exponent = chinchilla.extra["a" if which == "N" else "b"]
        if chinchilla.samples:
            g, a_s = chinchilla.samples["G"][:, None], chinchilla.samples["a"][:, None]
            scaled = (grid[None] / 6.0)
            draws = g * scaled**a_s if which == "N" else scaled ** (1 - a_s) / g
            _band(ax, grid, draws, FRONTIER)
        ax.plot(grid, compute_optimal(chinchilla.params, grid)[column], color=FRONTIER, lw=2, ls="--",
                label=f"Chinchilla fit: {which}_opt ∝ C^{exponent:.3f}")
    ax.set(xscale="log", yscale="log", xlabel=LABELS["C"], ylabel=f"compute-optimal {LABELS[which]}")
    ax.legend(loc="upper left")


@styled
def plot_isoloss_contours(ax, chinchilla: FitResult, pts: Points | None = None):
    """Contours of the fitted L(N, D) over tokens × parameters, with the efficient frontier."""
    n_lo, n_hi = (pts.N.min() / 3, pts.N.max() * 3) if pts is not None else (1e7, 1e11)
    d_lo, d_hi = (pts.D.min() / 3, pts.D.max() * 3) if pts is not None else (1e8, 1e12)
    d, n = np.meshgrid(_log_grid(d_lo, d_hi, 160), _log_grid(n_lo, n_hi, 160))
    loss = predict_loss(chinchilla.params, n, d)
    levels = np.geomspace(loss.min() * 1.005, np.percentile(loss, 90), 12)
    filled = ax.contourf(d, n, loss, levels=levels, cmap=SEQUENTIAL, norm=LogNorm(), extend="max")
    lines = ax.contour(d, n, loss, levels=levels[::2], colors="white", linewidths=0.6)
    ax.clabel(lines, fmt="%.2f", fontsize=7, inline_spacing=2)
    bar = ax.figure.colorbar(filled, ax=ax, pad=0.01, ticks=levels[::2], format="%.2f")
    bar.set_label(f"fitted {LABELS['loss']}")
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    c_lo, c_hi = 6 * n_lo * d_lo, 6 * n_hi * d_hi
    n_opt, d_opt = compute_optimal(chinchilla.params, _log_grid(c_lo, c_hi, 400))
    inside = (n_opt >= n_lo) & (n_opt <= n_hi) & (d_opt >= d_lo) & (d_opt <= d_hi)
    ax.plot(d_opt[inside], n_opt[inside], color=FRONTIER, lw=2.2, label="efficient frontier (min loss per C)")
    if pts is not None:
        ax.scatter(pts.D, pts.N, s=7, color="black", alpha=0.7, linewidths=0, label="runs")
    ax.set(xscale="log", yscale="log", xlabel=LABELS["D"], ylabel=n_label(pts), xlim=(d_lo, d_hi), ylim=(n_lo, n_hi))
    ax.legend(loc="lower left", framealpha=0.9)


@styled
def plot_accuracy(ax, pts: Points, loglinear: FitResult | None = None, sigmoid: FitResult | None = None,
                  xlabel: str = LABELS["rl_flops"], extend_decades: float = 1.0):
    """Accuracy against compute (log x) for every curve, with the log-linear and sigmoid fits."""
    curves = np.unique(pts.curve) if pts.curve is not None else [None]
    for i, curve in enumerate(curves):
        members = pts.curve == curve if curve is not None else np.ones(len(pts.x), bool)
        label = (f"run {curve}" if len(curves) <= 6 else None) if curve is not None else "evaluations"
        ax.plot(pts.x[members], pts.y[members], "o-", ms=3.5, lw=0.8, alpha=0.8,
                color=GREY if len(curves) > 6 else None, label=label, zorder=3)
    grid = _log_grid(pts.x.min(), pts.x.max() * 10**extend_decades)
    ax.axvspan(pts.x.max(), grid[-1], color=GREY, alpha=0.12, linewidth=0, label="extrapolation")
    if loglinear is not None:
        p = loglinear.params
        ax.plot(grid, predict_loglinear(p, grid), color=OKABE_ITO["blue"], lw=2,
                label=f"log-linear: {p['b']:+.3f} per 10x compute")
        if "error_rate" in loglinear.extra:
            k = loglinear.extra["error_rate"]["k"]
            ax.plot(grid, predict_error_rate(loglinear.extra["error_rate"], grid), color=OKABE_ITO["green"],
                    lw=1.6, ls="--", label=f"error-rate power law: 1-y ∝ C^-{k:.3f}")
    if sigmoid is not None:
        p = sigmoid.params
        ax.plot(grid, predict_sigmoid(p, grid), color=FRONTIER, lw=2, label=f"sigmoid (ScaleRL), asymptote A = {p['A']:.3f}")
        ax.axhline(p["A"], color=FRONTIER, lw=0.8, ls=":")
    ax.set(xscale="log", xlabel=xlabel, ylabel=LABELS["accuracy"])
    ax.legend(loc="upper left")


@styled
def plot_residuals(ax, fit: FitResult, x: np.ndarray, xlabel: str, log_ratio: bool = False):
    """Observed minus fitted (or log10 observed/fitted) against x, for any fit."""
    resid = np.log10(fit.observed / fit.predicted) if log_ratio else fit.observed - fit.predicted
    ax.axhline(0, color="black", lw=0.8)
    ax.scatter(x, resid, s=12, color=OKABE_ITO["blue"], alpha=0.8, zorder=3)
    ylabel = {"chinchilla": "loss residual (nats/token)", "isoflop": "log10(N_opt / fitted)",
              "power": "residual (y units)", "loglinear": "accuracy residual", "sigmoid": "accuracy residual"}
    rms = np.sqrt(np.mean(resid**2))
    ax.set(xscale="log", xlabel=xlabel, ylabel="log10(observed / fitted)" if log_ratio and fit.law != "isoflop"
           else ylabel.get(fit.law, "residual"), title=f"{fit.law} residuals (RMS {rms:.3g})")
