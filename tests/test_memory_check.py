"""The will-it-fit check asks only this process's devices for their memory (issue #18): in a multi-process run
another host's devices cannot be queried from here. Where devices do not report their memory (CPU, a platform
without memory_stats) it skips cleanly instead of failing the run."""
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from scaling.config.model import MeshConfig, ModelConfig
from scaling.errors import UserError
from scaling.parallel import make_mesh
from scaling.train.memory import available_bytes, check_fits, local_memory_limits

GiB = 2**30


class Accelerator:
    """What a GPU looks like to the check (none runs here): its host and what memory_stats reports."""

    platform, device_kind = "gpu", "NVIDIA H100"

    def __init__(self, process_index: int, stats=None, fails: bool = False):
        self.process_index, self.stats, self.fails = process_index, stats, fails

    def memory_stats(self):
        if self.fails:  # what jaxlib does for a device of another process, or a backend without the query
            raise RuntimeError("memory_stats is not available for this device")
        return self.stats


def test_on_the_eight_device_cpu_mesh_host_memory_is_what_counts():
    mesh = make_mesh(MeshConfig(data=2, fsdp=4))
    devices = list(mesh.devices.flat)
    assert len(devices) == 8 and all(d.process_index == jax.process_index() for d in devices)
    assert local_memory_limits(devices) is None  # CPU devices report no allocator limit
    have, where = available_bytes(devices)
    assert where == "host memory" and have > GiB
    small = ModelConfig(D=32, L=1, H=2, F=64)
    check_fits(small, 10_000, mesh)
    with pytest.raises(UserError, match="more than the .* GiB of host memory"):
        check_fits(small, have // 4, mesh)  # 4 float32 copies of have/4 parameters: 4x the memory


def test_only_this_hosts_devices_are_asked_and_the_total_covers_the_whole_mesh():
    mine = [Accelerator(0, {"bytes_limit": 80 * GiB}) for _ in range(2)]
    theirs = [Accelerator(1, fails=True) for _ in range(2)]  # asking them would raise
    assert local_memory_limits(mine + theirs) == [80 * GiB, 80 * GiB]
    assert available_bytes(mine + theirs) == (320 * GiB, "4 NVIDIA H100 device(s)")


@pytest.mark.parametrize("device", [Accelerator(0, fails=True), Accelerator(0, None), Accelerator(0, {})],
                         ids=["raises", "none", "no-limit"])
def test_devices_without_memory_stats_skip_the_check(device):
    assert local_memory_limits([device]) is None and available_bytes([device]) is None
    mesh = SimpleNamespace(devices=np.array([device], dtype=object))  # check_fits reads only the mesh's devices
    check_fits(ModelConfig(D=32, L=1, H=2, F=64), 10**15, mesh)  # 16 PB of state, and nothing to compare it with
