"""Accuracy against compute: the log-linear law and the ScaleRL sigmoid.

`loglinear`: y = a + b·log10 x ("each 10x of compute buys b"), and the same idea on the error rate,
ln(1 − y) = c − k·ln x (error ∝ x^−k), which cannot overshoot 100%. Closed-form least squares.

`sigmoid` (ScaleRL, Khatri et al. 2025): R(C) = R0 + (A − R0) / (1 + (C_mid/C)^B), with the
asymptote A bounded to [R0, 1]. Fitted by least squares through the parametrisation
R0 = σ(ρ), A = R0 + (1 − R0)·σ(κ), B = exp(β), C_mid = x̄·exp(m) (x̄ the geometric mean of C),
which keeps every start inside the bounds, from a grid of starts with the batched L-BFGS.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from scaling.errors import UserError
from scaling.laws.bootstrap import (check_replicates, largest_x_holdout, local_bootstrap, percentile_intervals,
                                    resample_weights)
from scaling.laws.lbfgs import batched, minimize_batch, pad_points
from scaling.laws.results import FitResult
from scaling.laws.sources import Points


def _weighted_line(u: np.ndarray, v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, 2) intercepts and slopes of v = c0 + c1·u, one weighted fit per row of weights (K, n)."""
    X = np.stack([np.ones_like(u), u], axis=1)
    lhs = np.einsum("kn,ni,nj->kij", weights, X, X)
    rhs = np.einsum("kn,ni,n->ki", weights, X, v)
    singular = np.abs(np.linalg.det(lhs)) < 1e-12 * np.einsum("kii->k", lhs) ** 2  # a resample with one x
    lhs[singular] = np.eye(2)
    coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    coef[singular] = np.nan
    return coef


def _r2(observed, predicted) -> float | None:
    ss_tot = np.sum((observed - observed.mean()) ** 2)
    return float(1 - np.sum((observed - predicted) ** 2) / ss_tot) if ss_tot > 0 else None


def predict_loglinear(params: dict[str, float], x) -> np.ndarray:
    return params["a"] + params["b"] * np.log10(np.asarray(x, dtype=float))


def predict_error_rate(error_rate: dict[str, float], x) -> np.ndarray:
    """Accuracy implied by the error-rate law."""
    return 1 - np.exp(error_rate["c"] - error_rate["k"] * np.log(np.asarray(x, dtype=float)))


def fit_loglinear(pts: Points, bootstrap: int = 0, holdout_largest: bool = False, seed: int = 0) -> FitResult:
    x, y = pts.x, pts.y
    if len(x) <= 2 or len(np.unique(x)) < 2:
        raise UserError(f"loglinear: {len(x)} points ({len(np.unique(x))} distinct x) is too few for 2 parameters")
    check_replicates(bootstrap)
    u = np.log10(x)
    a, b = _weighted_line(u, y, np.ones((1, len(x))))[0]
    params = {"a": float(a), "b": float(b)}
    predicted = predict_loglinear(params, x)
    result = FitResult(law="loglinear", params=params, n_points=len(x),
                       objective=float(np.sum((y - predicted) ** 2)), r2=_r2(y, predicted),
                       method="least squares, y = a + b·log10 x", notes=list(pts.notes),
                       observed=y, predicted=predicted)
    if (y < 1).all():
        c, minus_k = _weighted_line(np.log(x), np.log1p(-y), np.ones((1, len(x))))[0]
        error_rate = {"c": float(c), "k": float(-minus_k)}
        error_rate["r2"] = _r2(np.log1p(-y), c + minus_k * np.log(x))
        result.extra["error_rate"] = error_rate
    else:
        result.warnings.append("loglinear: some accuracies are 1, so the error-rate form ln(1-y) was not fitted")

    if bootstrap:
        weights = resample_weights(len(x), bootstrap, seed)
        coef = _weighted_line(u, y, weights)
        result.samples = {"a": coef[:, 0], "b": coef[:, 1]}
        if "error_rate" in result.extra:
            coef = _weighted_line(np.log(x), np.log1p(-y), weights)
            result.samples.update({"error_rate.c": coef[:, 0], "error_rate.k": -coef[:, 1]})
        result.ci = percentile_intervals(result.samples)
    if holdout_largest:
        result.extra["holdout"] = largest_x_holdout(pts, x, y, fit_loglinear, predict_loglinear)
    return result


def _sigmoid_sse(p, weights, data):
    log_x, y, fixed_r0, r0_is_fixed = data
    r0 = jnp.where(r0_is_fixed > 0, fixed_r0, jax.nn.sigmoid(p[0]))
    A = r0 + (1 - r0) * jax.nn.sigmoid(p[1])
    # (C_mid/C)^B = exp(−B (log C − log C_mid)): the curve is a logistic in log C.
    pred = r0 + (A - r0) * jax.nn.sigmoid(jnp.exp(p[2]) * (log_x - p[3]))
    return jnp.sum(weights * (y - pred) ** 2)


_sigmoid_value_and_grad = batched(jax.value_and_grad(_sigmoid_sse))


def _logit(v: float) -> float:
    v = min(max(v, 1e-6), 1 - 1e-6)
    return math.log(v / (1 - v))


def _expit(x: float) -> float:
    """1/(1+e^-x) without overflow: a bootstrap replicate can wander to |x| > 710."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _sigmoid_params(z: np.ndarray, x_ref: float, fixed_r0: float | None) -> dict[str, float]:
    rho, kappa, log_b, m = (float(v) for v in z)
    r0 = fixed_r0 if fixed_r0 is not None else _expit(rho)
    A = r0 + (1 - r0) * _expit(kappa)
    return {"A": A, "B": float(np.exp(log_b)), "C_mid": x_ref * float(np.exp(m)), "R0": r0}


def predict_sigmoid(params: dict[str, float], x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return params["R0"] + (params["A"] - params["R0"]) / (1 + (params["C_mid"] / x) ** params["B"])


def _sigmoid_starts(log_x: np.ndarray, y: np.ndarray, fixed_r0: float | None) -> np.ndarray:
    r0s = [fixed_r0] if fixed_r0 is not None else [0.5 * y.min(), y.min()]
    tops = [y.max(), 0.5 * (y.max() + 1), 0.99]
    mids = np.linspace(log_x.min() - 1, log_x.max() + 2, 7)
    starts = []
    for r0, top, b, m in itertools.product(r0s, tops, (0.3, 0.7, 1.5, 3.0), mids):
        frac = (top - r0) / (1 - r0) if r0 < 1 else 0.5
        starts.append((_logit(r0), _logit(frac), math.log(b), m))
    return np.array(starts)


def fit_sigmoid(pts: Points, fixed: dict[str, float] | None = None, bootstrap: int = 0,
                holdout_largest: bool = False, seed: int = 0) -> FitResult:
    fixed = dict(fixed or {})
    if set(fixed) - {"R0"}:
        raise UserError(f"--fix {', '.join(sorted(set(fixed) - {'R0'}))}: the sigmoid can fix only R0")
    fixed_r0 = fixed.get("R0")
    if fixed_r0 is not None and not 0 <= fixed_r0 < 1:
        raise UserError(f"--fix R0={fixed_r0:g}: R0 must be in [0, 1)")
    x, y = pts.x, pts.y
    if ((y < 0) | (y > 1)).any():
        raise UserError(f"sigmoid: accuracies must lie in [0, 1] (found {y.min():g}..{y.max():g}); is --y right?")
    n_free = 3 if fixed_r0 is not None else 4
    if len(x) <= n_free:
        raise UserError(f"sigmoid: {len(x)} points is too few for {n_free} parameters")
    check_replicates(bootstrap)

    x_ref = float(np.exp(np.mean(np.log(x))))
    log_x = np.log(x / x_ref)
    starts = _sigmoid_starts(log_x, y, fixed_r0)
    res = _solve_sigmoid(log_x, y, np.ones((len(starts), len(x))), starts, fixed_r0)
    best = res.best()
    params = _sigmoid_params(res.x[best], x_ref, fixed_r0)
    predicted = predict_sigmoid(params, x)
    result = FitResult(law="sigmoid", params=params, n_points=len(x), objective=float(res.f[best]),
                       r2=_r2(y, predicted), method="least squares, R0 + (A-R0)/(1+(C_mid/C)^B), A in [R0, 1]"
                       + (f", R0 fixed at {fixed_r0:g}" if fixed_r0 is not None else ""),
                       notes=list(pts.notes), observed=y, predicted=predicted)
    if bootstrap:
        result.samples, result.ci = local_bootstrap(
            lambda w, st: _solve_sigmoid(log_x, y, w, st, fixed_r0), res.x[best], starts, len(x), bootstrap, seed,
            lambda v: _sigmoid_params(v, x_ref, fixed_r0), fixed="R0" if fixed_r0 is not None else None)
    if holdout_largest:
        result.extra["holdout"] = largest_x_holdout(pts, x, y, lambda kept: fit_sigmoid(kept, fixed=fixed),
                                                    predict_sigmoid)
    return result


def _solve_sigmoid(log_x, y, weights, starts, fixed_r0):
    (log_x, y), weights = pad_points((log_x, y), weights)
    data = (log_x, y, fixed_r0 or 0.0, 0.0 if fixed_r0 is None else 1.0)
    return minimize_batch(_sigmoid_value_and_grad, starts, weights, data)
