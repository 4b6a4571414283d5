"""Where should the next FLOP go: the pretraining/RL split at fixed total compute.

The isoFLOP idea (Hoffmann et al. 2022, Approach 2) applied to a different allocation: for each total
budget C, runs spend (1 - f)·C on pretraining and f·C on RL; a smooth curve of accuracy against the
RL share f through one budget's runs has its maximum at the budget's best share f_opt. The trend of
f_opt against log10 C (`slope`, `intercept`) says how the share should move as budgets grow, and the
trend of the best accuracy says what each decade of total compute buys when split well.

Two curve families, both a parabola (closed-form least squares, batched over bootstrap replicates):
- `logit`: accuracy against u = ln(f/(1-f)). RL gains grow roughly like a sigmoid in log RL compute
  (ScaleRL) while pretraining loses log(1 - f): both are straight in logit f at the two ends, so the
  curve is near-symmetric there. Pure pretraining (f = 0) is at u = -inf and cannot lie on it: those
  runs are the baseline the interior optimum must beat, or RL does not pay at that budget.
- `share`: accuracy against f itself; f = 0 is an ordinary point. Right when the curve is gentle in f.
`auto` (the default) picks the family with the lower pooled leave-one-out error over the runs with
0 < f < 1 of the budgets both can fit, and says so in the notes.

A budget whose curve is not concave, whose maximum falls outside the shares tried, whose best is
beaten by pure pretraining, or that has fewer than three shares says nothing reliable about its optimum:
it is left out with a warning naming the reason; fewer than two usable budgets is refused. With a
bootstrap, so is a budget whose optimum the resampled runs do not reproduce (see MAX_LOST_FRACTION),
and a trend whose interval says nothing (see TREND_TOLERANCE): refused with the reason, never printed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from scaling.errors import UserError
from scaling.laws.bootstrap import CI_LEVEL, check_replicates, percentile_intervals, resample_weights
from scaling.laws.isoflop import format_flops
from scaling.laws.results import FitResult, format_value
from scaling.laws.sources import Columns, Points, Table, open_table, read_registry, round_significant
from scaling.laws.support import MAX_EXPONENT_SPAN

CURVES = ("auto", "logit", "share")
MIN_SHARES = 3  # a parabola needs three distinct shares
# The vertex comes from the 2·WINDOW + 1 shares nearest a first parabola's vertex: far from the optimum
# a profile is not a parabola in any coordinate (on the synthetic surface the best share is off by up
# to 0.03 with all shares, up to 0.02 with five).
WINDOW = 2
DEFAULTS = {"c": "total_flops", "x": "rl_share", "y": "accuracy"}
# A 95% interval of the best share must hold 95% of the bootstrap replicates' optima. Where more than 5% of
# the replicates have no interior optimum (not concave, or the maximum at the edge of the shares), no range
# of interior shares holds 95% of them: at that level the data do not exclude "no interior optimum", so the
# budget's optimum is refused rather than given an interval over the replicates that happen to have one.
MAX_LOST_FRACTION = 1 - CI_LEVEL
# The trend of the best share is a result when its 95% interval fixes the direction (excludes 0), or bounds
# the move within the precision the law is held to (a share to ±0.05) per decade of total compute.
TREND_TOLERANCE = 0.05


def sweep_table(sweep_dir: Path) -> tuple[Table, str]:
    """A split sweep's finished pipelines: each RL (or f=0 eval-only) row with the realized `total_flops`
    (its pretraining run's FLOPs, `init_flops`, plus its own RL FLOPs, both full convention) and the
    realized `rl_share` (RL FLOPs / total), beside the planned `split_budget` C and `split_share` f."""
    table = read_registry(sweep_dir, "split")
    done = [i for i, status in enumerate(table.values.get("status", [])) if status == "done"]
    if not table.row_labels:
        raise UserError(f"{sweep_dir}: not a split sweep (no run records a pipeline's RL share); split reads a "
                        "`kind: split` sweep directory or a CSV of total compute, RL share and accuracy")
    if not done:
        raise UserError(f"{sweep_dir}: none of its {len(table.row_labels)} split pipelines has finished "
                        f"(see `scaling sweep status {sweep_dir}`)")
    values = {k: [v[i] for i in done] for k, v in table.values.items()}
    pre, rl = (np.array(values[k], dtype=float) for k in ("init_flops", "flops_full"))
    values["total_flops"] = list(pre + rl)
    values["rl_share"] = list(rl / (pre + rl))
    note = (f"{len(done)} finished pipelines of {len(table.row_labels)}; total_flops = pretraining + RL FLOPs "
            "(full convention, as run), rl_share = RL / total as run; budgets: the planned split_budget")
    return Table(table.name, values, [table.row_labels[i] for i in done]), note


def load_split_points(source, cols: Columns = Columns()) -> Points:
    """Total compute, RL share and accuracy per run, from a CSV or a split sweep directory; budgets from
    --group (a sweep's planned C by default) or C rounded."""
    sweep_note = None
    if Path(source).is_dir():
        table, sweep_note = sweep_table(Path(source))
        cols = cols if cols.group else replace(cols, group="split_budget")
    else:
        table = open_table(source, "runs")
    names = {role: getattr(cols, role) or DEFAULTS[role] for role in DEFAULTS}
    values = {}
    for role, flag in (("c", "--c"), ("x", "--x"), ("y", "--y")):
        v = table.numbers(names[role], flag)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise UserError(f"{table.name}: column {names[role]!r} {table.row_labels[bad[0]]}: missing or NaN value")
        values[role] = v
    C, f, y = values["c"], values["x"], values["y"]
    for column, v, ok, want in ((names["c"], C, C > 0, "positive"), (names["x"], f, (f >= 0) & (f <= 1), "in [0, 1]"),
                                (names["y"], y, (y >= 0) & (y <= 1), "in [0, 1]")):
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise UserError(f"{table.name}: column {column!r} {table.row_labels[i]}: {v[i]:g} is not {want}"
                            + ("; is --x the RL share (a fraction, not a percentage)?" if column == names["x"] else ""))
    pts = Points(str(source), C=C, x=f, y=y, labels={"C": names["c"], "x": names["x"], "y": names["y"]})
    pts.notes += [sweep_note] if sweep_note else []
    if cols.group:
        budget = table.numbers(cols.group, "--group")
        if not (np.isfinite(budget) & (budget > 0)).all():
            raise UserError(f"{table.name}: column {cols.group!r}: every budget must be a positive number")
        pts.notes.append(f"budgets from column {cols.group!r}")
    else:
        budget = round_significant(C)
        pts.notes.append(f"budgets: total compute {names['c']!r} rounded to 2 significant figures")
    pts.budget = budget
    return pts


# ---- one curve family, fitted to one budget for a batch of run weights ------------------------------

def _coordinate(curve: str, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curve's x coordinate u(f) and which runs lie on the curve (logit: 0 < f < 1 only)."""
    if curve == "share":
        return f.astype(float), np.ones(len(f), bool)
    on = (f > 0) & (f < 1)
    with np.errstate(divide="ignore"):
        u = np.log(f) - np.log1p(-f)
    return np.where(on, u, 0.0), on


def _share(curve: str, u):
    return u if curve == "share" else 1 / (1 + np.exp(-u))


def _parabolas(u: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, 3) weighted least-squares (c2, c1, c0) of y = c2 u² + c1 u + c0, one per row of weights (K, n);
    NaN where the runs drawn do not determine a parabola."""
    X = np.stack([u**2, u, np.ones_like(u)], axis=1)
    lhs = np.einsum("kn,ni,nj->kij", weights, X, X)
    rhs = np.einsum("kn,ni,n->ki", weights, X, y)
    distinct = np.array([len(np.unique(u[w > 0])) for w in weights])
    singular = distinct < MIN_SHARES
    lhs[singular] = np.eye(3)
    coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    coef[singular] = np.nan
    return coef


def _window(u: np.ndarray, y: np.ndarray, w: np.ndarray, window: int) -> tuple[np.ndarray, str]:
    """The runs at the 2·WINDOW + 1 shares nearest the vertex of a parabola through all of them (a noisy
    best observed share would jump between neighbours), and ""; or no runs and the reason."""
    present = w > 0
    shares = np.unique(u[present])
    if len(shares) < MIN_SHARES:
        return np.zeros(len(u), bool), f"{len(shares)} share{'s' if len(shares) != 1 else ''} on the curve"
    c2, c1, _ = _parabolas(u, y, w[None])[0]
    if not c2 < 0:
        return np.zeros(len(u), bool), "not concave (accuracy has no interior maximum in the share)"
    vertex = -c1 / (2 * c2)
    if not shares[0] < vertex < shares[-1]:
        return np.zeros(len(u), bool), "optimum at the edge (the fitted maximum lies outside the shares tried)"
    nearest = shares[np.sort(np.argsort(np.abs(shares - vertex))[: 2 * window + 1])]
    on = present & (u >= nearest[0]) & (u <= nearest[-1])
    if on.sum() <= MIN_SHARES:  # an exactly determined parabola: any interval would be a point
        return np.zeros(len(u), bool), (f"{on.sum()} runs around the optimum, no more than the curve's 3 "
                                        "parameters (no residual to size its error from)")
    return on, ""


def _optimum(curve: str, f: np.ndarray, y: np.ndarray, weights: np.ndarray, window: int = WINDOW):
    """Per row of weights (K, n): (share_opt, accuracy_opt, reason, parabola, (lowest, highest) share
    fitted). Reason is "" where the
    optimum is interior, concave and beats pure pretraining; otherwise it says why this budget says
    nothing about its optimum. The window around the best share is chosen afresh for every row."""
    u, on = _coordinate(curve, f)
    w = weights * on
    reasons = np.full(len(weights), "", dtype=object)
    for k in range(len(w)):
        mask, reasons[k] = _window(u, y, w[k], window)
        w[k] *= mask
    coef = _parabolas(u, y, w)
    c2, c1, c0 = coef[:, 0], coef[:, 1], coef[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u_star = -c1 / (2 * c2)
        acc_star = c0 - c1**2 / (4 * c2)
    lo = np.where(w > 0, u, np.inf).min(axis=1)
    hi = np.where(w > 0, u, -np.inf).max(axis=1)
    # Pure pretraining is off the logit curve: the optimum must beat its mean accuracy.
    base_w = weights * (f == 0) * (curve == "logit")
    with np.errstate(invalid="ignore", divide="ignore"):
        baseline = np.where(base_w.sum(1) > 0, (base_w * y).sum(1) / base_w.sum(1), -np.inf)
    checks = [
        (~(c2 < 0), lambda i: "not concave (accuracy has no interior maximum in the share)"),
        (~((u_star > lo) & (u_star < hi)),
         lambda i: f"optimum at the edge (the fitted maximum lies outside the shares fitted, "
                   f"{_share(curve, lo[i]):.3g}..{_share(curve, hi[i]):.3g})"),
        (~(acc_star > baseline), lambda i: f"pure pretraining (f=0, accuracy {baseline[i]:.3g}) beats the "
                                           f"fitted interior optimum ({acc_star[i]:.3g})"),
    ]
    for bad, why in checks:
        for i in np.flatnonzero(bad & (reasons == "")):
            reasons[i] = why(i)
    ok = reasons == ""
    share = np.where(ok, _share(curve, np.where(ok, u_star, 0.0)), np.nan)
    return share, np.where(ok, acc_star, np.nan), reasons, coef, (_share(curve, lo), _share(curve, hi))


def _loo_sse(curve: str, f: np.ndarray, y: np.ndarray) -> tuple[float, int] | None:
    """Leave-one-out squared error over the runs with 0 < f < 1 (both families can predict them),
    or None when a held-out run would leave fewer than three shares."""
    u, on = _coordinate(curve, f)
    X = np.stack([u**2, u, np.ones_like(u)], axis=1)[on]
    if len(np.unique(u[on])) < MIN_SHARES + 1:
        return None
    coef, *_ = np.linalg.lstsq(X, y[on], rcond=None)
    hat = np.einsum("ni,ij,nj->n", X, np.linalg.pinv(X.T @ X), X)
    loo = (y[on] - X @ coef) / (1 - hat)
    scored = (f[on] > 0) & (f[on] < 1)
    return float(np.sum(loo[scored] ** 2)), int(scored.sum())


def choose_curve(pts: Points) -> tuple[str, str]:
    """The family with the lower pooled leave-one-out error, and the note saying why."""
    totals = {"logit": [0.0, 0], "share": [0.0, 0]}
    compared = 0
    for budget in np.unique(pts.budget):
        m = pts.budget == budget
        scores = {c: _loo_sse(c, pts.x[m], pts.y[m]) for c in totals}
        if all(s is not None for s in scores.values()):
            compared += 1
            for c, (sse, n) in scores.items():
                totals[c][0] += sse
                totals[c][1] += n
    if not compared:
        return "logit", ("curve: parabola in logit f (default; no budget has the 4+ shares a leave-one-out "
                         "comparison with a parabola in f needs)")
    rmse = {c: np.sqrt(sse / n) for c, (sse, n) in totals.items()}
    chosen = min(rmse, key=rmse.get)
    return chosen, (f"curve: parabola in {'logit f' if chosen == 'logit' else 'f'}, chosen by leave-one-out "
                    f"accuracy error over {compared} budget(s): logit f {rmse['logit']:.4g}, f {rmse['share']:.4g}")


# ---- the law -----------------------------------------------------------------------------------------

def _line(log_c: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(log_c, v, 1)
    return float(slope), float(intercept)


def _logit(acc) -> np.ndarray:
    """The best accuracy's trend is straight in logit (it cannot pass 1 when extrapolated)."""
    acc = np.clip(np.asarray(acc, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(acc) - np.log1p(-acc)


@dataclass
class BudgetProfile:
    """One budget's curve of accuracy against the share, as `fit_split` sees it before any trend: its
    optimum (`row`: C, n_runs, n_shares, share_opt, accuracy_opt, ci, accuracy_f0 where measured), or
    the `reason` it has none; the parabola `coef` and the (lowest, highest) share it was fitted to; with a
    bootstrap, the replicates' optima (`samples`: share_opt, accuracy_opt; NaN where a replicate has none)."""

    row: dict
    reason: str
    coef: np.ndarray
    fitted_shares: tuple[float, float]
    samples: dict[str, np.ndarray] | None = None


def budget_profiles(pts: Points, curve: str, bootstrap: int = 0, seed: int = 0) -> list[BudgetProfile]:
    """Every budget's profile with the curve family `curve` ("logit" or "share"), in increasing C, whether
    or not the law can go on to fit trends: a report draws the refused budgets with their reason. With
    `bootstrap` replicates (runs resampled within the budget), an optimum gets its interval or is refused."""
    out = []
    for j, budget in enumerate(np.unique(pts.budget)):
        m = pts.budget == budget
        f, y = pts.x[m], pts.y[m]
        share, acc, reason, coef, (lo, hi) = _optimum(curve, f, y, np.ones((1, m.sum())))
        row = {"C": float(budget), "n_runs": int(m.sum()), "n_shares": int(len(np.unique(f))),
               "share_opt": float(share[0]), "accuracy_opt": float(acc[0]), "ci": {}}
        if (f == 0).any():
            row["accuracy_f0"] = float(y[f == 0].mean())
        profile = BudgetProfile(row, reason[0], coef[0], (float(lo[0]), float(hi[0])))
        if bootstrap and not profile.reason:
            _bootstrap_budget(profile, curve, f, y, bootstrap, seed + j)
        out.append(profile)
    return out


def _bootstrap_budget(profile: BudgetProfile, curve: str, f: np.ndarray, y: np.ndarray, n_replicates: int,
                      seed: int) -> None:
    """Refit the budget's optimum on its runs resampled with replacement: its interval, or the refusal."""
    share, acc, reasons, *_ = _optimum(curve, f, y, resample_weights(len(f), n_replicates, seed))
    profile.samples = {"share_opt": share, "accuracy_opt": acc}
    lost = np.isnan(share)
    if lost.mean() > MAX_LOST_FRACTION:
        gists, counts = np.unique([r.split(" (")[0] for r in reasons[lost]], return_counts=True)
        why = ", ".join(f"{g} {c / len(share):.0%}" for c, g in sorted(zip(counts, gists), reverse=True)
                        if c / len(share) >= 0.005)
        profile.reason = (f"no interior optimum in {lost.mean():.0%} of {len(share)} bootstrap replicates ({why}), "
                          f"more than the {MAX_LOST_FRACTION:.0%} a 95% interval may leave out: the runs do not "
                          "establish an optimum")
        return
    ci = percentile_intervals(profile.samples)
    # Sampling error is not the only error: a parabola is an approximation. The interval also covers
    # the optimum located with one more share either side, where that is interior.
    wide_share, wide_acc, reason, *_ = _optimum(curve, f, y, np.ones((1, len(f))), WINDOW + 1)
    if not reason[0]:
        for key, v in (("share_opt", wide_share[0]), ("accuracy_opt", wide_acc[0])):
            ci[key] = (min(ci[key][0], v), max(ci[key][1], v))
    lo, hi = ci["share_opt"]
    if not lo <= profile.row["share_opt"] <= hi:  # the estimator jumps: the runs' own optimum is atypical of them
        profile.reason = (f"the fitted optimum {profile.row['share_opt']:.3g} lies outside its own 95% bootstrap "
                          f"interval [{lo:.3g}, {hi:.3g}]: the vertex moves with which shares surround it")
        return
    profile.row["ci"] = {k: list(v) for k, v in ci.items()}


def fit_split(pts: Points, curve: str = "auto", bootstrap: int = 0, holdout_largest: bool = False,
              seed: int = 0, profiles: list[BudgetProfile] | None = None) -> FitResult:
    """The law: each budget's optimum (or its reason) and the trends over the usable ones. `profiles`, from
    `budget_profiles(pts, curve, bootstrap, seed)` with a fixed curve, saves a report computing them twice."""
    if curve not in CURVES:
        raise UserError(f"--method {curve}: split curves are {', '.join(CURVES)}")
    check_replicates(bootstrap)
    notes = list(pts.notes)
    if curve == "auto":
        curve, why = choose_curve(pts)
        notes.append(why)
    else:
        notes.append(f"curve: parabola in {'logit f' if curve == 'logit' else 'f'} (--method {curve})")
    notes.append(f"each budget's vertex from the {2 * WINDOW + 1} shares nearest a first parabola's vertex; "
                 f"intervals: bootstrap over runs within the budget, widened to cover the vertex from "
                 f"{2 * WINDOW + 3} shares (the curve is an approximation)")
    if curve == "logit":
        notes.append("f=0 (pure pretraining) has logit -inf and is not on the curve: it is the baseline the "
                     "interior optimum must beat; f=1 (no pretraining) is off the curve too and not used")
    if bootstrap:
        notes.append(f"a budget is refused when more than {MAX_LOST_FRACTION:.0%} of its replicates have no interior "
                     f"optimum; the share trend when its slope's interval holds 0 and a move beyond "
                     f"±{TREND_TOLERANCE:g} per decade; the accuracy trend when its slope's interval reaches 0 or "
                     f"spans more than a factor {MAX_EXPONENT_SPAN:g}")
    else:
        notes.append("no bootstrap: no interval, so neither a budget's optimum nor a trend is checked against one")

    profiles = profiles if profiles is not None else budget_profiles(pts, curve, bootstrap, seed)
    rows = [(p.row, p.coef, p.reason) for p in profiles if not p.reason]
    excluded = [(p.row, p.coef, p.reason) for p in profiles if p.reason]
    fitted_shares = {p.row["C"]: p.fitted_shares for p in profiles}  # where each curve is drawn
    budgets = [p.row["C"] for p in profiles]
    warnings = []
    if excluded:
        listed = "; ".join(f"{format_flops(r['C'])} ({why})" for r, _, why in excluded)
        warnings.append(f"split: excluded {len(excluded)} of {len(budgets)} budgets: {listed}")
    if len(rows) < 2:
        reasons = "; ".join(f"{format_flops(r['C'])}: {why}" for r, _, why in excluded) or "one budget in the data"
        raise UserError(f"split: {len(rows)} budget(s) with an interior optimum in the RL share; need at least 2 "
                        f"({reasons})")

    kept = [r for r, _, _ in rows]
    log_c = np.log10([r["C"] for r in kept])
    slope, intercept = _line(log_c, np.array([r["share_opt"] for r in kept]))
    acc_slope, acc_intercept = _line(log_c, _logit([r["accuracy_opt"] for r in kept]))
    params = {"slope": slope, "intercept": intercept,
              "logit_accuracy_slope": acc_slope, "logit_accuracy_intercept": acc_intercept}
    observed, predicted = _curve_residuals(pts, curve, [(r["C"], coef) for r, coef, _ in rows])
    notes.append("trends over the usable budgets (least squares): share_opt = intercept + slope·log10 C; "
                 "logit(accuracy_opt) = logit_accuracy_intercept + logit_accuracy_slope·log10 C")
    result = FitResult(
        law="split", params=params, n_points=len(pts.y),
        objective=float(np.sum((observed - predicted) ** 2)),
        r2=float(1 - np.sum((observed - predicted) ** 2) / np.sum((observed - observed.mean()) ** 2)),
        method=f"parabola of accuracy in {'logit f' if curve == 'logit' else 'f'} per budget; vertex = best RL share",
        extra={"curve": curve, "budgets": kept, "refused": {}}, notes=notes, warnings=warnings,
        observed=observed, predicted=predicted,
        state={"curve": curve, "coef": {r["C"]: coef for r, coef, _ in rows},
               "fitted_shares": fitted_shares,
               "excluded": [r["C"] for r, _, _ in excluded]})
    if bootstrap:
        _bootstrap_trends(result, [p for p in profiles if not p.reason], bootstrap)
        _refuse_unsupported_trends(result)
    if holdout_largest:
        if result.extra["refused"]:
            result.extra["refused"]["holdout"] = "the trends it would test are refused"
        else:
            result.extra["holdout"] = _holdout(kept)
    return result


def _curve_residuals(pts: Points, curve: str, fitted: list) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of the runs on each usable budget's curve, and the curve's value there."""
    observed, predicted = [], []
    for budget, coef in fitted:
        m = pts.budget == budget
        u, on = _coordinate(curve, pts.x[m])
        observed.append(pts.y[m][on])
        predicted.append(np.polyval(coef, u[on]))
    return np.concatenate(observed), np.concatenate(predicted)


def _bootstrap_trends(result: FitResult, usable: list[BudgetProfile], n_replicates: int) -> None:
    """Both trends refitted per replicate from the usable budgets' replicate optima (resampled independently
    per budget); a replicate in which a budget has no optimum leaves that budget out of its trends."""
    share = np.stack([p.samples["share_opt"] for p in usable], axis=1)
    acc = np.stack([p.samples["accuracy_opt"] for p in usable], axis=1)
    log_c = np.log10([p.row["C"] for p in usable])
    samples = {k: np.full(n_replicates, np.nan) for k in result.params}
    for i in range(n_replicates):
        ok = np.isfinite(share[i])
        if ok.sum() >= 2:
            samples["slope"][i], samples["intercept"][i] = _line(log_c[ok], share[i, ok])
            samples["logit_accuracy_slope"][i], samples["logit_accuracy_intercept"][i] = _line(log_c[ok],
                                                                                               _logit(acc[i, ok]))
    result.samples = {**samples, "share_opt": share, "accuracy_opt": acc}
    result.ci = percentile_intervals(samples)


def _refuse_unsupported_trends(result: FitResult) -> None:
    """Drop a trend whose interval says nothing from `params` and `ci`; `extra["refused"]` keeps the reason."""
    refused = result.extra["refused"]
    lo, hi = result.ci.get("slope", (np.nan, np.nan))
    if not (lo > 0 or hi < 0 or max(-lo, hi) <= TREND_TOLERANCE):
        refused["share_trend"] = (f"the slope's 95% interval [{lo:.3g}, {hi:.3g}] per decade of total compute holds "
                                  f"both signs and moves beyond ±{TREND_TOLERANCE:g}: the runs determine neither "
                                  "the direction nor a bound on how the best share moves")
    lo, hi = result.ci.get("logit_accuracy_slope", (np.nan, np.nan))
    if not (lo > 0 and hi / lo <= MAX_EXPONENT_SPAN):
        refused["accuracy_trend"] = (f"the logit-accuracy slope's 95% interval [{lo:.3g}, {hi:.3g}] per decade "
                                     + ("reaches 0: the runs do not show that more total compute buys accuracy"
                                        if not lo > 0 else f"spans more than a factor {MAX_EXPONENT_SPAN:g}"))
    for trend, names in (("share_trend", ("slope", "intercept")),
                         ("accuracy_trend", ("logit_accuracy_slope", "logit_accuracy_intercept"))):
        if trend in refused:
            result.warnings.append(f"split: {trend.replace('_', ' ')} refused: {refused[trend]}")
            for name in names:
                result.params.pop(name, None)
                result.ci.pop(name, None)


def _holdout(kept: list[dict]) -> dict:
    """Fit both trends without the largest budget; predict its best share and best accuracy."""
    if len(kept) < 3:
        raise UserError(f"--holdout-largest: split needs at least 3 usable budgets (has {len(kept)})")
    train, test = kept[:-1], kept[-1]
    log_c = np.log10([r["C"] for r in train])
    s, i = _line(log_c, np.array([r["share_opt"] for r in train]))
    a, b = _line(log_c, _logit([r["accuracy_opt"] for r in train]))
    # A straight line in log C can leave [0, 1]: a share outside it is clipped to the nearest edge.
    share_pred = float(np.clip(s * np.log10(test["C"]) + i, 0, 1))
    acc_pred = 1 / (1 + np.exp(-(a * np.log10(test["C"]) + b)))
    return {"budget": test["C"], "accuracy_opt": test["accuracy_opt"], "accuracy_pred": float(acc_pred),
            "accuracy_error": float(acc_pred - test["accuracy_opt"]), "share_opt": test["share_opt"],
            "share_pred": float(share_pred), "share_error": float(share_pred - test["share_opt"])}


def predict_share(params: dict[str, float], C) -> np.ndarray:
    """The trend's best share at total compute C, clipped to [0, 1] (the line itself is not)."""
    return np.clip(params["intercept"] + params["slope"] * np.log10(np.asarray(C, dtype=float)), 0, 1)


def predict_best_accuracy(params: dict[str, float], C) -> np.ndarray:
    z = params["logit_accuracy_intercept"] + params["logit_accuracy_slope"] * np.log10(np.asarray(C, dtype=float))
    return 1 / (1 + np.exp(-z))


def curve_accuracy(curve: str, coef: np.ndarray, f) -> np.ndarray:
    """A budget's fitted accuracy at shares f (inside (0, 1) for the logit curve)."""
    u, _ = _coordinate(curve, np.asarray(f, dtype=float))
    return np.polyval(coef, u)


def render_lines(result: FitResult) -> list[str]:
    """The per-budget table under the parameters, for `scaling fit split` without --json."""
    lines = ["budget C (FLOPs)   share_opt [95% CI]        accuracy_opt [95% CI]     f=0 accuracy"]
    for b in result.extra["budgets"]:
        cells = []
        for key in ("share_opt", "accuracy_opt"):
            ci = b["ci"].get(key)
            cells.append(f"{format_value(b[key])} [{format_value(ci[0])}, {format_value(ci[1])}]" if ci
                         else format_value(b[key]))
        lines.append(f"{format_flops(b['C']):<18} {cells[0]:<25} {cells[1]:<25} {format_value(b.get('accuracy_f0'))}")
    holdout = result.extra.get("holdout")
    if holdout:
        lines.append("holdout (largest budget left out, trends refitted on the rest): " + ", ".join(
            f"{k}={format_value(v)}" for k, v in holdout.items()))
    for what, why in result.extra.get("refused", {}).items():
        lines.append(f"{what.replace('_', ' ')}: refused ({why})")
    return lines
