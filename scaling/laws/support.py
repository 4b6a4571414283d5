"""Whether the data support a fitted loss law, for the reports that quote one as a result.

A least-squares fit always returns numbers; two kinds of them mean the points did not pin the law:
- the irreducible loss E driven to its bound (E = exp(e) with e → -∞ prints as E = 1e-305): the
  points show no floor, so E and, with it, the exponent are whatever made the curve straight;
- an exponent whose 95% bootstrap interval spans orders of magnitude or both signs (α in [-88, 12.6]):
  resampling the points gives laws unlike each other.
`unsupported` returns the reason (a clause for a report) or None; the isoFLOP fit refuses its own
(too few budgets with an interior minimum) before it returns.
"""
from __future__ import annotations

import math

from scaling.laws.results import FitResult

# E below this share of the smallest observed loss is E at its bound (0), not a measured floor.
E_BOUND_SHARE = 1e-3
# An exponent's interval may span at most this ratio hi/lo (one decade).
MAX_EXPONENT_SPAN = 10.0
EXPONENTS = ("alpha", "beta")


def unsupported(result: FitResult) -> str | None:
    """Why `result` (a chinchilla or power fit) is not a law the data support, or None if it is."""
    params = result.params
    if "E" in params and result.observed is not None and len(result.observed):
        floor = float(min(result.observed))
        if not params["E"] >= E_BOUND_SHARE * floor:
            return (f"E = {params['E']:.3g} is at its bound 0 (below {E_BOUND_SHARE:g} × the smallest loss "
                    f"{floor:.3g}): the points show no irreducible loss, so the exponents are not determined")
    for name in EXPONENTS:
        if name not in params:
            continue
        value, ci = params[name], result.ci.get(name)
        if not math.isfinite(value):
            return f"{name} = {value}: not a number"
        if ci is None:
            continue
        lo, hi = ci
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return f"the 95% interval of {name} is unbounded ([{lo:.3g}, {hi:.3g}])"
        if lo <= 0:
            return (f"the 95% interval of {name}, [{lo:.3g}, {hi:.3g}], reaches {name} <= 0: the points do not "
                    "determine the exponent")
        if hi / lo > MAX_EXPONENT_SPAN:
            return (f"the 95% interval of {name}, [{lo:.3g}, {hi:.3g}], spans more than a decade: the points do "
                    "not determine the exponent")
    return None
