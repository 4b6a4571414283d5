"""Throughput probes: steady-state training tokens/s of a run config, without its data pipeline.

Used by `scaling sweep submit --dry-run` (wall-time estimates) and by benchmarks/bench_train.py.
"""
from __future__ import annotations

import time

import jax
import numpy as np

from scaling.config.run import RunConfig
from scaling.model import build_model
from scaling.parallel import make_mesh
from scaling.train.optim import make_optimizer
from scaling.train.step import compile_steps, data_parallel_size, init_train_state


def measure_step(cfg: RunConfig, steps: int = 3, repeats: int = 1) -> dict:
    """Compile the train step, run it `steps` times on random tokens; returns timings in seconds.

    With `repeats` > 1 the `steps` are timed that many times and the fastest mean is kept: on a shared
    machine the best of several short windows is the least disturbed by other work."""
    mesh = make_mesh(cfg.mesh)
    if (cfg.train.batch_size // cfg.train.grad_accum) % data_parallel_size(mesh):
        # The batch does not split over this process's devices (e.g. a sweep submitter that sees more
        # devices than its runs will): estimate on one device rather than fail the estimate.
        mesh = make_mesh(cfg.mesh.model_copy(update={"data": 1, "fsdp": 1, "tensor": 1, "expert": 1, "devices": 1}))
    t0 = time.perf_counter()
    model = build_model(cfg.model, mesh, seed=cfg.train.seed)
    tx, schedule = make_optimizer(cfg.optimizer, max(steps + 1, 2))
    graphdef, state, shardings = init_train_state(model, tx, mesh)
    del model
    compiled = compile_steps(cfg.model, graphdef, shardings, tx, mesh, cfg.train.grad_accum)
    lr = np.float32(schedule(0))
    rng = np.random.default_rng(0)
    shape = (cfg.train.batch_size, cfg.train.seq_len)
    batch = {"inputs": rng.integers(0, cfg.model.V, shape, dtype=np.int32),
             "targets": rng.integers(0, cfg.model.V, shape, dtype=np.int32),
             "mask": np.ones(shape, np.float32)}
    batch = jax.device_put(batch, compiled.batch_sharding)
    state, metrics = compiled.train_step(state, batch, lr)  # compile + first step
    jax.block_until_ready(metrics)
    t_compile = time.perf_counter() - t0
    step_s = float("inf")
    for _ in range(max(repeats, 1)):
        t1 = time.perf_counter()
        for _ in range(steps):
            state, metrics = compiled.train_step(state, batch, lr)
        jax.block_until_ready(metrics)
        step_s = min(step_s, (time.perf_counter() - t1) / steps)
    return {"compile_s": t_compile, "step_s": step_s, "tokens_per_s": cfg.train.batch_tokens / step_s}


def measure_tokens_per_s(cfg: RunConfig, steps: int = 3) -> float:
    return measure_step(cfg, steps)["tokens_per_s"]
