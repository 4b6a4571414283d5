"""One run, start to finish: launch its kind's command (`scaling train`, `scaling rl`) on it, watch it, and
compute its outcome from its exit status and summary.json.

`train_run` does the training and returns the outcome without touching the registry, so it can run where
the registry is out of reach (a Ray task on another node: the driver records what it returns).
`execute_run` wraps it for the local executor, which runs in the submitting process and so records the
run itself, in its own short transactions: running, heartbeats while the trainer lives, the outcome.
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
from typing import Any, Callable

from scaling.locks import RUN_DIR_LOCK, DirectoryLock
from scaling.sweep.executors.worker import Worker
from scaling.sweep.registry import Registry

HEARTBEAT_S = 30.0
_LIVE: set = set()  # trainers and workers running a run for this process, for terminate_all()
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
    shape_key: str = ""  # runs with equal keys reuse one worker's compiled steps (PlannedRun.shape_key)

    @property
    def registry(self) -> Registry:
        return Registry(Path(self.sweep_dir) / "registry.sqlite")


@dataclass(frozen=True)
class RunResult:
    """What a run's watcher learned: registry fields and eval curve (`outcome`), and where it trained."""

    fields: dict[str, Any]
    curves: list[dict[str, Any]]
    host: str
    pid: int

    @property
    def status(self) -> str:
        return self.fields["status"]


def train_run(task: RunTask, worker: Worker | None = None, where: str | None = None,
              started: Callable[[int, str], None] | None = None,
              alive: Callable[[], None] | None = None) -> RunResult:
    """Train one run to its end, in a fresh process or on `worker`. `started(pid, host)` is called once the
    trainer is launched and `alive()` every HEARTBEAT_S while it runs; `where` names the process in the log."""
    _wait_for_previous_attempt(task)
    sweep_dir = Path(task.sweep_dir)
    log_file = sweep_dir / task.log_path
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [task.command, task.config_path, "--out", task.run_dir]
    where = where or (f"worker {worker.pid}" if worker else "own process")
    host = socket.gethostname()
    with open(log_file, "ab") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {host} ({where}): "
                  f"{sys.executable} -m scaling {' '.join(argv)}\n".encode())
    began = time.time()
    if worker is None:
        trainer = _Trainer([sys.executable, "-m", "scaling", *argv], sweep_dir, log_file, task.env)
    else:
        worker.start(argv, cwd=str(sweep_dir), log_path=str(log_file.resolve()))
        trainer = worker
    _LIVE.add(trainer)
    try:
        if started:
            started(trainer.pid, host)
        while (returncode := trainer.wait(HEARTBEAT_S)) is None:
            if alive:
                alive()
    finally:
        _LIVE.discard(trainer)
    fields, curves = outcome(task, returncode, time.time() - began)
    return RunResult(fields, curves, host, trainer.pid)


def execute_run(task: RunTask, worker: Worker | None = None) -> str:
    """Train one run and record it in the registry; returns the status recorded ('done', 'diverged', 'failed',
    or 'pending' when it was interrupted from outside and will resume on the next submit)."""
    registry = task.registry
    result = train_run(task, worker, started=lambda pid, host: registry.mark_running(task.run_id, pid, host),
                       alive=lambda: registry.heartbeat(task.run_id))
    registry.finish(task.run_id, result.fields, result.curves)
    return result.status


class _Trainer:
    """One run in a process of its own, which dies with this one (executors.child)."""

    def __init__(self, trainer: list[str], cwd: Path, log_file: Path, env: dict[str, str]):
        command = [sys.executable, "-m", "scaling.sweep.executors.child", str(os.getpid()), "--", *trainer]
        with open(log_file, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env={**os.environ, **env})
        self.pid = self.proc.pid

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()


def terminate_all() -> None:
    """SIGTERM every trainer and worker this process started (the submitter was interrupted): they stop,
    and their watchers record the runs as interrupted, to be resumed by the next submit."""
    for trainer in list(_LIVE):
        trainer.terminate()


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


def _wait_for_previous_attempt(task: RunTask) -> None:
    """A trainer from a killed submitter may still be shutting down (it gets SIGTERM when its parent
    dies) and holds the run directory's writer lock until it has; a second one started now would be
    refused the directory, so wait it out."""
    lock = DirectoryLock(Path(task.sweep_dir) / task.run_dir, RUN_DIR_LOCK, busy="")
    while lock.held_elsewhere():
        time.sleep(0.5)
