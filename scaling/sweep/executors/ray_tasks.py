"""Ray executor: each run is a Ray task that runs the same trainer subprocess as the local executor.

Connects to an existing cluster (`--address`) or starts a local one sized for the sweep. Tasks
record their own registry rows, so the sweep directory must be on storage every node can reach.
"""
from __future__ import annotations

import os

from scaling.errors import UserError
from scaling.sweep.executors.task import RunTask, execute_run


def _run_on_worker(task: RunTask) -> str:
    return execute_run(task)


class RayExecutor:
    def __init__(self, max_parallel: int, address: str | None = None, gpus_per_run: float = 0.0,
                 cpus_per_run: float = 1.0):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray: ray is not installed (pip install 'scaling[ray]')") from None
        self._ray = ray
        self.capacity = max_parallel
        self._started_cluster = not ray.is_initialized() and address is None
        if not ray.is_initialized():
            if address is None:
                # The object store only carries small task descriptions: keep its shared memory small.
                ray.init(num_cpus=max(1, int(max_parallel * cpus_per_run + 0.999)), include_dashboard=False,
                         object_store_memory=256 * 1024**2,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        self._remote = ray.remote(_run_on_worker).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                                          max_retries=0)
        # Trainers behave the same wherever they run: forward this process's JAX/XLA settings.
        self._submitted: list = []
        self._env = {k: v for k, v in os.environ.items() if k.startswith(("JAX_", "XLA_"))}

    def submit(self, task: RunTask):
        from dataclasses import replace

        ref = self._remote.remote(replace(task, env={**self._env, **task.env}))
        self._submitted.append(ref)
        return ref

    def wait(self, handles: list, timeout: float) -> list[tuple[object, str]]:
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too
            ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
        return [(ref, self._status(ref)) for ref in ready]

    def _status(self, ref) -> str:
        try:
            return self._ray.get(ref)
        except Exception:  # a task that crashed outside the trainer (worker died, registry unreachable)
            return "failed"

    def close(self, interrupted: bool = False) -> None:
        # Cancelling kills the worker; its trainer follows (it dies with its parent).
        for ref in self._submitted if interrupted else []:
            self._ray.cancel(ref, force=True)
        if self._started_cluster:
            self._ray.shutdown()
