"""What a fit returns, and its two renderings: one JSON object (for scripts) and a table (for people).

The JSON layout is a contract other tools script against:
`{"law", "params", "n_points", "objective", "r2", "ci": {name: [lo, hi]}, ...}` plus law-specific
top-level keys (chinchilla `a`, `b`, `G`; isoflop `a`, `b`, `budgets`; loglinear `error_rate`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FitResult:
    law: str
    params: dict[str, float]
    n_points: int
    objective: float | None = None  # the minimised quantity (its definition is in `method`)
    r2: float | None = None
    method: str = ""
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% bootstrap percentile intervals
    extra: dict[str, Any] = field(default_factory=dict)  # law-specific top-level JSON keys
    notes: list[str] = field(default_factory=list)  # conventions used (e.g. D = C/(6N))
    warnings: list[str] = field(default_factory=list)  # data left out, fits that did not converge
    # For figures and residuals; not part of the JSON.
    observed: np.ndarray | None = None
    predicted: np.ndarray | None = None
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # bootstrap draws per quantity
    state: dict[str, Any] = field(default_factory=dict)  # what figures need to redraw the fit

    def to_json(self) -> dict[str, Any]:
        out = {
            "law": self.law,
            "params": {k: _num(v) for k, v in self.params.items()},
            "n_points": int(self.n_points),
            "objective": _num(self.objective),
            "r2": _num(self.r2),
            "method": self.method,
            "ci": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.ci.items()},
        }
        out.update({k: jsonable(v) for k, v in self.extra.items()})
        out["notes"] = list(self.notes)
        out["warnings"] = list(self.warnings)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, allow_nan=False)


def _num(v: Any) -> float | int | None:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def jsonable(v: Any) -> Any:
    """Plain JSON: numpy scalars and arrays become numbers and lists, and inf/NaN (an unbounded
    interval, a failed fit) become null, so `json.dumps(..., allow_nan=False)` always succeeds."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (bool, int, float, np.bool_, np.number)):
        return _num(v)
    return v


def format_value(v: float | None) -> str:
    """4 significant figures, the precision published fits are quoted at."""
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.4g}"


def render_table(result: FitResult) -> str:
    """A plain-text summary: parameters with intervals, fit quality, law-specific extras, notes."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.law} fit, {result.n_points} points", title_justify="left")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("95% CI (bootstrap)", justify="right")
    rows = dict(result.params)
    for key in ("a", "b", "G"):
        if key in result.extra and key not in rows:
            rows[key] = result.extra[key]
    for name, value in rows.items():
        lo_hi = result.ci.get(name)
        interval = f"[{format_value(lo_hi[0])}, {format_value(lo_hi[1])}]" if lo_hi else ""
        table.add_row(name, format_value(value), interval)
    if result.objective is not None:
        table.add_row("objective", f"{result.objective:.6g}", "")
    if result.r2 is not None:
        table.add_row("R²", f"{result.r2:.4f}", "")

    buffer = StringIO()
    console = Console(file=buffer, width=100, color_system=None)
    console.print(table)
    console.print(f"method: {result.method}", highlight=False, markup=False)
    for line in _extra_lines(result):
        console.print(line, highlight=False, markup=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    return buffer.getvalue().rstrip("\n")


def _extra_lines(result: FitResult) -> list[str]:
    lines = []
    budgets = result.extra.get("budgets")
    if budgets:
        lines.append("budget C (FLOPs)   N_opt        D_opt        L_opt")
        for b in budgets:
            lines.append(f"{b['C']:<18.3g} {b['N_opt']:<12.4g} {b['D_opt']:<12.4g} {b['L_opt']:.4g}".replace("e+", "e"))
    error_rate = result.extra.get("error_rate")
    if error_rate:
        lines.append(f"error rate: ln(1-y) = {error_rate['c']:.4g} - {error_rate['k']:.4g}·ln x"
                     f"  (R² {format_value(error_rate['r2'])})")
    holdout = result.extra.get("holdout")
    if holdout:
        lines.append("holdout (largest budget left out, refitted on the rest): " + ", ".join(
            f"{k}={format_value(v) if isinstance(v, float) else v}" for k, v in holdout.items() if not isinstance(v, dict)))
    return lines
