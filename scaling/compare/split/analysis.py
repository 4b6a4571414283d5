"""Pure: a split sweep's pipelines and its models' test-time curves → the report's numbers.

No fitting here: every curve and interval comes from laws.split (budget_profiles, fit_split) and
laws.testtime (fit_testtime). What this adds is keeping what those laws refuse: every budget is kept
with its measured points and either its optimum or the reason it has none, and an exchange rate the
law calls undefined is kept as that reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.errors import UserError
from scaling.laws.results import FitResult
from scaling.laws.sources import Points

METRICS = ("maj@k", "pass@k")  # maj@k first: a vote needs no verifier at test time, pass@k does


@dataclass
class Budget:
    C: float
    shares: list[float]  # per pipeline, as run
    totals: list[float]
    accuracy: list[float]
    reason: str  # "" where the law finds this budget's optimum
    share_opt: float | None = None
    accuracy_opt: float | None = None
    ci: dict = field(default_factory=dict)  # share_opt / accuracy_opt → [lo, hi] (bootstrap, when fitted)
    coef: np.ndarray | None = None  # the curve around the optimum (laws.split.curve_accuracy)
    fitted_shares: tuple[float, float] | None = None
    best_measured: tuple[float, float] = (0.0, 0.0)  # (share, mean accuracy) of the best share tried
    accuracy_f0: float | None = None


@dataclass
class SplitAnalysis:
    curve: str
    curve_note: str
    budgets: list[Budget]
    fit: FitResult | None  # the law with its trends, or None and...
    refusal: str | None  # ...the law's reason
    bootstrap: int

    def share_trend_refusal(self) -> str | None:
        """Why there is no trend of the best share to report (no law, or the law refused the trend), or None."""
        if self.fit is None:
            return self.refusal
        return self.fit.extra.get("refused", {}).get("share_trend")


@dataclass
class ExchangeRate:
    metric: str
    result: FitResult | None
    reason: str | None  # why it is undefined, when result is None
    points: Points | None


def analyze_split(pts: Points, bootstrap: int = 1000, seed: int = 0) -> SplitAnalysis:
    from scaling.laws.split import budget_profiles, choose_curve, fit_split

    curve, note = choose_curve(pts)
    profiles = budget_profiles(pts, curve, bootstrap, seed)  # with the bootstrap's refusals and intervals
    fit, refusal = None, None
    usable = sum(not p.reason for p in profiles)
    try:
        fit = fit_split(pts, curve=curve, bootstrap=bootstrap, seed=seed, holdout_largest=usable >= 3,
                        profiles=profiles)
    except UserError as e:
        refusal = str(e).removeprefix("split: ")
    budgets = []
    for p in profiles:
        m = pts.budget == p.row["C"]
        f, y = pts.x[m], pts.y[m]
        means = {s: float(y[f == s].mean()) for s in np.unique(f)}
        best = max(means, key=means.get)
        row = p.row
        b = Budget(C=p.row["C"], shares=f.tolist(), totals=pts.C[m].tolist(), accuracy=y.tolist(), reason=p.reason,
                   best_measured=(float(best), means[best]), accuracy_f0=p.row.get("accuracy_f0"))
        if not p.reason:
            b.share_opt, b.accuracy_opt, b.ci = row["share_opt"], row["accuracy_opt"], dict(row["ci"])
            b.coef, b.fitted_shares = p.coef, p.fitted_shares
        budgets.append(b)
    return SplitAnalysis(curve, note, budgets, fit, refusal, bootstrap)


def testtime_points(models: list[dict], metric: str) -> Points:
    """One row per (model, k): training compute, test-time compute k × FLOPs per sample, accuracy."""
    C = np.array([m["train_flops"] for m in models for _ in m["k"]], dtype=float)
    x = np.array([k * m["sample_flops"] for m in models for k in m["k"]], dtype=float)
    y = np.array([v for m in models for v in m[metric]], dtype=float)
    return Points("split sweep models", C=C, x=x, y=y, budget=C,
                  labels={"C": "train_flops", "x": "k × sample_flops", "y": metric})


def exchange_rate(models: list[dict], metric: str, bootstrap: int = 1000, seed: int = 0,
                  not_measured: str | None = None) -> ExchangeRate:
    """The law's exchange rate between training and test-time compute on `metric`, or why it is undefined."""
    from scaling.laws.testtime import fit_testtime

    if not_measured:
        return ExchangeRate(metric, None, f"test-time compute not measured ({not_measured})", None)
    if not models:
        return ExchangeRate(metric, None, "no model of the sweep could be evaluated", None)
    pts = testtime_points(models, metric)
    try:
        return ExchangeRate(metric, fit_testtime(pts, bootstrap=bootstrap, seed=seed), None, pts)
    except UserError as e:
        reason = str(e).removeprefix("testtime: ").removeprefix("undefined: ")
        flat = [m for m in models if all(v in (0.0, 1.0) for v in m[metric])]
        if flat:  # the law leaves their points out silently in its refusal: say so
            reason += (f"; {len(flat)} of {len(models)} models score 0 or 1 at every k, where logit accuracy is "
                       "undefined")
        return ExchangeRate(metric, None, reason, pts)
