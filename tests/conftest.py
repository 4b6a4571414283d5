"""Test setup: 8 simulated CPU devices so sharding tests can build real meshes.

XLA_FLAGS must be set before jax is imported anywhere, hence here at the top of conftest.
The persistent compilation cache is shared across test processes (and CI runs on the same
machine), which is what keeps the suite fast: JAX compile time dominates.

XLA:CPU aborts the whole process ("Termination timeout ... Exiting to ensure a consistent program state")
when a simulated device waits at a collective for the others longer than XLA's default. With 8 simulated
devices on a loaded 2-core CI box a sharded decode loop got there (CI of 2026-12-03 died in the README's RL
command), so the suite lets a collective wait as long as a test may take.
"""
import os

COLLECTIVE_PATIENCE = ("--xla_cpu_collective_call_terminate_timeout_seconds=1800 "
                       "--xla_cpu_collective_timeout_seconds=1800")
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count=8 {COLLECTIVE_PATIENCE}")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from scaling.runtime import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """`scaling demo` once on the test-size sweeps of tiny_sweeps.py: its math and RL sweep dirs also
    serve the compare tests, so the suite trains them once."""
    from scaling.demo import DemoSweeps, run_demo
    from tiny_sweeps import write_demo_sweeps

    root = tmp_path_factory.mktemp("demo")
    sweeps = DemoSweeps(*write_demo_sweeps(root))
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:  # the runs are subprocesses: one device each starts faster
        mp.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
        result = run_demo(root / "out", sweeps, max_parallel=2, bootstrap=20, say=lines.append)
    return root, sweeps, result, lines
