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
