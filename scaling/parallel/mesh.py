"""Mesh construction and the one table that maps logical axis names to mesh axes (MaxText style).

Parameters and activations carry logical names (`embed`, `mlp`, `heads`, `vocab`, `expert`, ...).
Changing the parallelism strategy means editing `LOGICAL_RULES`, not the model.

Mesh axes:
  data    pure data parallelism (parameters replicated)
  fsdp    data parallelism with parameters and optimizer state sharded over `embed` (ZeRO-3)
  tensor  Megatron-style tensor parallelism over heads / MLP width / vocab
  expert  expert parallelism for MoE weights; acts as extra data parallelism everywhere else
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from scaling.config.model import MESH_AXES, MeshConfig
from scaling.errors import UserError

BATCH_AXES = ("data", "fsdp", "expert")

LOGICAL_RULES: dict[str, str | tuple[str, ...] | None] = {
    # activations
    "batch": BATCH_AXES,
    "seq": None,
    "act_embed": None,
    "act_heads": "tensor",
    "act_mlp": "tensor",
    "act_vocab": "tensor",
    # parameters
    "layers": None,
    "sublayers": None,
    "vocab": "tensor",
    "embed": "fsdp",
    "heads": "tensor",
    "kv_heads": "tensor",
    "head_dim": None,
    "mlp": "tensor",
    "expert": "expert",
    "norm": None,
}


def logical_to_spec(names: tuple[str | None, ...] | None, shape: tuple[int, ...] | None = None,
                    mesh: Mesh | None = None) -> P:
    """Logical names -> PartitionSpec. With `shape` and `mesh`, an axis whose size the mesh axes do not
    divide is left unsharded (e.g. 2 kv-heads on tensor=4), which keeps tiny test models buildable."""
    if names is None:
        return P()
    spec = []
    used: set[str] = set()
    for i, name in enumerate(names):
        axes = LOGICAL_RULES.get(name) if name else None
        if axes is None:
            spec.append(None)
            continue
        axes = (axes,) if isinstance(axes, str) else tuple(axes)
        axes = tuple(a for a in axes if a not in used)
        if mesh is not None:
            axes = tuple(a for a in axes if mesh.shape[a] > 1)
            if shape is not None:
                size = int(np.prod([mesh.shape[a] for a in axes])) if axes else 1
                if shape[i] % size:
                    axes = ()
        used.update(axes)
        spec.append(axes[0] if len(axes) == 1 else (axes or None))
    return P(*spec)


def make_mesh(cfg: MeshConfig, devices: list | None = None) -> Mesh:
    devices = devices if devices is not None else jax.devices()
    if cfg.devices is not None:
        if cfg.devices > len(devices):
            raise UserError(f"mesh.devices: {cfg.devices} requested, {len(devices)} present")
        if jax.process_count() > 1 and cfg.devices != len(devices):
            raise UserError(f"mesh.devices: a run over {jax.process_count()} processes uses all their "
                            f"{len(devices)} devices (got {cfg.devices})")
        devices = devices[: cfg.devices]
    try:
        shape = cfg.shape(len(devices))
    except ValueError as e:
        raise UserError(f"mesh: {e}") from None
    axis_types = (AxisType.Auto,) * len(MESH_AXES)
    if len(devices) == len(jax.devices()):
        return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types, devices=devices)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=axis_types)


def state_shardings(abstract_state, mesh: Mesh):
    """NamedShardings for an nnx.State whose Variables carry `logical_axes` metadata."""
    from flax import nnx

    def one(var):
        names = var.get_metadata().get("logical_axes") if isinstance(var, nnx.Variable) else None
        shape = tuple(var.get_value().shape) if isinstance(var, nnx.Variable) else tuple(var.shape)
        return NamedSharding(mesh, logical_to_spec(names, shape, mesh))

    return jax.tree.map(one, abstract_state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
    """Sharding constraint by logical names against the mesh in context; a no-op without a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty or mesh.size == 1:
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(names, x.shape, mesh))


def traced_on(mesh: Mesh | None, fn: Callable) -> Callable:
    """`fn` traced with `mesh` in context, so the `constrain` calls inside it act (a jitted step is traced
    at its first call, outside any `jax.set_mesh` block the caller may or may not be in)."""
    if mesh is None:
        return fn

    @functools.wraps(fn)
    def under_mesh(*args, **kwargs):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args, **kwargs)

    return under_mesh
