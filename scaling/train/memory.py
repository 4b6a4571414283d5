"""Will the model fit? A lower bound on training memory, checked before anything is compiled.

Without it, a size that cannot fit aborts inside the XLA compiler (SIGABRT and a C++ stack) or dies
with a RESOURCE_EXHAUSTED traceback, after the run directory was created. The bound counts only what
training certainly holds at once: parameters, their gradients and Adam's two moments (four copies
in param_dtype); activations come on top, so a model refused here could never have run.
"""
from __future__ import annotations

import os

import jax

from scaling.errors import UserError

BYTES = {"float32": 4, "bfloat16": 2}
COPIES = 4  # params + grads + Adam mu + Adam nu


def state_bytes(model_cfg, n_params: int) -> int:
    return COPIES * n_params * BYTES[model_cfg.param_dtype]


def local_memory_limits(devices) -> list[int] | None:
    """The allocator limit (bytes) of each of `devices` this process holds, or None where one does not report
    it (CPU devices, a platform without memory_stats). Other hosts' devices are never asked: in a multi-process
    run their memory_stats cannot be read from here."""
    limits = []
    for d in devices:
        if d.process_index != jax.process_index():
            continue
        try:
            stats = d.memory_stats()
        except Exception:  # jaxlib raises its own runtime errors where a backend does not implement it
            return None
        if not (stats or {}).get("bytes_limit"):
            return None
        limits.append(int(stats["bytes_limit"]))
    return limits or None


def available_bytes(devices) -> tuple[int, str] | None:
    """Memory of the devices together: their allocator limits on accelerators (this host's devices, scaled to
    all of them: the hosts of one mesh are alike), host RAM on CPU (the simulated CPU devices all share it).
    None for accelerators that do not report their memory: there is nothing to check against."""
    if all(d.platform == "cpu" for d in devices):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"
    limits = local_memory_limits(devices)
    if limits is None:
        return None
    return sum(limits) * len(devices) // len(limits), f"{len(devices)} {devices[0].device_kind} device(s)"


def check_fits(model_cfg, n_params: int, mesh) -> None:
    needed = state_bytes(model_cfg, n_params)
    available = available_bytes(list(mesh.devices.flat) if mesh is not None else jax.local_devices())
    if available is None:
        return
    have, where = available
    if needed > have:
        raise UserError(f"model: {n_params:.3g} parameters need at least {needed / 2**30:,.1f} GiB to train "
                        f"(parameters, gradients and Adam state in {model_cfg.param_dtype}), more than the "
                        f"{have / 2**30:,.1f} GiB of {where}; use a smaller model (D, L, F) or more devices")
