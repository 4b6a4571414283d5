"""One run, start to finish: launch its kind's command (`scaling train`, `scaling rl`) on it, keep its registry row
alive, record the result.

Shared by every executor (a local thread or a Ray task calls `execute_run`), so a run is recorded
the same way wherever it ran: by the process that watched it, in its own short transactions.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.sweep.registry import Registry

HEARTBEAT_S = 30.0
_LIVE: set[subprocess.Popen] = set()  # trainers started by this process, for terminate_all()
# Exit statuses that mean "stopped from outside" (Ctrl-C, SIGTERM): the run is resumable, not failed.
INTERRUPTED = {-signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}
SUMMARY_FIELDS = ("loss", "eval_loss", "eval_bpb", "accuracy", "init_flops", "wall_s", "device", "tokens", "steps",
                  "flops_6n", "flops_full", "n_params", "n_params_nonembedding", "n_params_active",
                  "n_params_active_nonembedding")


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs, picklable for Ray. Paths other than sweep_dir are relative to it."""

    run_id: str
    name: str
    command: str  # the scaling subcommand: "train" (pretrain) or "rl"
    sweep_dir: str
    config_path: str
    run_dir: str
    log_path: str
    flop_convention: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def registry(self) -> Registry:
        return Registry(Path(self.sweep_dir) / "registry.sqlite")


def execute_run(task: RunTask) -> str:
    """Train one run to its end; returns the status recorded ('done', 'diverged', 'failed', or 'pending'
    when it was interrupted from outside and will resume on the next submit)."""
    registry = task.registry
    _wait_for_previous_attempt(registry.run(task.run_id), task)
    sweep_dir = Path(task.sweep_dir)
    log_file = sweep_dir / task.log_path
    log_file.parent.mkdir(parents=True, exist_ok=True)
    trainer = [sys.executable, "-m", "scaling", task.command, task.config_path, "--out", task.run_dir]
    command = [sys.executable, "-m", "scaling.sweep.executors.child", str(os.getpid()), "--", *trainer]
    started = time.time()
    with open(log_file, "ab") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {socket.gethostname()}: {' '.join(trainer)}\n".encode())
        log.flush()
        proc = subprocess.Popen(command, cwd=sweep_dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **task.env})
        _LIVE.add(proc)
        try:
            registry.mark_running(task.run_id, proc.pid, socket.gethostname())
            while True:
                try:
                    proc.wait(timeout=HEARTBEAT_S)
                    break
                except subprocess.TimeoutExpired:
                    registry.heartbeat(task.run_id)
        finally:
            _LIVE.discard(proc)
    fields, curves = outcome(task, proc.returncode, time.time() - started)
    registry.finish(task.run_id, fields, curves)
    return fields["status"]


def terminate_all() -> None:
    """SIGTERM every trainer this process started (the submitter was interrupted): they stop, and
    their watchers record them as interrupted, to be resumed by the next submit."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.terminate()


def outcome(task: RunTask, returncode: int, wall_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Registry fields and eval curve from the trainer's exit status and RUN_DIR/summary.json."""
    summary_path = Path(task.sweep_dir) / task.run_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        summary = {}
    fields: dict[str, Any] = {k: summary[k] for k in SUMMARY_FIELDS if summary.get(k) is not None}
    fields.setdefault("wall_s", wall_s)
    if summary.get(f"flops_{task.flop_convention}") is not None:
        fields["flops"] = summary[f"flops_{task.flop_convention}"]
    fields["pid"] = None
    status = summary.get("status")
    if returncode == 0 and status == "done":
        fields.update(status="done", error=None)
    elif status == "diverged":
        fields.update(status="diverged", error=summary.get("reason") or "diverged")
    elif returncode in INTERRUPTED:
        fields.update(status="pending", error=f"interrupted (exit {returncode}); resumes on the next submit")
    else:
        reason = summary.get("reason") if status == "failed" else None
        reason = reason or _last_line(Path(task.sweep_dir) / task.log_path)
        fields.update(status="failed", error=f"exit {returncode}: {reason}")
    curves = [{"step": p.get("step"), "tokens": p.get("tokens"), "flops": p.get(f"flops_{task.flop_convention}"),
               "flops_6n": p.get("flops_6n"), "flops_full": p.get("flops_full"), "eval_loss": p.get("eval_loss"),
               "eval_bpb": p.get("eval_bpb"), "accuracy": p.get("accuracy")}
              for p in summary.get("eval_history") or [] if p.get("step") is not None
              # An RL run's evaluation before its first step sits at 0 RL FLOPs, off every log-compute
              # axis and fit; its accuracy stays in summary.json as initial_accuracy.
              and not (summary.get("kind") == "rlvr" and not p.get("flops_full"))]
    return fields, curves


def _last_line(log_file: Path) -> str:
    try:
        with open(log_file, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:500] if lines else "no output"


def _wait_for_previous_attempt(row: dict[str, Any] | None, task: RunTask) -> None:
    """A trainer from a killed submitter may still be shutting down (it gets SIGTERM when its parent
    dies); starting a second one on the same run directory would corrupt it, so wait it out."""
    if not row or row.get("status") != "running" or not row.get("pid") or row.get("host") != socket.gethostname():
        return
    while _is_trainer_of(row["pid"], task):
        time.sleep(0.5)


def _is_trainer_of(pid: int, task: RunTask) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return task.name.encode() in cmdline  # the run's name holds its id, so a recycled pid will not match
