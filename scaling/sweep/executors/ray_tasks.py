"""Ray executor: each run is a Ray task that runs the same trainer subprocess as the local executor.

Connects to an existing cluster (`--address`) or starts a local one sized for the sweep. Only this
process, the driver, writes the registry: SQLite's WAL needs memory shared on one host, so it cannot
live on the network filesystem a cluster's nodes share. A task trains its run in the run directory
the sweep names (the sweep directory must be on storage every node mounts at the same path) and
returns its outcome; the driver marks the run running when it submits it, heartbeats it while Ray
holds the task, and records the outcome when it arrives.
"""
from __future__ import annotations

import os
import socket
import time

from scaling.errors import UserError
from scaling.sweep.executors.task import HEARTBEAT_S, RunResult, RunTask, train_run


def _train_on_node(task: RunTask) -> RunResult:
    import ray

    return train_run(task, where=f"ray node {ray.get_runtime_context().get_node_id()}")


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
                # A cluster of our own ("local"), even where `ray start` left an address for plain init()
                # to join. The object store only carries small task descriptions: keep its shared memory small.
                ray.init(address="local", num_cpus=max(1, int(max_parallel * cpus_per_run + 0.999)),
                         include_dashboard=False, object_store_memory=256 * 1024**2,
                         log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        # No retries by Ray: a run whose node is lost is recorded as interrupted and resumes on the next
        # submit, counted as a new attempt, rather than restarted behind the registry's back.
        self._remote = ray.remote(_train_on_node).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                                          max_retries=0)
        # Trainers behave the same wherever they run: forward this process's JAX/XLA settings.
        self._env = {k: v for k, v in os.environ.items() if k.startswith(("JAX_", "XLA_"))}
        self._in_flight: dict = {}  # ObjectRef -> RunTask
        self._beat_at = time.monotonic()

    def submit(self, task: RunTask):
        from dataclasses import replace

        # The row names the driver as the run's watcher: if it dies, Ray ends the job's tasks with it,
        # and `sweep status` on this host reads the run as interrupted.
        task.registry.mark_running(task.run_id, os.getpid(), socket.gethostname())
        ref = self._remote.remote(replace(task, env={**self._env, **task.env}))
        self._in_flight[ref] = task
        return ref

    def wait(self, handles: list, timeout: float) -> list[tuple[object, str]]:
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too
            ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
        finished = [(ref, self._record(ref)) for ref in ready]
        if time.monotonic() - self._beat_at >= HEARTBEAT_S:  # Ray still holds the others: they are alive
            self._beat_at = time.monotonic()
            for task in self._in_flight.values():
                task.registry.heartbeat(task.run_id)
        return finished

    def _record(self, ref) -> str:
        task = self._in_flight.pop(ref)
        try:
            result: RunResult = self._ray.get(ref)
        except Exception as e:
            fields = _lost(e)
            task.registry.update(task.run_id, pid=None, **fields)
            return fields["status"]
        task.registry.finish(task.run_id, {**result.fields, "host": result.host}, result.curves)
        return result.status

    def close(self, interrupted: bool = False) -> None:
        # Cancelling kills the task's worker process; its trainer follows (it dies with its parent).
        for ref, task in list(self._in_flight.items()) if interrupted else []:
            self._ray.cancel(ref, force=True)
            task.registry.update(task.run_id, pid=None, status="pending",
                                 error="interrupted (the submitter stopped); resumes on the next submit")
        self._in_flight.clear()
        if self._started_cluster:
            self._ray.shutdown()


def _lost(error: Exception) -> dict[str, str]:
    """Registry fields for a task that ended without an outcome. A lost node or worker killed the run from
    outside: it is resumable, like a trainer stopped by SIGTERM. Anything else (an exception in the task,
    Ray's memory monitor killing it, a runtime environment that cannot be set up) would happen again."""
    from ray import exceptions as rx

    first_sentence = next((line for line in str(error).splitlines() if line.strip()), "").split(". ")[0][:200]
    reason = f"{type(error).__name__}: {first_sentence}"
    if isinstance(error, (rx.WorkerCrashedError, rx.NodeDiedError, rx.LocalRayletDiedError, rx.ObjectLostError,
                          rx.TaskCancelledError)):
        return {"status": "pending", "error": f"interrupted: Ray lost its node or worker ({reason}); "
                                              "resumes on the next submit"}
    return {"status": "failed", "error": f"the Ray task failed ({reason})"}
