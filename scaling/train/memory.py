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


def available_bytes(devices) -> tuple[int, str]:
    """Memory of the devices together: their allocator limits on accelerators, host RAM on CPU (the
    simulated CPU devices all share it)."""
    limits = [(d.memory_stats() or {}).get("bytes_limit") for d in devices if d.platform != "cpu"]
    if limits and all(limits):
        return int(sum(limits)), f"{len(limits)} {devices[0].device_kind} device(s)"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def check_fits(model_cfg, n_params: int, mesh) -> None:
    needed = state_bytes(model_cfg, n_params)
    have, where = available_bytes(list(mesh.devices.flat) if mesh is not None else jax.local_devices())
    if needed > have:
        raise UserError(f"model: {n_params:.3g} parameters need at least {needed / 2**30:,.1f} GiB to train "
                        f"(parameters, gradients and Adam state in {model_cfg.param_dtype}), more than the "
                        f"{have / 2**30:,.1f} GiB of {where}; use a smaller model (D, L, F) or more devices")
