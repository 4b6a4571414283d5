"""Multi-process runs: starting `jax.distributed`, and the few points where the processes must agree.

A run that spans hosts is the same command started on every host (one JAX process each; tests start two on
one machine). Each process builds the same mesh over all processes' devices and feeds only its own rows of
every batch; process 0 alone writes the run directory. Whatever process 0 refuses (a run directory that
holds another run, a lock another job holds) must stop every process with the same message, not leave the
others waiting in their first collective until the coordinator's heartbeat timeout.
"""
from __future__ import annotations

import json
import os
from typing import Callable, TypeVar

import jax

from scaling.errors import UserError

T = TypeVar("T")
_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
_calls = [0]  # on_primary calls so far: every process makes the same ones, in the same order


def maybe_initialize_distributed() -> bool:
    """Multi-host start: `jax.distributed.initialize()` when a cluster environment is present.

    JAX auto-detects SLURM, Open MPI, Cloud TPU and Kubernetes (JobSet) environments; we also honour an
    explicit JAX_COORDINATOR_ADDRESS (host:port of process 0) / JAX_NUM_PROCESSES / JAX_PROCESS_ID, the
    way to start one run by hand on several hosts or as several processes on one. Returns True if initialised.
    On CPU the cross-process collectives are gloo's (jax_cpu_collectives_implementation, JAX's default).
    """
    explicit = os.environ.get("JAX_COORDINATOR_ADDRESS")
    detected = any(k in os.environ for k in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"))
    if not (explicit or detected):
        return False
    if jax.distributed.is_initialized():  # a sweep worker's second run in the same process
        return True
    if explicit:
        count, index = _env_int("JAX_NUM_PROCESSES", 1), _env_int("JAX_PROCESS_ID", 0)
        if index >= count:
            raise UserError(f"JAX_PROCESS_ID: {index} is not below JAX_NUM_PROCESSES={count}")
        jax.distributed.initialize(coordinator_address=explicit, num_processes=count, process_id=index)
    else:
        jax.distributed.initialize()
    return True


def _env_int(name: str, minimum: int) -> int:
    value = os.environ.get(name)
    if value is None:
        raise UserError(f"{name}: not set, but JAX_COORDINATOR_ADDRESS is (a multi-process run needs all of {_ENV})")
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise UserError(f"{name}: {value!r} is not an integer >= {minimum}")
    return number


def is_primary() -> bool:
    """The process that writes run files, registry rows and progress: process 0."""
    return jax.process_index() == 0


def on_primary(fn: Callable[[], T], timeout_s: int = 3600) -> T | None:
    """`fn()` on process 0 only; every process raises if it failed there. Returns its result on process 0,
    None elsewhere. A UserError keeps its one line on every process (each exits 2 with it). The outcome goes
    through the coordination service's key-value store, which waits as long as process 0 takes."""
    if jax.process_count() == 1:
        return fn()
    from orbax.checkpoint import multihost

    client = multihost.get_jax_distributed_client()
    _calls[0] += 1
    key = f"scaling:on_primary:{_calls[0]}"
    if not is_primary():
        outcome = json.loads(client.blocking_key_value_get(key, timeout_s * 1000))
        if outcome["failure"]:
            failure = outcome["failure"]
            raise UserError(failure) if outcome["user_error"] else RuntimeError(f"process 0 failed: {failure}")
        return None
    try:
        result = fn()
    except UserError as e:
        client.key_value_set(key, json.dumps({"failure": str(e), "user_error": True}))
        raise
    except BaseException as e:
        client.key_value_set(key, json.dumps({"failure": f"{type(e).__name__}: {e}", "user_error": False}))
        raise
    client.key_value_set(key, json.dumps({"failure": "", "user_error": False}))
    return result


def barrier(name: str, timeout_s: int = 3600) -> None:
    """Every process waits here until all have arrived (no-op with one process). The coordination service's
    barrier, not a collective: gloo gives a process 30 s to join another's first collective of a program."""
    if jax.process_count() > 1:
        from orbax.checkpoint import multihost

        multihost.get_barrier_sync_fn()(key=f"scaling:{name}", timeout_ms=timeout_s * 1000)


def compiled_together(jitted: Callable, name: str) -> Callable:
    """`jitted`, compiled at its first call by every process, which then wait for each other before running it.

    A process that finds a step in the persistent compilation cache would otherwise start it while another is
    still compiling (on CPU JAX's cache keys differ between processes and only process 0 writes, so the others
    always compile), and gloo aborts the job once that wait passes 30 s (measured: a process 35 s late
    killed the run). Single-process: `jitted` itself."""
    if jax.process_count() == 1:
        return jitted
    compiled = None

    def call(*args):
        nonlocal compiled
        if compiled is None:
            compiled = jitted.lower(*args).compile()
            barrier(f"compiled {name}")
        return compiled(*args)

    return call


def check_batch_split(sharding, batch_size: int) -> None:
    """Process i reads rows [i*B/P, (i+1)*B/P) of every global batch (data/pipeline.py); refuse a mesh whose
    batch sharding puts other rows on its devices (e.g. tensor parallelism across hosts), which would feed the
    wrong rows, or too few, to `jax.make_array_from_process_local_data`."""
    count = jax.process_count()
    if count == 1:
        return
    rows: set[int] = set()
    for index in sharding.addressable_devices_indices_map((batch_size, 1)).values():
        rows.update(range(batch_size)[index[0]])
    share = batch_size // count
    first = jax.process_index() * share
    if rows != set(range(first, first + share)):
        raise UserError(f"mesh: process {jax.process_index()}'s devices hold {len(rows)} of the {batch_size} batch "
                        f"rows, not its own {share} (rows {first}..{first + share - 1}); the batch axes (data, "
                        f"fsdp, expert) must split the {count} processes, tensor parallelism stay within one")
