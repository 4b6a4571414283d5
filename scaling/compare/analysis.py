"""Pretraining compute vs RL compute on one metric: the fits and the compute-equivalent gain.

Pure: plain points in, fits and numbers out (no model, no files), so every number can be checked
by hand. All compute here is in the full FLOP convention (what RL compute is counted in).

- Pretraining axis: accuracy of each pretrained model against its pretraining FLOPs, fitted with
  the log-linear law (slope = accuracy per decade of compute) and, given enough points, the sigmoid.
- RL axis: per starting model, accuracy along its RL runs against cumulative RL FLOPs (same laws).
- Compute-equivalent gain of an RL point (accuracy y after C_pre + C_RL FLOPs): the pretraining
  compute C_eq at which the fitted pretraining curve reaches y, divided by C_pre + C_RL. Above 1,
  RL bought that accuracy cheaper than more pretraining would have. Its interval comes from the
  bootstrap draws of the pretraining fit (the RL point is taken as measured).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.errors import UserError
from scaling.laws import fit
from scaling.laws.accuracy import predict_loglinear, predict_sigmoid
from scaling.laws.bootstrap import CI_LEVEL
from scaling.laws.results import FitResult
from scaling.laws.sources import Points

IN_RANGE = "ok"
BEYOND = "beyond the fitted range"
BELOW = "below the fitted range"
UNDEFINED = "undefined"


@dataclass
class PretrainPoint:
    run_id: str
    name: str
    flops: float  # pretraining FLOPs, full convention
    accuracy: float  # greedy pass@1 on the RL task's held-out problems
    extra: dict = field(default_factory=dict)  # N, tokens, 6N FLOPs, eval loss, pass@k, ... (reported as is)


@dataclass
class CurvePoint:
    step: int
    rl_flops: float  # cumulative RL FLOPs, full convention
    accuracy: float


@dataclass
class RLRun:
    run_id: str
    name: str
    init_run_id: str  # the starting model's run id (its curve groups by it)
    init_flops: float  # pretraining FLOPs of the starting model, full convention
    curve: list[CurvePoint]  # evaluations after RL steps (rl_flops > 0), in order; the last is the final one
    initial_accuracy: float | None = None  # the evaluation before any RL step (at rl_flops = 0)
    extra: dict = field(default_factory=dict)

    @property
    def final(self) -> CurvePoint:
        return self.curve[-1]

    @property
    def total_flops(self) -> float:
        return self.init_flops + self.final.rl_flops


@dataclass
class LawFit:
    """A fitted law, or why there is none (a sentence for the report)."""

    law: str
    result: FitResult | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class Slope:
    """Accuracy gained per decade of compute: the log-linear slope b with its bootstrap interval."""

    value: float | None
    ci: tuple[float, float] | None
    n_points: int
    runs: list[str]
    reason: str | None = None


@dataclass
class Gain:
    """The compute-equivalent gain of one RL evaluation, read off one pretraining law."""

    run_id: str
    step: int
    final: bool
    accuracy: float
    spent: float  # pretraining + RL FLOPs (full)
    law: str
    status: str  # IN_RANGE, BEYOND, BELOW or UNDEFINED
    c_eq: float | None = None  # pretraining FLOPs the fitted curve needs to reach `accuracy`
    gain: float | None = None  # c_eq / spent
    ci: tuple[float, float] | None = None  # 95% bootstrap interval of the gain (inf: no replicate reaches it)
    reason: str | None = None


@dataclass
class Comparison:
    pretrain: list[PretrainPoint]
    rl: list[RLRun]
    pretrain_fits: dict[str, LawFit]  # "loglinear", "sigmoid"
    pretrain_range: tuple[float, float]  # pretraining FLOPs spanned by the points (the fitted range)
    rl_fits: dict[str, dict[str, LawFit]]  # init run id -> law -> fit (x: RL FLOPs)
    slopes: dict[str, Slope]  # "pretrain", and "rl:<init run id>" per starting model
    gains: list[Gain]
    bootstrap: int
    warnings: list[str] = field(default_factory=list)


def accuracy_fits(x: np.ndarray, y: np.ndarray, curve: np.ndarray | None, bootstrap: int, seed: int,
                  source: str) -> dict[str, LawFit]:
    """Log-linear and sigmoid fits of accuracy y against compute x; a fit the data cannot support
    becomes its reason instead of an error."""
    pts = Points(source, x=np.asarray(x, float), y=np.asarray(y, float), curve=curve,
                 labels={"x": "flops_full", "y": "accuracy"})
    fits = {}
    for law in ("loglinear", "sigmoid"):
        if law == "sigmoid" and len(y) and np.ptp(y) == 0:
            fits[law] = LawFit(law, reason=f"every accuracy is {y[0]:.3g}: a sigmoid has nothing to bend")
            continue
        try:
            fits[law] = LawFit(law, fit(law, pts, bootstrap=bootstrap, seed=seed))
        except UserError as e:
            fits[law] = LawFit(law, reason=str(e))
    return fits


def slope_of(fits: dict[str, LawFit], runs: list[str], n_points: int) -> Slope:
    loglinear = fits["loglinear"]
    if not loglinear.ok:
        return Slope(None, None, n_points, runs, reason=loglinear.reason)
    ci = loglinear.result.ci.get("b")
    return Slope(loglinear.result.params["b"], tuple(ci) if ci else None, n_points, runs)


def _quantiles(draws: np.ndarray) -> tuple[float, float] | None:
    """Percentile interval that keeps +inf draws (replicates that never reach the accuracy):
    inverted_cdf picks sample values, so no inf - inf interpolation turns into NaN."""
    draws = draws[~np.isnan(draws)]
    if draws.size < 2:
        return None
    tail = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def invert_loglinear(a, b, y) -> np.ndarray:
    """C with a + b·log10 C = y; +inf where b <= 0 (more pretraining never gets there)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        c = np.where(b > 0, 10.0 ** ((y - a) / np.where(b > 0, b, 1.0)), np.inf)
    return np.where(np.isnan(a) | np.isnan(b), np.nan, c)  # a replicate that could not be fitted


def invert_sigmoid(R0, A, B, C_mid, y) -> np.ndarray:
    """C with R0 + (A − R0)/(1 + (C_mid/C)^B) = y; +inf where y >= A (at or above the asymptote),
    0 where y <= R0 (the curve starts above it)."""
    R0, A, B, C_mid = (np.asarray(v, float) for v in (R0, A, B, C_mid))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inside = C_mid * ((A - R0) / (y - R0) - 1) ** (-1 / B)
    return np.where(y >= A, np.inf, np.where(y <= R0, 0.0, inside))


FLAT_SLOPE = 1e-9  # accuracy per decade; see equivalent()


def equivalent(law: LawFit, accuracy: float, spent: float, c_range: tuple[float, float]) -> Gain:
    """Pretraining compute the fitted curve needs for `accuracy`, and the gain c_eq / spent."""
    gain = Gain(run_id="", step=0, final=False, accuracy=accuracy, spent=spent, law=law.law, status=UNDEFINED)
    if not law.ok:
        gain.reason = f"no pretraining {law.law} fit ({law.reason})"
        return gain
    p, s = law.result.params, law.result.samples
    if law.law == "loglinear":
        # A flat line fitted in floating point can come out at b = ±1e-17 depending on the BLAS:
        # anything below a billionth of accuracy per decade is flat, not a slope to invert.
        if not p["b"] > FLAT_SLOPE:
            gain.reason = f"pretraining slope not > 0 ({p['b'] + 0.0:.3g} accuracy per decade)"
            return gain
        c_eq = float(invert_loglinear(p["a"], p["b"], accuracy))
        draws = invert_loglinear(s["a"], s["b"], accuracy) if s else None
    else:
        if accuracy >= p["A"]:
            gain.reason = f"accuracy {accuracy:.3g} is at or above the pretraining asymptote A = {p['A']:.3g}"
            return gain
        if accuracy <= p["R0"]:
            gain.reason = f"accuracy {accuracy:.3g} is at or below the pretraining floor R0 = {p['R0']:.3g}"
            return gain
        c_eq = float(invert_sigmoid(p["R0"], p["A"], p["B"], p["C_mid"], accuracy))
        draws = (invert_sigmoid(s.get("R0", p["R0"]), s["A"], s["B"], s["C_mid"], accuracy) if s else None)
    if not np.isfinite(c_eq) or c_eq <= 0:
        gain.reason = f"the fitted pretraining curve does not reach accuracy {accuracy:.3g}"
        return gain
    gain.c_eq, gain.gain = c_eq, c_eq / spent
    lo, hi = c_range
    gain.status = IN_RANGE if lo <= c_eq <= hi else BEYOND if c_eq > hi else BELOW
    if gain.status != IN_RANGE:
        gain.reason = (f"the pretraining curve reaches {accuracy:.3g} at {c_eq:.3g} FLOPs, outside the "
                       f"{lo:.3g}–{hi:.3g} FLOPs its points span (extrapolated)")
    if draws is not None:
        gain.ci = _quantiles(np.asarray(draws, float) / spent)
    return gain


def rl_points(runs: list[RLRun]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RL FLOPs, accuracy, run id) of every evaluation after an RL step, all runs pooled."""
    pts = [(p.rl_flops, p.accuracy, r.run_id) for r in runs for p in r.curve if p.rl_flops > 0]
    if not pts:
        return np.zeros(0), np.zeros(0), np.zeros(0, str)
    x, y, ids = zip(*pts)
    return np.array(x, float), np.array(y, float), np.array(ids)


def compare(pretrain: list[PretrainPoint], rl: list[RLRun], bootstrap: int = 1000, seed: int = 0,
            every_point: bool = True) -> Comparison:
    """Fit both axes and read every RL evaluation (or only each run's final one) off the pretraining laws."""
    warnings = []
    x = np.array([p.flops for p in pretrain], float)
    y = np.array([p.accuracy for p in pretrain], float)
    pre_fits = accuracy_fits(x, y, None, bootstrap, seed, "pretrained models")
    c_range = (float(x.min()), float(x.max())) if len(x) else (np.nan, np.nan)
    slopes = {"pretrain": slope_of(pre_fits, [p.run_id for p in pretrain], len(pretrain))}
    if len(y) and np.ptp(y) == 0:
        warnings.append(f"every pretrained model scores {y[0]:.3g} on the RL task: the pretraining axis is flat, "
                        "so no compute-equivalent gain can be read off it")

    rl_fits: dict[str, dict[str, LawFit]] = {}
    for init in dict.fromkeys(r.init_run_id for r in rl):
        runs = [r for r in rl if r.init_run_id == init]
        rx, ry, ids = rl_points(runs)
        rl_fits[init] = accuracy_fits(rx, ry, ids, bootstrap, seed, f"RL from {init}")
        slopes[f"rl:{init}"] = slope_of(rl_fits[init], [r.run_id for r in runs], len(rx))

    gains = []
    for run in rl:
        points = run.curve if every_point else run.curve[-1:]
        for point in points:
            for law, law_fit in pre_fits.items():
                if law == "sigmoid" and not law_fit.ok:
                    continue  # the log-linear row already says why the pretraining axis gives nothing
                g = equivalent(law_fit, point.accuracy, run.init_flops + point.rl_flops, c_range)
                g.run_id, g.step, g.final = run.run_id, point.step, point is run.curve[-1]
                gains.append(g)
    return Comparison(pretrain, rl, pre_fits, c_range, rl_fits, slopes, gains, bootstrap, warnings)


# -- the loss side: the pretraining law of the pretraining sweep ---------------------------------

def loss_law(loss_pts: Points | None, power_pts: Points | None, bootstrap: int, seed: int,
             missing: str = "no data") -> tuple[LawFit, list[str]]:
    """The first law the sweep supports: isoFLOP exponents (>= 2 budgets with an interior minimum),
    else Chinchilla's L(N, D), else a power law of eval loss in compute; with why each earlier one
    could not be fitted (`missing`: why a law without points has none). A fit the data do not support
    (laws.support: E at its bound, an exponent's interval spanning orders of magnitude) is refused like
    one that failed. No law at all is a LawFit without result whose reason says why."""
    from scaling.laws.support import unsupported

    tried = []
    for law, pts in (("isoflop", loss_pts), ("chinchilla", loss_pts), ("power", power_pts)):
        if pts is None:
            tried.append(f"{law}: {missing}")
            continue
        try:
            result = fit(law, pts, bootstrap=bootstrap, seed=seed)
        except UserError as e:
            tried.append(str(e) if str(e).startswith(law) else f"{law}: {e}")
            continue
        refused = unsupported(result)
        if refused:
            tried.append(f"{law}: refused, {refused}")
            continue
        return LawFit(law, result), tried
    return LawFit("none", reason="no pretraining loss law could be fitted: " + "; ".join(tried)), tried


def predict(law: LawFit, x) -> np.ndarray:
    """Accuracy predicted by a fitted log-linear or sigmoid law."""
    p = law.result.params
    return predict_loglinear(p, x) if law.law == "loglinear" else predict_sigmoid(p, x)
