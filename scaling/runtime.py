"""Process-wide JAX settings shared by every entry point (CLI commands, tests, sweep workers)."""
from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scaling"


def enable_compilation_cache(cache_dir: str | Path | None = None) -> Path:
    """JAX's persistent compilation cache under the user's cache dir.

    A sweep builds the same shapes again and again (every seed, every resume, every fork); with the
    cache a process that compiles a step another process already compiled loads it from disk instead.
    The thresholds are lowered so that even the small CPU compiles of tiny models are cached.
    """
    import jax

    path = Path(cache_dir) if cache_dir else user_cache_dir() / "jax-compilation-cache"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def cpu_compiler_options(n_devices: int = 1) -> dict[str, str] | None:
    """XLA options for the lab's compiled train and eval steps on one CPU device; None otherwise.

    XLA:CPU hands dots, reductions and elementwise ops to YNNPACK fusions. For the small models the lab
    trains on CPU (D <= 64, a few thousand tokens a step) its reduction fusions (softmax, norms, logsumexp)
    ran up to 1.6x slower than XLA's own loops, and whether one formed depended on unrelated code nearby
    (benchmarks/bench_step.py). Only dots go to YNNPACK. The maths is unchanged (summation order may differ).
    """
    import jax

    # Not on a multi-device CPU mesh: there the YNNPACK dot fusions starved the in-process collectives of
    # threads (an all-gather and an all-reduce of one step each waiting for the other device; 2 of 3 runs of
    # the 2-device resume test aborted after XLA's 40 s rendezvous timeout, 0 of 3 without this option).
    if jax.default_backend() != "cpu" or n_devices > 1:
        return None
    return {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
