"""Test-time compute as a third place a FLOP can go: its exchange rate with training compute.

Jones (2021, "Scaling scaling laws with board games") traded train-time against test-time compute
along iso-performance lines: log test compute falls linearly in log train compute. Here, for models
of different training compute C_train, each scored with k = 1, 2, 4, ... samples per problem
(majority vote or pass@k) at test-time compute C_test = k × the FLOPs of one sample:

1. per model, logit(accuracy) = α_m + β_m·log10 C_test (least squares over its k values);
2. at accuracy levels that two or more models reach inside the test compute they were measured at,
   the test compute each needs: log10 C_test* = (logit level − α_m) / β_m;
3. the iso-accuracy frontier log10 C_test* = slope·log10 C_train + d_level (one slope shared by the
   levels, least squares): 10× more training compute saves 10^−slope × test-time compute, i.e.
   `exchange_rate` = 10^−slope × more test-time compute replaces 10× training compute.

Undefined, and refused with the reason, when test-time compute does not raise accuracy, when no
accuracy is reached by two models within their measured ranges (no iso-accuracy line to follow
without extrapolating), or when more training compute does not lower the test compute needed; with a
interval (leave-one-model-out jackknife), also when it reaches slope 0 or spans more than a decade of rate.
Per-sample FLOPs grow with model size, so a model's curve starts further right: that is counted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from scaling.errors import UserError
from scaling.laws.bootstrap import CI_LEVEL, check_replicates
from scaling.laws.isoflop import format_flops
from scaling.laws.results import FitResult, format_value
from scaling.laws.sources import Columns, Points, open_table
from scaling.laws.support import MAX_EXPONENT_SPAN

DEFAULTS = {"c": "train_flops", "x": "test_flops", "y": "accuracy", "k": "k", "sample_flops": "sample_flops"}
N_LEVELS = 7  # accuracy levels tried, evenly spaced in logit between the measured extremes
MIN_K = 3  # a model needs three test-time budgets for its curve to be more than two points
# With an interval (--bootstrap K > 0), the rate is refused when the interval reaches slope 0 or spans more than
# a factor MAX_EXPONENT_SPAN (a decade) of exchange rate: the lab's bar for an exponent (laws.support).


def load_testtime_points(source, cols: Columns = Columns(), k: str | None = None,
                         sample_flops: str | None = None) -> Points:
    """Training compute, test-time compute (a column, or k × per-sample FLOPs) and accuracy, from a CSV.
    Rows with the same training compute are one model's curve."""
    if Path(source).is_dir():
        raise UserError(f"{source}: testtime reads a CSV of training compute, test-time compute (or k and FLOPs "
                        "per sample) and accuracy, e.g. `scaling eval` results gathered per model")
    table = open_table(source, "runs")
    c_col, y_col = cols.c or DEFAULTS["c"], cols.y or DEFAULTS["y"]
    x_col = cols.x or DEFAULTS["x"]
    notes = []

    def column(name, flag, positive=True):
        v = table.numbers(name, flag)
        bad = ~np.isfinite(v) | ((v <= 0) if positive else (v < 0) | (v > 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"{table.name}: column {name!r} {table.row_labels[i]}: "
                            f"{'missing or NaN' if not np.isfinite(v[i]) else repr(float(v[i]))} is not "
                            f"{'positive' if positive else 'an accuracy in [0, 1]'}")
        return v

    if k or sample_flops or (cols.x is None and not table.has(x_col)):
        k_col, s_col = k or DEFAULTS["k"], sample_flops or DEFAULTS["sample_flops"]
        if not (table.has(k_col) and table.has(s_col)):
            raise UserError(f"{table.name}: test-time compute needs column {x_col!r} (--x), or {k_col!r} (--k) "
                            f"and {s_col!r} (--sample-flops) (columns: {', '.join(table.values)})")
        test = column(k_col, "--k") * column(s_col, "--sample-flops")
        notes.append(f"test-time compute = {k_col!r} × {s_col!r} (samples per problem × FLOPs per sample)")
        x_label = f"{k_col} × {s_col}"
    else:
        test = column(x_col, "--x")
        x_label = x_col
    pts = Points(str(source), C=column(c_col, "--c"), x=test, y=column(y_col, "--y", positive=False),
                 labels={"C": c_col, "x": x_label, "y": y_col}, notes=notes)
    pts.budget = pts.C  # one curve per model, identified by its training compute
    return pts


def _logit(y):
    return np.log(y) - np.log1p(-y)


def _lines(u: np.ndarray, v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, 2) weighted least-squares intercept and slope of v = α + β u, one per row of weights (K, n)."""
    X = np.stack([np.ones_like(u), u], axis=1)
    lhs = np.einsum("kn,ni,nj->kij", weights, X, X)
    rhs = np.einsum("kn,ni,n->ki", weights, X, v)
    distinct = np.array([len(np.unique(u[w > 0])) for w in weights])
    lhs[distinct < 2] = np.eye(2)
    coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    coef[distinct < 2] = np.nan
    return coef


def _frontier_slope(log_train: np.ndarray, log_test: np.ndarray, level: np.ndarray,
                    weights: np.ndarray | None = None) -> float:
    """(Weighted) least-squares slope of log_test on log_train with one intercept per level (within-level);
    NaN where no level has two models of different training compute."""
    w = np.ones_like(log_train) if weights is None else weights
    dx, dy = np.zeros_like(log_train), np.zeros_like(log_test)
    for lv in np.unique(level):
        m = (level == lv) & (w > 0)
        if m.any():
            dx[m] = log_train[m] - np.average(log_train[m], weights=w[m])
            dy[m] = log_test[m] - np.average(log_test[m], weights=w[m])
    denom = np.sum(w * dx**2)
    return float(np.sum(w * dx * dy) / denom) if denom > 1e-12 else np.nan


def fit_testtime(pts: Points, bootstrap: int = 0, holdout_largest: bool = False, seed: int = 0) -> FitResult:
    check_replicates(bootstrap)
    if holdout_largest:
        raise UserError("--holdout-largest applies to laws fitted across budgets; testtime reports per-level "
                        "frontiers instead")
    warnings, notes = [], list(pts.notes)
    inside = (pts.y > 0) & (pts.y < 1)
    if not inside.all():
        warnings.append(f"testtime: {int((~inside).sum())} point(s) at accuracy 0 or 1 left out (logit ±inf)")
    pts = pts.subset(inside)
    models, reasons = [], []
    for train in np.unique(pts.C):
        m = pts.C == train
        u, v = np.log10(pts.x[m]), _logit(pts.y[m])
        n_k = len(np.unique(u))
        if n_k < MIN_K:
            reasons.append(f"{format_flops(train)} ({n_k} test-time budget{'s' if n_k != 1 else ''})")
            continue
        alpha, beta = _lines(u, v, np.ones((1, len(u))))[0]
        if not beta > 0:
            reasons.append(f"{format_flops(train)} (accuracy does not rise with test-time compute)")
            continue
        resid = v - (alpha + beta * u)
        r2 = 1 - np.sum(resid**2) / np.sum((v - v.mean()) ** 2)
        models.append({"train_C": float(train), "test_slope": float(beta), "intercept": float(alpha), "r2": float(r2),
                       "test_C_range": [float(10 ** u.min()), float(10 ** u.max())],
                       "accuracy_range": [float(pts.y[m].min()), float(pts.y[m].max())], "n_points": int(m.sum())})
    if reasons:
        warnings.append(f"testtime: left out {len(reasons)} model(s): {'; '.join(reasons)}")
    if len(models) < 2:
        raise UserError(f"testtime: undefined: {len(models)} model(s) whose accuracy rises with test-time compute; "
                        "need at least 2 of different training compute"
                        + (f" ({'; '.join(reasons)})" if reasons else ""))

    pairs, levels = _crossings(models)
    if not pairs:
        raise UserError("testtime: undefined: no accuracy is reached by two models within the test-time compute "
                        "they were measured at (their curves do not overlap; sample larger k on the smaller models)")
    log_train = np.log10([models[i]["train_C"] for i, _ in pairs])
    level_of = np.array([lv for _, lv in pairs])
    log_test = np.array([_needed(models[i], lv) for i, lv in pairs])
    slope = _frontier_slope(log_train, log_test, level_of)
    if not slope < 0:
        raise UserError(f"testtime: undefined: at equal accuracy more training compute needs as much or more "
                        f"test-time compute (frontier slope {slope:+.3g}): training does not substitute for "
                        "sampling here")
    params = {"slope": slope, "exchange_rate": float(10 ** -slope)}
    level_rows = []
    for lv in levels:
        m = level_of == lv
        row = {"accuracy": float(lv), "n_models": int(m.sum())}
        if m.sum() >= 2:
            row["slope"] = float(np.polyfit(log_train[m], log_test[m], 1)[0])
        level_rows.append(row)
    notes.append("per model logit(accuracy) = α + β·log10 C_test; iso-accuracy frontier log10 C_test* = "
                 "slope·log10 C_train + d_level (shared slope); exchange_rate = 10^-slope: the test-time compute "
                 "multiple that replaces 10x training compute at equal accuracy")
    low_r2 = [format_flops(r["train_C"]) for r in models if r["r2"] < 0.9]
    if low_r2:
        warnings.append(f"testtime: logit-linear curve fits poorly (R² < 0.9) for {', '.join(low_r2)}: accuracy "
                        f"may be saturating in k; the exchange rate leans on the straight part")
    result = FitResult(law="testtime", params=params, n_points=len(pts.y), method=
                       "logit accuracy linear in log10 test compute per model; shared slope of iso-accuracy lines",
                       extra={"models": models, "levels": level_rows}, notes=notes, warnings=warnings,
                       state={"pairs": pairs})
    if bootstrap:
        _jackknife(result, models, pairs)
        why = _unsupported(result)
        if why:
            raise UserError(f"testtime: undefined: {why}")
    return result


def _crossings(models: list[dict]) -> tuple[list[tuple[int, float]], list[float]]:
    """(model index, accuracy level) pairs where the model's fitted curve reaches the level inside its
    measured test compute, for the levels two or more models reach."""
    lo = min(_curve_at(r, r["test_C_range"][0]) for r in models)
    hi = max(_curve_at(r, r["test_C_range"][1]) for r in models)
    grid = 1 / (1 + np.exp(-np.linspace(_logit(lo), _logit(hi), N_LEVELS + 2)[1:-1]))
    pairs, levels = [], []
    for level in grid:
        reach = [i for i, r in enumerate(models)
                 if _curve_at(r, r["test_C_range"][0]) <= level <= _curve_at(r, r["test_C_range"][1])]
        if len(reach) >= 2:
            pairs += [(i, float(level)) for i in reach]
            levels.append(float(level))
    return pairs, levels


def _curve_at(model: dict, test_c: float) -> float:
    return float(1 / (1 + np.exp(-(model["intercept"] + model["test_slope"] * np.log10(test_c)))))


def _needed(model: dict, level: float) -> float:
    """log10 of the test-time compute at which the model's fitted curve reaches the accuracy level."""
    return (_logit(level) - model["intercept"]) / model["test_slope"]


def _jackknife(result: FitResult, models: list[dict], pairs) -> None:
    """The slope's 95% interval from leaving out one model at a time (jackknife standard error, Student t with
    n - 1 degrees of freedom). The model is the unit of the frontier's error: how far each sits from the
    lines, one training run's luck. Resampling a model's k values cannot show it (pass@k points lie on a
    smooth curve, so that gave an interval a tenth as wide as the models' scatter); resampling or
    reweighting a handful of models cannot either, where a level is crossed by two models (a line
    through two points does not move with their weights). Leaving a model out removes its crossings."""
    idx = np.array([i for i, _ in pairs])
    log_train = np.log10([models[i]["train_C"] for i in idx])
    level_of = np.array([lv for _, lv in pairs])
    log_test = np.array([_needed(models[i], lv) for i, lv in pairs])
    n = len(models)
    slopes = np.array([_frontier_slope(log_train, log_test, level_of, (idx != j).astype(float)) for j in range(n)])
    result.samples = {"slope": slopes, "exchange_rate": 10 ** -slopes}  # leave-one-out values, not replicates
    if np.isnan(slopes).any():
        alone = ", ".join(format_flops(models[j]["train_C"]) for j in np.flatnonzero(np.isnan(slopes)))
        raise UserError(f"testtime: undefined: the frontier rests on single models: without {alone} no accuracy "
                        "is reached by two models (no interval; measure more models)")
    se = np.sqrt((n - 1) / n * np.sum((slopes - slopes.mean()) ** 2))
    half = float(stats.t.ppf(0.5 + CI_LEVEL / 2, n - 1) * se)
    slope = result.params["slope"]
    result.ci = {"slope": (slope - half, slope + half), "exchange_rate": (10 ** -(slope + half), 10 ** -(slope - half))}
    result.notes.append(f"interval: leave-one-model-out jackknife over the {n} models (standard error × Student t, "
                        f"{n - 1} degrees of freedom), in place of a bootstrap: the model is the unit of the "
                        "frontier's error, and a few models are too few to resample")


def _unsupported(result: FitResult) -> str | None:
    """Why the interval says the exchange rate is not determined, or None."""
    (lo, hi), (rate_lo, rate_hi) = result.ci["slope"], result.ci["exchange_rate"]
    if hi >= 0:
        return (f"the frontier slope's 95% interval [{lo:.3g}, {hi:.3g}] reaches 0: the models do not exclude that "
                "training compute saves no test-time compute")
    if rate_hi / rate_lo > MAX_EXPONENT_SPAN:
        return (f"the exchange rate's 95% interval {rate_lo:.3g}x – {rate_hi:.3g}x spans more than a factor "
                f"{MAX_EXPONENT_SPAN:g}: the models do not determine it (fitted: "
                f"{result.params['exchange_rate']:.3g}x)")
    return None


def render_lines(result: FitResult) -> list[str]:
    lines = ["model train C    test-time slope (logit acc per 10x)   R²      test C range"]
    for r in result.extra["models"]:
        lo, hi = r["test_C_range"]
        lines.append(f"{format_flops(r['train_C']):<16} {format_value(r['test_slope']):<37} {r['r2']:<7.3f} "
                     f"{format_flops(lo)}..{format_flops(hi)}")
    def level(lv):
        slope = f", slope {format_value(lv['slope'])}" if "slope" in lv else ""
        return f"{lv['accuracy']:.3f} ({lv['n_models']} models{slope})"

    lines.append("iso-accuracy levels: " + ", ".join(level(lv) for lv in result.extra["levels"]))
    rate, ci = result.params["exchange_rate"], result.ci.get("exchange_rate")
    interval = f" (95% CI {min(ci):.3g}x..{max(ci):.3g}x)" if ci else ""
    lines.append(f"{rate:.3g}x more test-time compute replaces 10x training compute at equal accuracy{interval}")
    return lines
