"""Where fit data comes from: a CSV file, or a sweep directory's `registry.sqlite`.

A law needs a few roles (N, D, C, loss for pretraining laws; x, y for accuracy curves). Each role is
read from a column whose name defaults to the sweep registry's own (`n_params`, `tokens`, `flops`,
`eval_loss`, `accuracy`, `budget`) and can be renamed for someone else's CSV. N is the exception: where
the table is a sweep's (its registry, or its `sweep export`), N defaults to the sweep's design N, the
active non-embedding parameters its budgets were planned with (C = 6ND), not the total `n_params`. Every problem a user
can fix (missing file or column, a NaN, a non-positive size) is a one-line `UserError`.
"""
from __future__ import annotations

import csv
import math
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scaling.errors import UserError

DEFAULT_COLUMNS = {"n": "n_params", "d": "tokens", "c": "flops", "loss": "eval_loss",
                   "x": "flops", "y": "accuracy", "group": "budget"}
# The N a sweep plans its budgets with (`PlannedRun.n`); a table with this column came from a sweep.
DESIGN_N = "n_params_active_nonembedding"
LOSS_LAWS = ("chinchilla", "isoflop", "power")
CURVE_LAWS = ("loglinear", "sigmoid")


@dataclass(frozen=True)
class Columns:
    """Column names per role; None means the default, which may be absent without being an error
    where the role can be derived (D = C/6N, C = 6ND, budgets from rounded C)."""

    n: str | None = None
    d: str | None = None
    c: str | None = None
    loss: str | None = None
    x: str | None = None
    y: str | None = None
    group: str | None = None

    def name(self, role: str) -> str:
        return getattr(self, role) or DEFAULT_COLUMNS[role]

    def explicit(self, role: str) -> bool:
        return getattr(self, role) is not None


@dataclass
class Table:
    name: str  # how messages refer to it: a file path, or "SWEEP/registry.sqlite (runs)"
    values: dict[str, list]  # column -> raw values (str from CSV, numbers/None from SQLite)
    row_labels: list[str]  # "row 7" / "run abc123", for messages

    def has(self, column: str) -> bool:
        return column in self.values

    def numbers(self, column: str, flag: str | None = None) -> np.ndarray:
        if column not in self.values:
            hint = f"; set {flag}" if flag else ""
            raise UserError(f"{self.name}: no column {column!r}{hint} (columns: {', '.join(self.values)})")
        out = np.empty(len(self.row_labels))
        for i, v in enumerate(self.values[column]):
            try:
                out[i] = math.nan if v is None or v == "" else float(v)
            except (TypeError, ValueError):
                raise UserError(f"{self.name}: column {column!r} {self.row_labels[i]}: {v!r} is not a number") from None
        return out


def read_csv(path: Path) -> Table:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise UserError(f"{path}: empty CSV (no header row)")
        rows = list(reader)
    values = {name: [r.get(name) for r in rows] for name in reader.fieldnames}
    return Table(str(path), values, [f"row {i + 2}" for i in range(len(rows))])  # line numbers, header is 1


def read_registry(sweep_dir: Path, which: str) -> Table:
    """`runs` rows that finished (pretraining only, when kinds are recorded), the `curves` rows that
    carry an accuracy (RL evaluations), or (`split`) every run closing a split sweep's pipeline."""
    db = sweep_dir / "registry.sqlite"
    if not db.is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no registry.sqlite)")
    # A plain connection (not mode=ro): read-only opens of a WAL database can fail while a sweep
    # is writing; this one only SELECTs, and WAL readers never block the writers.
    con = sqlite3.connect(db, timeout=30)
    try:
        table = "curves" if which == "curves" else "runs"
        columns = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        if not columns:
            raise UserError(f"{db}: no table {table!r}")
        if which == "split":  # every pipeline, finished or not: the split loader says what is missing
            if "split_share" not in columns:
                raise UserError(f"{sweep_dir}: not a split sweep (no run records a pipeline's RL share); split "
                                "reads a `kind: split` sweep directory or a CSV of total compute, RL share and accuracy")
            cursor = con.execute("SELECT * FROM runs WHERE split_share IS NOT NULL ORDER BY split_budget, split_share")
        elif which == "runs":
            where = "status = 'done'" + (" AND (kind IS NULL OR kind = 'pretrain')" if "kind" in columns else "")
            cursor = con.execute(f"SELECT * FROM runs WHERE {where} ORDER BY run_id")
        else:
            cursor = con.execute("SELECT * FROM curves WHERE accuracy IS NOT NULL ORDER BY run_id, step")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except sqlite3.Error as e:
        raise UserError(f"{db}: cannot read {which} ({e})") from None
    finally:
        con.close()
    values = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    labels = [f"run {r[names.index('run_id')]}" if "run_id" in names else f"row {i + 1}" for i, r in enumerate(rows)]
    return Table(f"{db} ({which})", values, labels)


def open_table(source: str | Path, which: str) -> Table:
    path = Path(source)
    if path.is_dir():
        return read_registry(path, which)
    if not path.exists():
        raise UserError(f"{path}: no such file or sweep directory")
    return read_csv(path)


@dataclass
class Points:
    """The data one fit sees. Roles a law does not use are None."""

    source: str
    N: np.ndarray | None = None
    D: np.ndarray | None = None
    C: np.ndarray | None = None
    loss: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    budget: np.ndarray | None = None  # isoFLOP budget per row (FLOPs)
    curve: np.ndarray | None = None  # run id per row, for accuracy curves
    labels: dict[str, str] = field(default_factory=dict)  # role -> column it came from
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        first = next(v for v in (self.loss, self.y, self.N) if v is not None)
        return len(first)

    def subset(self, keep: np.ndarray) -> Points:
        arrays = {k: (getattr(self, k)[keep] if getattr(self, k) is not None else None)
                  for k in ("N", "D", "C", "loss", "x", "y", "budget", "curve")}
        return replace(self, **arrays, notes=list(self.notes))


def round_significant(values: np.ndarray, digits: int = 2) -> np.ndarray:
    exponent = np.floor(np.log10(values)) - (digits - 1)
    return np.round(values / 10.0**exponent) * 10.0**exponent


def _checked(table: Table, column: str, values: np.ndarray, positive: bool) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"{table.name}: column {column!r} {table.row_labels[i]}: missing or NaN value")
    if positive and (values <= 0).any():
        i = int(np.flatnonzero(values <= 0)[0])
        raise UserError(f"{table.name}: column {column!r} {table.row_labels[i]}: {values[i]:g} is not positive")
    return values


def _role(table: Table, cols: Columns, role: str, flag: str, positive: bool = True) -> np.ndarray:
    return _checked(table, cols.name(role), table.numbers(cols.name(role), flag), positive)


def _optional(table: Table, cols: Columns, role: str) -> bool:
    """Is the role's column there? An explicitly named column must be."""
    return table.has(cols.name(role)) or cols.explicit(role)


def load_loss_points(source: str | Path, cols: Columns = Columns(), drop_highest_loss: int = 0) -> Points:
    """N, D, C and loss for the pretraining laws (chinchilla, isoflop); D = C/(6N) or C = 6ND when
    only one of them is given, and budgets from the grouping column or C rounded to 2 digits."""
    table = open_table(source, "runs")
    cols, design_note = _design_n(table, cols)
    pts = Points(str(source), labels={"loss": cols.name("loss"), "N": cols.name("n")})
    pts.N = _role(table, cols, "n", "--n")
    if design_note:
        pts.notes.append(design_note)
    pts.loss = _role(table, cols, "loss", "--loss")
    has_d, has_c = _optional(table, cols, "d"), _optional(table, cols, "c")
    if not has_d and not has_c:
        raise UserError(f"{table.name}: neither column {cols.name('d')!r} (tokens) nor {cols.name('c')!r} "
                        f"(FLOPs) found; set --d or --c")
    if has_d:
        pts.D = _role(table, cols, "d", "--d")
        pts.labels["D"] = cols.name("d")
    if has_c:
        pts.C = _role(table, cols, "c", "--c")
        pts.labels["C"] = cols.name("c")
    if pts.D is None:
        pts.D = pts.C / (6.0 * pts.N)
        pts.notes.append(f"tokens derived as D = C/(6N) from {cols.name('c')!r} and {cols.name('n')!r}")
    if pts.C is None:
        pts.C = 6.0 * pts.N * pts.D
        pts.notes.append(f"compute derived as C = 6ND from {cols.name('n')!r} and {cols.name('d')!r}")

    if _optional(table, cols, "group"):
        budget = table.numbers(cols.name("group"), "--group")
        missing = ~np.isfinite(budget) | (budget <= 0)
        budget[missing] = round_significant(pts.C[missing])
        pts.notes.append(f"isoFLOP budgets from column {cols.name('group')!r}"
                         + (f" ({missing.sum()} missing: C rounded to 2 significant figures)" if missing.any() else ""))
    else:
        budget = round_significant(pts.C)
        pts.notes.append(f"isoFLOP budgets: C rounded to 2 significant figures (no {cols.name('group')!r} column)")
    pts.budget = budget
    return drop_highest(pts, drop_highest_loss)


def _design_n(table: Table, cols: Columns) -> tuple[Columns, str | None]:
    """Default N to a sweep's design N where every row has it, so a fit's exponents are those of the
    budgets the sweep planned (with the total `n_params` the demo's isoFLOP a is 0.42, not 0.60)."""
    if cols.explicit("n") or not table.has(DESIGN_N):
        return cols, None
    if any(v is None or v == "" for v in table.values[DESIGN_N]):
        return cols, None
    return replace(cols, n=DESIGN_N), f"N: column {DESIGN_N!r}, the sweep's design N (set --n n_params for total)"


def drop_highest(pts: Points, k: int) -> Points:
    """Keep rows with loss < sorted(loss)[-k] (Epoch's filter; ties with the k-th highest go too)."""
    if k <= 0:
        return pts
    if k >= len(pts):
        raise UserError(f"--drop-highest-loss {k}: only {len(pts)} points")
    threshold = np.sort(pts.loss)[-k]
    kept = pts.subset(pts.loss < threshold)
    kept.notes.append(f"dropped the {len(pts) - len(kept)} highest-loss points (loss >= {threshold:.4g})")
    return kept


def load_xy_points(source: str | Path, law: str, cols: Columns = Columns(), drop_highest_loss: int = 0) -> Points:
    """x, y for power laws (default: compute and loss of finished runs) and for accuracy curves
    (default: cumulative FLOPs and accuracy of every evaluation, one curve per run)."""
    curves = law in CURVE_LAWS
    table = open_table(source, "curves" if curves else "runs")
    if curves:
        x_col, y_col = cols.name("x"), cols.name("y")
    else:  # a power law of loss in compute unless told otherwise
        x_col, y_col = cols.x or cols.name("c"), cols.y or cols.name("loss")
    pts = Points(str(source), labels={"x": x_col, "y": y_col})
    pts.x = _checked(table, x_col, table.numbers(x_col, "--x"), positive=True)
    pts.y = _checked(table, y_col, table.numbers(y_col, "--y"), positive=not curves)
    if table.has("run_id"):
        pts.curve = np.array([str(v) for v in table.values["run_id"]])
    if drop_highest_loss:
        if curves:
            raise UserError(f"--drop-highest-loss applies to loss laws ({', '.join(LOSS_LAWS)}), not {law}")
        pts.loss = pts.y
        pts = drop_highest(pts, drop_highest_loss)
        pts.loss = None
    return pts
