"""Live progress of a sweep: a rich table redrawn in place on a terminal, plain lines otherwise
(CI logs, nohup), with done / running / failed counts and an ETA from the runs finished so far."""
from __future__ import annotations

import sys
import time

from scaling.sweep.plan import PlannedRun


def format_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _result(row: dict) -> str:
    """The number the fits use: held-out loss (pretraining) or held-out accuracy (RL); the last training
    batch's loss only when a run has no evaluation."""
    for key, label in (("eval_loss", "eval loss"), ("accuracy", "accuracy"), ("loss", "train loss")):
        if row.get(key) is not None:
            return f"{label} {row[key]:.4f}"
    return ""


class Progress:
    def __init__(self, runs: list[PlannedRun], statuses: dict[str, str], capacity: int, live: bool | None = None):
        self.runs = {r.run_id: r for r in runs}
        self.statuses = statuses
        self.capacity = capacity
        self.running: dict[str, float] = {}
        self._flops_done = self._seconds_done = 0.0
        self._live = None
        if live if live is not None else sys.stdout.isatty():
            from rich.live import Live

            # Transient: the table of running runs disappears at the end; finished runs stay as lines above it.
            self._live = Live(self._table(), refresh_per_second=2, transient=True)
            self._live.start()

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "running": 0, "failed": 0, "diverged": 0, "pending": 0}
        for s in self.statuses.values():
            out[s] = out.get(s, 0) + 1
        return out

    def eta(self) -> float | None:
        """Remaining FLOPs at the FLOP rate of the runs finished this session, spread over the slots."""
        if not self._flops_done:
            return None
        remaining = sum(r.flops_to_train for i, r in self.runs.items()
                        if self.statuses.get(i) in ("pending", "running"))
        return remaining * self._seconds_done / self._flops_done / self.capacity

    def line(self) -> str:
        c = self.counts()
        return (f"{c['done']}/{len(self.statuses)} done, {c['running']} running, {c['failed']} failed, "
                f"{c['diverged']} diverged, ETA {format_seconds(self.eta())}")

    def started(self, run: PlannedRun) -> None:
        self.running[run.run_id] = time.time()
        if not self._live:
            print(f"start  {run.name}  (N={run.n:,} D={run.tokens:,} steps={run.trained_steps})", flush=True)

    def finished(self, run: PlannedRun, status: str, row: dict | None) -> None:
        began = self.running.pop(run.run_id, None)
        if began is not None and status == "done":
            self._seconds_done += time.time() - began
            self._flops_done += run.flops_to_train
        detail = _result(row or {})
        if status != "done" and row and row.get("error"):
            detail = row["error"]
        if self._live:
            self._live.console.print(f"{status:<6} {run.name}  {detail}", markup=False, highlight=False)
        else:
            print(f"{status:<6} {run.name}  {detail}  [{self.line()}]", flush=True)

    def refresh(self) -> None:
        if self._live:
            self._live.update(self._table())

    def close(self) -> None:
        if self._live:
            self._live.update(self._table())
            self._live.stop()

    def _table(self):
        from rich.table import Table

        table = Table(title=self.line(), title_justify="left")
        for col in ("running", "N", "D", "steps", "elapsed"):
            table.add_column(col, justify="left" if col == "running" else "right")
        now = time.time()
        for run_id, began in self.running.items():
            r = self.runs[run_id]
            table.add_row(r.name, f"{r.n:,}", f"{r.tokens:,}", str(r.trained_steps), format_seconds(now - began))
        return table
