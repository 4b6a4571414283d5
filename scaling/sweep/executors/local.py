"""Local executor: up to K runs at once on this machine, each slot a thread of this process.

By default each slot keeps one persistent worker process (executors.worker) that runs its runs one
after another, so a sweep of small runs pays interpreter, JAX and compile-cache start-up once per slot
instead of once per run; `process_per_run` gives every run a fresh `scaling` process instead.
"""
from __future__ import annotations

import queue
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
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        for _ in range(0 if process_per_run else max_parallel):  # they import JAX while the sweep starts
            self._idle.put(self._new_worker())

    def _new_worker(self) -> Worker:
        worker = Worker(self._worker_log)
        self._workers.append(worker)
        return worker

    def submit(self, task: RunTask) -> Future:
        return self._pool.submit(self._execute, task)

    def _execute(self, task: RunTask) -> str:
        if self.process_per_run:
            return execute_run(task)
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = None
        if worker is None or not worker.alive():
            with self._lock:
                worker = self._new_worker()
        try:
            return execute_run(task, worker)
        finally:
            self._idle.put(worker)

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
