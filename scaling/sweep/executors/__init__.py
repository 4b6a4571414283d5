"""Executors run `RunTask`s: `local` (subprocesses on this machine) and `ray` (tasks on a Ray cluster).

Both expose the same small interface to the scheduler: `capacity` (runs at once), `submit(task)`
returning a handle, `wait(handles, timeout)` returning the (handle, status) pairs that finished,
and `close()`.
"""
from __future__ import annotations

from pathlib import Path

from scaling.errors import UserError

EXECUTORS = ("local", "ray")


def make_executor(name: str, max_parallel: int, address: str | None = None, gpus_per_run: float = 0.0,
                  cpus_per_run: float = 1.0, process_per_run: bool = False, log_dir: Path = Path("logs")):
    if max_parallel < 1:
        raise UserError(f"--max-parallel: must be at least 1, got {max_parallel}")
    if name == "local":
        from scaling.sweep.executors.local import LocalExecutor

        return LocalExecutor(max_parallel, log_dir, process_per_run=process_per_run)
    if name == "ray":
        from scaling.sweep.executors.ray_tasks import RayExecutor

        return RayExecutor(max_parallel, address=address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)
    raise UserError(f"--executor: unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
