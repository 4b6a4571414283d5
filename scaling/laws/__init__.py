"""Scaling-law fits: power law, Chinchilla, isoFLOP, log-linear and sigmoid, with bootstrap intervals;
and two allocation laws: the pretraining/RL split at fixed total compute (`split`) and the exchange rate
between training and test-time compute (`testtime`).

Reads a CSV or a sweep registry and never imports the model, training or RL code, so anyone's
results table can be fitted. Typical use:

    from scaling import laws
    pts = laws.load_points("sweeps/out/pretrain", "chinchilla")
    result = laws.fit("chinchilla", pts, bootstrap=1000)
    print(result.params, result.extra["a"], result.ci["alpha"])

The fitting modules import JAX; they are loaded on first use so that reading data stays light.
"""
from __future__ import annotations

from scaling.errors import UserError
from scaling.laws import results
from scaling.laws.results import FitResult
from scaling.laws.sources import CURVE_LAWS, LOSS_LAWS, Columns, Points, load_loss_points, load_xy_points

ALLOCATION_LAWS = ("split", "testtime")  # where a FLOP goes: their own columns (scaling.laws.split, .testtime)
LAWS = ("power", "chinchilla", "isoflop", "loglinear", "sigmoid") + ALLOCATION_LAWS

__all__ = ["LAWS", "Columns", "FitResult", "Points", "fit", "load_points", "render_table"]


def check_law(law: str) -> str:
    if law not in LAWS:
        raise UserError(f"unknown law {law!r}; choose one of: {', '.join(LAWS)}")
    return law


def load_points(source, law: str, columns: Columns = Columns(), drop_highest_loss: int = 0, *,
                k: str | None = None, sample_flops: str | None = None) -> Points:
    """The data a law needs from a CSV file or a sweep directory (see scaling.laws.sources); `k` and
    `sample_flops` name testtime's columns when test-time compute is k × FLOPs per sample."""
    check_law(law)
    if law in ALLOCATION_LAWS and drop_highest_loss:
        raise UserError(f"--drop-highest-loss applies to loss laws ({', '.join(LOSS_LAWS)}), not {law}")
    if law == "split":
        from scaling.laws.split import load_split_points
        return load_split_points(source, columns)
    if law == "testtime":
        from scaling.laws.testtime import load_testtime_points
        return load_testtime_points(source, columns, k=k, sample_flops=sample_flops)
    if law in ("chinchilla", "isoflop"):
        return load_loss_points(source, columns, drop_highest_loss)
    return load_xy_points(source, law, columns, drop_highest_loss)


def fit(law: str, pts: Points, *, method: str | None = None, fixed: dict[str, float] | None = None,
        bootstrap: int = 0, holdout_largest: bool = False, seed: int = 0) -> FitResult:
    """Fit one law. `method` is for chinchilla (huber, huber-mle, huber-mean) and split (the curve in
    the share: auto, logit, share); `fixed` pins a parameter (power: E, sigmoid: R0); `bootstrap`
    replicates give 95% percentile intervals."""
    check_law(law)
    if method and law not in ("chinchilla", "split"):
        raise UserError(f"--method applies to chinchilla and split only, not {law}")
    if fixed and law not in ("power", "sigmoid"):
        raise UserError(f"--fix applies to power (E) and sigmoid (R0), not {law}")
    common = dict(bootstrap=bootstrap, holdout_largest=holdout_largest, seed=seed)
    if law == "split":
        from scaling.laws.split import fit_split
        return fit_split(pts, curve=method or "auto", **common)
    if law == "testtime":
        from scaling.laws.testtime import fit_testtime
        return fit_testtime(pts, **common)
    if law == "chinchilla":
        from scaling.laws.chinchilla import fit_chinchilla
        return fit_chinchilla(pts, method=method or "huber", **common)
    if law == "isoflop":
        from scaling.laws.isoflop import fit_isoflop
        return fit_isoflop(pts, **common)
    if law == "power":
        from scaling.laws.power import fit_power
        return fit_power(pts, fixed=fixed, **common)
    from scaling.laws.accuracy import fit_loglinear, fit_sigmoid
    if law == "loglinear":
        return fit_loglinear(pts, **common)
    return fit_sigmoid(pts, fixed=fixed, **common)


def render_table(result: FitResult) -> str:
    """The plain-text summary of a fit; the allocation laws add their own per-budget lines."""
    table = results.render_table(_without_budgets(result))
    if result.law == "split":
        from scaling.laws.split import render_lines
        return "\n".join([table, *render_lines(result)])
    if result.law == "testtime":
        from scaling.laws.testtime import render_lines
        return "\n".join([table, *render_lines(result)])
    return table


def _without_budgets(result: FitResult) -> FitResult:
    """The allocation laws' `budgets`/`levels` rows are not isoFLOP rows: they render them themselves."""
    if result.law not in ALLOCATION_LAWS:
        return result
    from dataclasses import replace
    return replace(result, extra={})


assert set(LOSS_LAWS) | set(CURVE_LAWS) | set(ALLOCATION_LAWS) == set(LAWS)
