"""Resampling for error bars, and the hold-out split for extrapolation checks.

A bootstrap replicate is expressed as integer weights (how often each point was drawn) rather than
a resampled copy of the data: every replicate then has the same shape, so thousands of refits run
as one batched minimisation, and a weighted sum over points equals the sum over the resample.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from scaling.errors import UserError
from scaling.laws.sources import Points, round_significant

CI_LEVEL = 0.95


def resample_weights(n_points: int, n_replicates: int, seed: int = 0) -> np.ndarray:
    """(K, n) draw counts of n points resampled with replacement, K times."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=n_replicates).astype(np.float64)


def stratified_weights(groups: np.ndarray, n_replicates: int, seed: int = 0) -> np.ndarray:
    """(K, n) draw counts resampling points within each group (runs within an isoFLOP budget),
    so every replicate keeps every budget."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_replicates, len(groups)))
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        counts = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=n_replicates)
        weights[:, members] = counts
    return weights


def percentile_intervals(samples: dict[str, np.ndarray], level: float = CI_LEVEL) -> dict[str, tuple[float, float]]:
    """Percentile intervals over the replicates that produced a finite value."""
    tail = 100 * (1 - level) / 2
    out = {}
    for name, draws in samples.items():
        draws = np.asarray(draws, dtype=float)
        draws = draws[np.isfinite(draws)]
        if draws.size >= 2:
            lo, hi = np.percentile(draws, [tail, 100 - tail])
            out[name] = (float(lo), float(hi))
    return out


def check_replicates(k: int) -> int:
    if k < 0:
        raise UserError(f"--bootstrap {k}: must be >= 0")
    if k == 1:
        raise UserError("--bootstrap 1: an interval needs at least 2 replicates (1,000 is usual)")
    return k


def largest_budget_mask(budget: np.ndarray) -> np.ndarray:
    """Rows of the largest budget (or x, rounded to 2 significant figures): the ones held out."""
    if len(np.unique(budget)) < 2:
        raise UserError("--holdout-largest needs at least two budgets (or x values)")
    return budget == budget.max()


def prediction_errors(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    err = predicted - observed
    return {
        "n_heldout": int(len(observed)),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mean_rel_error": float(np.mean(np.abs(err) / np.abs(observed))),
        "mean_signed_error": float(np.mean(err)),
    }


def local_refits(solve, best: np.ndarray, starts: np.ndarray, n_points: int, n_replicates: int,
                 seed: int = 0) -> np.ndarray:
    """Bootstrap refits started near the full-data optimum (it plus a thinned slice of the start grid):
    `solve(weights, starts)` runs the batched optimiser and returns an object with `.f` and `.x`.
    Returns the best solution vector of each replicate, shape (n_replicates, dim)."""
    weights = resample_weights(n_points, n_replicates, seed)
    local = np.concatenate([best[None], starts[:: max(1, len(starts) // 7)]])
    refit = solve(np.repeat(weights, len(local), axis=0), np.tile(local, (n_replicates, 1)))
    f = refit.f.reshape(n_replicates, len(local))
    return refit.x.reshape(n_replicates, len(local), -1)[np.arange(n_replicates), np.argmin(f, axis=1)]


def local_bootstrap(solve, best: np.ndarray, starts: np.ndarray, n_points: int, n_replicates: int, seed: int,
                    to_params: Callable[[np.ndarray], dict], fixed: str | None = None):
    """`local_refits`, turned into per-parameter samples (a parameter held fixed has none) and their
    percentile intervals: what a fit stores as `samples` and `ci`."""
    draws = [to_params(v) for v in local_refits(solve, best, starts, n_points, n_replicates, seed)]
    samples = {k: np.array([d[k] for d in draws]) for k in draws[0] if k != fixed}
    return samples, percentile_intervals(samples)


def largest_x_holdout(pts: Points, x: np.ndarray, y: np.ndarray, refit: Callable[[Points], object],
                      predict: Callable[[dict, np.ndarray], np.ndarray]) -> dict:
    """Refit without the largest x (rounded to 2 significant figures, so one budget's points go together)
    and score the prediction there: how well the curve extrapolates."""
    held = largest_budget_mask(round_significant(x))
    fit = refit(pts.subset(~held))
    return {"x": float(x[held].max()), **prediction_errors(y[held], predict(fit.params, x[held])),
            "params": fit.params}
