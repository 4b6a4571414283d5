"""IsoFLOP profiles (Hoffmann et al. 2022, Approach 2).

For each compute budget, fit a parabola to loss against log10 N (and, separately, log10 D) through
that budget's runs; its vertex is the budget's compute-optimal N_opt (D_opt) and L_opt. Then fit
N_opt ∝ C^a and D_opt ∝ C^b by least squares in log-log space. A budget with fewer than three runs,
or whose parabola opens downwards or has its vertex outside the sizes tried, says nothing reliable
about the optimum and is left out with a warning that names it.

Everything is closed-form least squares in numpy; the bootstrap solves all replicates' 3x3 normal
equations at once. It is a fixed-design residual bootstrap: the sizes of an isoFLOP grid are chosen,
not sampled, so each replicate keeps them and adds resampled residuals (each budget its own, scaled
for the 3 parameters each parabola spends) to each budget's fitted parabola. Resampling runs instead
(pairs) drops the few runs that pin a minimum: on the CPU demo's design (4 budgets x 5-6 sizes, loss
noise 0.033 nats) its 95% intervals of `a` covered the truth 99% of the time at twice the width; the
residual bootstrap covered 92% (89% when the true profile is asymmetric, which a parabola misfits).
"""
from __future__ import annotations

import numpy as np

from scaling.errors import UserError
from scaling.laws.bootstrap import check_replicates, percentile_intervals
from scaling.laws.results import FitResult
from scaling.laws.sources import Points

MIN_RUNS = 3


def _parabolas(u: np.ndarray, loss: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares (c2, c1, c0) of loss = c2 u² + c1 u + c0, for each row of weights (K, n);
    `loss` is one curve (n,) or one per row (K, n)."""
    X = np.stack([u**2, u, np.ones_like(u)], axis=1)
    lhs = np.einsum("kn,ni,nj->kij", weights, X, X)
    rhs = np.einsum("kn,ni,kn->ki", weights, X, np.broadcast_to(loss, weights.shape))
    singular = np.abs(np.linalg.det(lhs)) < 1e-300
    lhs[singular] = np.eye(3)
    coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    coef[singular] = np.nan
    return coef


def _vertex(coef: np.ndarray, u: np.ndarray, weights: np.ndarray):
    """Vertex (u*, L*) of each parabola, NaN where it is not an interior minimum of the runs used."""
    c2, c1, c0 = coef[..., 0], coef[..., 1], coef[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u_star = -c1 / (2 * c2)
    used = weights > 0
    lo = np.where(used, u, np.inf).min(axis=-1)
    hi = np.where(used, u, -np.inf).max(axis=-1)
    ok = (c2 > 0) & (u_star > lo) & (u_star < hi) & (used.sum(axis=-1) >= MIN_RUNS)
    loss_star = c0 - c1**2 / (4 * c2)
    return np.where(ok, u_star, np.nan), np.where(ok, loss_star, np.nan)


def _line(log_c: np.ndarray, log_v: np.ndarray):
    """OLS log10 v = slope · log10 C + intercept, with R²."""
    slope, intercept = np.polyfit(log_c, log_v, 1)
    resid = log_v - (slope * log_c + intercept)
    ss_tot = np.sum((log_v - log_v.mean()) ** 2)
    return slope, intercept, (1 - np.sum(resid**2) / ss_tot) if ss_tot > 0 else np.nan


def _budget_optima(pts: Points, weights: np.ndarray | None = None):
    """Per budget: C, N_opt, D_opt, L_opt and the N-parabola, for one set of run weights (n,)."""
    rows = []
    for budget in np.unique(pts.budget):
        members = pts.budget == budget
        w = np.ones(members.sum()) if weights is None else weights[members]
        log_n, log_d = np.log10(pts.N[members]), np.log10(pts.D[members])
        coef_n = _parabolas(log_n, pts.loss[members], w[None])[0]
        coef_d = _parabolas(log_d, pts.loss[members], w[None])[0]
        u_n, loss_n = _vertex(coef_n, log_n, w)
        u_d, _ = _vertex(coef_d, log_d, w)
        rows.append(dict(C=float(budget), n_runs=int((w > 0).sum()), N_opt=float(10**u_n), D_opt=float(10**u_d),
                         L_opt=float(loss_n),
                         parabola=coef_n, log_n_range=(log_n.min(), log_n.max())))
    return rows


def format_flops(c: float) -> str:
    """1.4e18, the way budgets are usually written."""
    exponent = int(np.floor(np.log10(c)))
    mantissa = round(c / 10.0**exponent, 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:g}e{exponent}"


def _exclusion_reason(row) -> str:
    if row["n_runs"] < MIN_RUNS:
        return f"{row['n_runs']} run{'s' if row['n_runs'] != 1 else ''}"
    return "no interior minimum"


def fit_isoflop(pts: Points, bootstrap: int = 0, holdout_largest: bool = False, seed: int = 0) -> FitResult:
    check_replicates(bootstrap)
    rows = _budget_optima(pts)
    kept = [r for r in rows if np.isfinite(r["N_opt"]) and np.isfinite(r["D_opt"])]
    excluded = [r for r in rows if r not in kept]
    warnings = []
    if excluded:
        listed = ", ".join(f"{format_flops(r['C'])} ({_exclusion_reason(r)})" for r in excluded)
        warnings.append(f"isoflop: excluded {len(excluded)} of {len(rows)} budgets: {listed}")
    if len(kept) < 2:
        raise UserError(f"isoflop: {len(kept)} budget(s) with an interior loss minimum; need at least 2 "
                        f"(each with >= {MIN_RUNS} runs spanning the optimum)")

    log_c = np.log10([r["C"] for r in kept])
    a, log_k_n, r2_n = _line(log_c, np.log10([r["N_opt"] for r in kept]))
    b, log_k_d, r2_d = _line(log_c, np.log10([r["D_opt"] for r in kept]))
    a, b = float(a), float(b)
    params = {"a": a, "b": b, "k_N": float(10**log_k_n), "k_D": float(10**log_k_d)}
    predicted = 10 ** (a * log_c + log_k_n)
    result = FitResult(
        law="isoflop", params=params, n_points=len(pts.loss),
        objective=float(np.sum((np.log10([r["N_opt"] for r in kept]) - (a * log_c + log_k_n)) ** 2)),
        r2=float(r2_n), method="parabola in log10 N per budget; N_opt = k_N C^a, D_opt = k_D C^b (OLS, log-log)",
        extra={"a": a, "b": b, "r2_D": r2_d, "n_budgets": len(kept),
               "budgets": [{k: r[k] for k in ("C", "N_opt", "D_opt", "L_opt")} for r in kept]},
        notes=list(pts.notes), warnings=warnings,
        observed=np.array([r["N_opt"] for r in kept]), predicted=predicted,
        state={"budgets": rows, "kept": [r["C"] for r in kept]})

    if bootstrap:
        result.samples = _bootstrap(pts, [r["C"] for r in kept], bootstrap, seed)
        result.ci = percentile_intervals(result.samples)
    if holdout_largest:
        result.extra["holdout"] = _holdout(kept)
    return result


def _bootstrap(pts: Points, budgets: list[float], n_replicates: int, seed: int) -> dict[str, np.ndarray]:
    """Fixed-design residual bootstrap (see the module docstring): per replicate, every usable budget's
    parabolas (in log N and in log D) plus resampled residuals give new losses; refit vertices, then both
    power laws. A replicate in which fewer than two budgets keep an interior minimum is dropped."""
    sub = pts.subset(np.isin(pts.budget, budgets))
    rng = np.random.default_rng(seed)
    log_c = np.log10(budgets)
    optima = {}
    for name, values in (("N", sub.N), ("D", sub.D)):
        fitted, residuals = [], []
        for budget in budgets:
            members = sub.budget == budget
            u = np.log10(values[members])
            coef = _parabolas(u, sub.loss[members], np.ones((1, members.sum())))[0]
            fitted.append((u, coef[0] * u**2 + coef[1] * u + coef[2]))
            residuals.append(sub.loss[members] - fitted[-1][1])
        # Each budget resamples its own residuals (its misfit is its own: the CPU demo's smallest budget
        # misfits 4x more than the others), scaled for the 3 parameters its parabola spends; a budget with
        # exactly 3 runs has none and borrows those of the others.
        scaled = [r * np.sqrt(len(r) / (len(r) - 3)) if len(r) > 3 else None for r in residuals]
        spare = [r for r in scaled if r is not None]
        if not spare:
            raise UserError(f"isoflop --bootstrap: every usable budget has exactly {MIN_RUNS} runs, so its parabola "
                            f"fits them exactly and leaves no residual to resample; add runs to a budget")
        scaled = [r if r is not None else np.concatenate(spare) for r in scaled]
        vertices = np.full((n_replicates, len(budgets)), np.nan)
        for j, (u, curve) in enumerate(fitted):
            ones = np.ones((n_replicates, len(u)))
            loss = curve + rng.choice(scaled[j], size=ones.shape)
            vertices[:, j], _ = _vertex(_parabolas(u, loss, ones), u, ones)
        optima[name] = vertices
    samples = {k: np.full(n_replicates, np.nan) for k in ("a", "b", "k_N", "k_D")}
    for i in range(n_replicates):
        ok = np.isfinite(optima["N"][i]) & np.isfinite(optima["D"][i])
        if ok.sum() >= 2:
            samples["a"][i], k_n, _ = _line(log_c[ok], optima["N"][i, ok])
            samples["b"][i], k_d, _ = _line(log_c[ok], optima["D"][i, ok])
            samples["k_N"][i], samples["k_D"][i] = 10**k_n, 10**k_d
    return samples


def _holdout(kept: list[dict]) -> dict:
    """Fit the power laws without the largest budget; predict its N_opt and D_opt."""
    if len(kept) < 3:
        raise UserError("--holdout-largest: isoflop needs at least 3 usable budgets")
    train, test = kept[:-1], kept[-1]
    log_c = np.log10([r["C"] for r in train])
    a, log_k_n, _ = _line(log_c, np.log10([r["N_opt"] for r in train]))
    b, log_k_d, _ = _line(log_c, np.log10([r["D_opt"] for r in train]))
    n_pred = 10 ** (a * np.log10(test["C"]) + log_k_n)
    d_pred = 10 ** (b * np.log10(test["C"]) + log_k_d)
    return {"budget": test["C"], "N_opt": test["N_opt"], "N_pred": float(n_pred),
            "N_rel_error": float(n_pred / test["N_opt"] - 1),
            "D_opt": test["D_opt"], "D_pred": float(d_pred), "D_rel_error": float(d_pred / test["D_opt"] - 1)}


def predict_optimal(params: dict[str, float], C) -> tuple[np.ndarray, np.ndarray]:
    C = np.asarray(C, dtype=float)
    return params["k_N"] * C ** params["a"], params["k_D"] * C ** params["b"]
