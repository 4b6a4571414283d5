"""Saturating power law y = E + A·x^(−α), fitted in log space.

Least squares on log y against log(E + A x^−α) = LSE(a − α log x', e) with a = log A', e = log E
and x' = x / x̄ (x̄ the geometric mean of x): in those units A' is of the order of y whatever x's
scale (FLOPs ~1e20), so one small start grid serves every data set. With E fixed at 0 the fit is
ordinary least squares of log y on log x.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from scaling.errors import UserError
from scaling.laws.bootstrap import check_replicates, largest_x_holdout, local_bootstrap
from scaling.laws.lbfgs import batched, minimize_batch, pad_points
from scaling.laws.results import FitResult
from scaling.laws.sources import Points

NO_FLOOR = -700.0  # log E for E = 0: exp(-700) vanishes next to any data


def _squared_log_error(p, weights, data):
    log_x, log_y, fixed_e, e_is_fixed = data
    e = jnp.where(e_is_fixed > 0, fixed_e, p[2])
    pred = jnp.logaddexp(p[0] - p[1] * log_x, e)
    return jnp.sum(weights * (log_y - pred) ** 2)


_value_and_grad = batched(jax.value_and_grad(_squared_log_error))


def predict(params: dict[str, float], x) -> np.ndarray:
    return params["E"] + params["A"] * np.asarray(x, dtype=float) ** -params["alpha"]


def _start_grid(y: np.ndarray, fixed_e: float | None) -> np.ndarray:
    """Starts (a, α, e) in normalised units: E below the smallest y, A' spanning what is left."""
    y_min, y_max = float(y.min()), float(y.max())
    floors = [fixed_e] if fixed_e is not None else [f * y_min for f in (0.0, 0.5, 0.8, 0.95)]
    starts = []
    for floor, alpha in itertools.product(floors, (0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2, 2.0)):
        for scale in (0.1, 0.5, 1.0, 2.0):
            amplitude = max(scale * (y_max - floor), 1e-6 * y_max)
            starts.append((math.log(amplitude), alpha, math.log(floor) if floor > 0 else NO_FLOOR))
    return np.array(starts)


def _solve(log_x, log_y, weights, starts, fixed_e):
    (log_x, log_y), weights = pad_points((log_x, log_y), weights)
    e = NO_FLOOR if not fixed_e else math.log(fixed_e)
    data = (log_x, log_y, e, 0.0 if fixed_e is None else 1.0)
    return minimize_batch(_value_and_grad, starts, weights, data)


def _to_params(z: np.ndarray, x_ref: float, fixed_e: float | None) -> dict[str, float]:
    a, alpha, e = (float(v) for v in z)
    with np.errstate(over="ignore"):  # a wandering bootstrap replicate: infinite, not a crash
        E = fixed_e if fixed_e is not None else float(np.exp(e))
        return {"E": E, "A": float(np.exp(a)) * x_ref**alpha, "alpha": alpha}


def fit_power(pts: Points, fixed: dict[str, float] | None = None, bootstrap: int = 0,
              holdout_largest: bool = False, seed: int = 0) -> FitResult:
    fixed = dict(fixed or {})
    unknown = set(fixed) - {"E"}
    if unknown:
        raise UserError(f"--fix {', '.join(sorted(unknown))}: the power law can fix only E")
    fixed_e = fixed.get("E")
    if fixed_e is not None and fixed_e < 0:
        raise UserError(f"--fix E={fixed_e:g}: E must be >= 0")
    n_free = 2 if fixed_e is not None else 3
    x, y = pts.x, pts.y
    if len(x) <= n_free:
        raise UserError(f"power: {len(x)} points is too few for {n_free} parameters")
    if fixed_e is not None and (y <= fixed_e).any():
        raise UserError(f"--fix E={fixed_e:g}: every y must exceed E (smallest y is {y.min():g})")
    check_replicates(bootstrap)

    x_ref = float(np.exp(np.mean(np.log(x))))
    log_x, log_y = np.log(x / x_ref), np.log(y)
    starts = _start_grid(y, fixed_e)
    res = _solve(log_x, log_y, np.ones((len(starts), len(x))), starts, fixed_e)
    best = res.best()
    params = _to_params(res.x[best], x_ref, fixed_e)
    predicted = predict(params, x)
    ss_tot = np.sum((log_y - log_y.mean()) ** 2)
    result = FitResult(
        law="power", params=params, n_points=len(x), objective=float(res.f[best]),
        r2=float(1 - res.f[best] / ss_tot) if ss_tot > 0 else None,
        method="least squares on log y" + (f", E fixed at {fixed_e:g}" if fixed_e is not None else ""),
        notes=list(pts.notes) + [f"x = {pts.labels.get('x', 'x')}, y = {pts.labels.get('y', 'y')}"],
        observed=y, predicted=predicted)

    if bootstrap:
        result.samples, result.ci = local_bootstrap(
            lambda w, st: _solve(log_x, log_y, w, st, fixed_e), res.x[best], starts, len(x), bootstrap, seed,
            lambda v: _to_params(v, x_ref, fixed_e), fixed="E" if fixed_e is not None else None)
    if holdout_largest:
        result.extra["holdout"] = largest_x_holdout(pts, x, y, lambda kept: fit_power(kept, fixed=fixed), predict)
    return result
