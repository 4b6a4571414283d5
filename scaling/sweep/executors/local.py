"""Local executor: up to K trainer subprocesses at once, each watched by a thread of this process."""
from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from scaling.sweep.executors.task import RunTask, execute_run, terminate_all


class LocalExecutor:
    def __init__(self, max_parallel: int):
        self.capacity = max_parallel
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="sweep-run")

    def submit(self, task: RunTask) -> Future:
        return self._pool.submit(execute_run, task)

    def wait(self, handles: list[Future], timeout: float) -> list[tuple[Future, str]]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [(f, _status(f)) for f in done]

    def close(self, interrupted: bool = False) -> None:
        # Queued runs are dropped; threads already watching a trainer wait for it and record it.
        if interrupted:
            self._pool.shutdown(wait=False, cancel_futures=True)
            terminate_all()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _status(future: Future) -> str:
    error = future.exception()
    return "failed" if error is not None else future.result()
