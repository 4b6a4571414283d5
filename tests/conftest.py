"""Test setup: 8 simulated CPU devices so sharding tests can build real meshes.

XLA_FLAGS must be set before jax is imported anywhere, hence here at the top of conftest.
The persistent compilation cache is shared across test processes (and CI runs on the same
machine), which is what keeps the suite fast: JAX compile time dominates.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from scaling.runtime import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
