"""Build a decoder sharded on a mesh without ever materialising a full copy on one device.

The model is first traced abstractly (`nnx.eval_shape`), shardings are derived from each parameter's
logical axes, and then initialisation runs under `jax.jit` with those output shardings, so each
device creates only its own shard. Random values do not depend on the sharding (JAX's partitionable
threefry), so the same seed gives the same model on 1 or 8 devices.
"""
from __future__ import annotations

import jax
from flax import nnx
from jax.sharding import Mesh

from scaling.config.model import ModelConfig
from scaling.model.decoder import Decoder
from scaling.parallel import state_shardings


def abstract_model(cfg: ModelConfig, seed: int = 0) -> Decoder:
    return nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(seed)))


def build_model(cfg: ModelConfig, mesh: Mesh | None = None, seed: int = 0) -> Decoder:
    def create():
        return Decoder(cfg, rngs=nnx.Rngs(seed))

    graphdef, abstract_state = nnx.split(abstract_model(cfg, seed))

    def init():
        return nnx.state(create())

    if mesh is None:
        return nnx.merge(graphdef, jax.jit(init)())
    with jax.set_mesh(mesh):
        state = jax.jit(init, out_shardings=state_shardings(abstract_state, mesh))()
    return nnx.merge(graphdef, state)
