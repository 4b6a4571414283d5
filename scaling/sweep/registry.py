"""The results registry: SWEEP_DIR/registry.sqlite, one row per run. Its schema is a contract
(`scaling fit` reads it): columns may be added, never renamed or removed.

Written only on the submitting machine (SQLite's WAL needs one host's shared memory; Ray tasks return their
results to the driver, which records them), but by many threads at once: every write is its own short
`BEGIN IMMEDIATE` transaction on a fresh connection, WAL mode lets readers proceed meanwhile, and
`database is locked` is retried with backoff on top of sqlite's own busy timeout.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from scaling.config.identity import ID_SCHEME
from scaling.errors import UserError

# (column, SQL type) in table order. The first block is the contract; the rest are this module's own.
RUN_COLUMNS: list[tuple[str, str]] = [
    ("run_id", "TEXT PRIMARY KEY"), ("kind", "TEXT"), ("status", "TEXT"), ("model", "TEXT"), ("run_dir", "TEXT"),
    ("config_json", "TEXT"), ("n_params", "INTEGER"), ("n_params_nonembedding", "INTEGER"),
    ("n_params_active", "INTEGER"), ("tokens", "INTEGER"), ("flops", "REAL"), ("flops_6n", "REAL"),
    ("flops_full", "REAL"), ("flop_convention", "TEXT"), ("budget", "REAL"), ("loss", "REAL"), ("eval_loss", "REAL"),
    ("eval_bpb", "REAL"), ("accuracy", "REAL"), ("init_flops", "REAL"), ("wall_s", "REAL"), ("device", "TEXT"),
    ("error", "TEXT"), ("attempts", "INTEGER"), ("updated_at", "TEXT"),
    # Beyond the contract: where the run sits in the sweep, and who is running it.
    ("name", "TEXT"), ("design", "TEXT"), ("seed", "INTEGER"), ("steps", "INTEGER"),
    ("n_params_active_nonembedding", "INTEGER"), ("swept_json", "TEXT"), ("role", "TEXT"), ("fork_of", "TEXT"),
    ("fork_step", "INTEGER"), ("pid", "INTEGER"), ("host", "TEXT"), ("started_at", "TEXT"),
    ("heartbeat_at", "TEXT"), ("finished_at", "TEXT"),
    # A split sweep's RL (or f=0 eval-only) run: the pipeline's total budget C and RL share f, as planned.
    ("split_budget", "REAL"), ("split_share", "REAL"),
]
CURVE_COLUMNS: list[tuple[str, str]] = [
    ("run_id", "TEXT"), ("step", "INTEGER"), ("tokens", "INTEGER"), ("flops", "REAL"), ("eval_loss", "REAL"),
    ("accuracy", "REAL"), ("eval_bpb", "REAL"), ("flops_6n", "REAL"), ("flops_full", "REAL"),
]
RUN_NAMES = [c for c, _ in RUN_COLUMNS]
CURVE_NAMES = [c for c, _ in CURVE_COLUMNS]

RETRIES = 50
BUSY_TIMEOUT_S = 60.0


def _damaged(e: sqlite3.DatabaseError) -> bool:
    """Not a database, malformed, or truncated before its tables: errors no retry can cure."""
    if not isinstance(e, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed"
    return "no such table" in str(e) or "malformed" in str(e)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Registry:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.OperationalError as e:  # a directory in its place, an unreadable file
            raise UserError(f"{self.path}: cannot open the registry ({e})") from None
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _retry(self, fn: Callable[[sqlite3.Connection], Any], write: bool) -> Any:
        """Run `fn` in one transaction; on `database is locked/busy`, back off and try again."""
        for attempt in range(RETRIES):
            conn = self._connect()
            try:
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                if write:
                    conn.execute("COMMIT")
                return result
            except sqlite3.DatabaseError as e:
                if write and conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if _damaged(e):
                    raise UserError(f"{self.path}: the registry is damaged ({e}); nothing was changed (restore "
                                    "it from a backup, or submit the sweep to a new --out)") from None
                if "locked" not in str(e) and "busy" not in str(e) or attempt == RETRIES - 1:
                    raise
                time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 6)) * (0.5 + random.random()))
            finally:
                conn.close()

    def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._retry(fn, write=True)

    def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return self._retry(fn, write=False)

    # -- schema --------------------------------------------------------------------------------

    def init(self) -> None:
        def create(conn):
            conn.execute(f"CREATE TABLE IF NOT EXISTS runs ({', '.join(f'{c} {t}' for c, t in RUN_COLUMNS)})")
            conn.execute(f"CREATE TABLE IF NOT EXISTS curves ({', '.join(f'{c} {t}' for c, t in CURVE_COLUMNS)}, "
                         "PRIMARY KEY (run_id, step))")
            present = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, sql_type in RUN_COLUMNS:  # a registry written by an older version gains new columns
                if column not in present:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
            if not conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone():  # new: its ids follow today's rule
                conn.execute(f"PRAGMA user_version = {ID_SCHEME}")

        # WAL must be switched on outside a transaction; it then sticks to the database file.
        self.read(lambda conn: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        self.write(create)

    def id_scheme(self) -> int:
        """Which run-id rule its rows follow (config/identity.py ID_SCHEME; 0 = before ids left out
        operational settings)."""
        return self.read(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0])

    # -- rows ----------------------------------------------------------------------------------

    def add_planned(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert runs not yet known; rows already present (a resumed sweep) keep their status."""
        rows = list(rows)

        def insert(conn):
            for row in rows:
                row = {**row, "updated_at": now()}
                cols = ", ".join(row)
                conn.execute(f"INSERT OR IGNORE INTO runs ({cols}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))

        self.write(insert)

    def update(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(RUN_NAMES)
        if unknown:
            raise KeyError(f"not registry columns: {sorted(unknown)}")
        fields["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.write(lambda conn: conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*fields.values(), run_id]))

    def mark_running(self, run_id: str, pid: int, host: str) -> None:
        stamp = now()
        self.write(lambda conn: conn.execute(
            "UPDATE runs SET status = 'running', pid = ?, host = ?, started_at = ?, heartbeat_at = ?, "
            "updated_at = ?, error = NULL, attempts = COALESCE(attempts, 0) + 1 WHERE run_id = ?",
            (pid, host, stamp, stamp, stamp, run_id)))

    def heartbeat(self, run_id: str) -> None:
        self.write(lambda conn: conn.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", (now(), run_id)))

    def finish(self, run_id: str, fields: dict[str, Any], curves: list[dict[str, Any]]) -> None:
        """Record a run's outcome and its eval curve in one transaction (a reader never sees half of it)."""
        fields = {**fields, "updated_at": now(), "finished_at": now()}
        unknown = set(fields) - set(RUN_NAMES)
        if unknown:
            raise KeyError(f"not registry columns: {sorted(unknown)}")

        def record(conn):
            sets = ", ".join(f"{k} = ?" for k in fields)
            conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*fields.values(), run_id])
            conn.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            for point in curves:
                row = {"run_id": run_id, **{k: point.get(k) for k in CURVE_NAMES if k != "run_id"}}
                conn.execute(f"INSERT OR REPLACE INTO curves ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))

        self.write(record)

    # -- reading -------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        return self.read(lambda conn: [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY rowid")])

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.read(lambda conn: conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())
        return dict(row) if row else None

    def curves(self) -> list[dict[str, Any]]:
        return self.read(lambda conn: [dict(r) for r in conn.execute("SELECT * FROM curves ORDER BY run_id, step")])
