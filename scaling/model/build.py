"""Build a decoder sharded on a mesh without ever materialising a full copy on one device.

The model is first traced abstractly (`nnx.eval_shape`), shardings are derived from each parameter's
logical axes, and then initialisation runs under `jax.jit` with those output shardings, so each
device creates only its own shard. Random values do not depend on the sharding (JAX's partitionable
threefry), so the same seed gives the same model on 1 or 8 devices.
"""
from __future__ import annotations

import functools

import jax
from flax import nnx
from jax.sharding import Mesh

from scaling.config.model import ModelConfig
from scaling.model.decoder import Decoder
from scaling.parallel import state_shardings


def abstract_model(cfg: ModelConfig, seed: int = 0) -> Decoder:
    return nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(seed)))


def build_model(cfg: ModelConfig, mesh: Mesh | None = None, seed: int = 0) -> Decoder:
    graphdef, init = _initializer(cfg.model_dump_json(), mesh)
    if mesh is None:
        return nnx.merge(graphdef, init(jax.random.key(seed)))
    with jax.set_mesh(mesh):
        return nnx.merge(graphdef, init(jax.random.key(seed)))


@functools.lru_cache(maxsize=8)
def _initializer(cfg_json: str, mesh: Mesh | None):
    """The model's graphdef and its jitted initialiser, which takes the seed as an argument: a process that
    builds many models of one shape (a sweep worker: other seeds, other budgets) traces and compiles it once."""
    cfg = ModelConfig.model_validate_json(cfg_json)
    graphdef, abstract_state = nnx.split(abstract_model(cfg))

    def init(key):  # nnx.Rngs(seed) starts from jax.random.key(seed): the same values as a constant seed
        return nnx.state(Decoder(cfg, rngs=nnx.Rngs(key)))

    if mesh is None:
        return graphdef, jax.jit(init)
    return graphdef, jax.jit(init, out_shardings=state_shardings(abstract_state, mesh))
