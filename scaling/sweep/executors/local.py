"""Local executor: up to K runs at once on this machine, each slot a thread of this process.

By default each slot keeps one persistent worker process (executors.worker) that runs its runs one
after another, so a sweep of small runs pays interpreter, JAX and compile-cache start-up once per slot
instead of once per run; `process_per_run` gives every run a fresh `scaling` process instead. A worker
keeps the compiled steps of the shapes it ran (train/loop.py), so a run goes to an idle worker that already
ran its shape, and the scheduler asks `affinity` which run to start next (scheduler.py).
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from scaling.sweep.executors.task import RunTask, execute_run, terminate_all
from scaling.sweep.executors.worker import Worker


class LocalExecutor:
    def __init__(self, max_parallel: int, log_dir: Path, process_per_run: bool = False):
        self.capacity = max_parallel
        self.process_per_run = process_per_run
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="sweep-run")
        self._worker_log = Path(log_dir) / "workers.log"  # what workers print between runs
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._idle: list[Worker] = []  # oldest first
        for _ in range(0 if process_per_run else max_parallel):  # they import JAX while the sweep starts
            self._idle.append(self._new_worker())

    def _new_worker(self) -> Worker:
        worker = Worker(self._worker_log)
        self._workers.append(worker)
        return worker

    def affinity(self, shape_key: str) -> int:
        """How well a run of this shape fits the workers now: 0 an idle worker has its steps compiled, 1 no
        worker has (a fresh one compiles them), 2 only busy workers have (another would compile them again)."""
        with self._lock:
            holders = [w for w in self._workers if w.alive() and shape_key in w.shapes]
            return 0 if any(w in self._idle for w in holders) else 2 if holders else 1

    def submit(self, task: RunTask) -> Future:
        if self.process_per_run:
            return self._pool.submit(execute_run, task)
        with self._lock:  # chosen now, so the scheduler's next `affinity` call already sees the shape taken
            worker = self._take_idle(task.shape_key) or self._new_worker()
            worker.shapes.add(task.shape_key)
        return self._pool.submit(self._execute, task, worker)

    def _execute(self, task: RunTask, worker: Worker) -> str:
        try:
            return execute_run(task, worker)
        finally:
            with self._lock:
                self._idle.append(worker)

    def _take_idle(self, shape_key: str) -> Worker | None:
        """The idle worker that ran this shape before, else one that ran none (so no shape is compiled twice
        while another worker could take it), else the one idle longest; None if no live worker is idle
        (a worker retires after a failed run)."""
        self._idle = [w for w in self._idle if w.alive()]
        if not self._idle:
            return None
        best = min(self._idle, key=lambda w: (shape_key not in w.shapes, bool(w.shapes)))  # first of equals
        self._idle.remove(best)
        return best

    def wait(self, handles: list[Future], timeout: float) -> list[tuple[Future, str]]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [(f, _status(f)) for f in done]

    def close(self, interrupted: bool = False) -> None:
        # Queued runs are dropped; threads already watching a run wait for it and record it.
        if interrupted:
            self._pool.shutdown(wait=False, cancel_futures=True)
            terminate_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:  # all are told first, so they exit together
            worker.retire()
        for worker in self._workers:
            worker.close()


def _status(future: Future) -> str:
    error = future.exception()
    return "failed" if error is not None else future.result()
