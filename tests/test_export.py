"""The compiled programs lower for GPU and TPU from this CPU machine (jax.export), so a construct that only
XLA:CPU accepts (a host callback, an unsupported dtype or op) fails CI instead of surfacing on a cluster.

Exporting lowers to StableHLO for the named platform without compiling, so no accelerator is needed.
Traced under `lowering_for("tpu")`, "auto" and "splash" put the Splash kernel in as Mosaic custom calls
(Pallas lowers them on a CPU-only jax). What only a real device shows (cuDNN's attention kernels, Mosaic
compiling and running Splash, memory) is left to the benchmarks.
"""
import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax import export

from scaling.config.rl import SamplingConfig
from scaling.config.run import run_config_from_dict
from scaling.model import build_model
from scaling.model.attention_impl import lowering_for
from scaling.parallel import make_mesh
from scaling.sampling.sampler import generate
from scaling.train.optim import make_optimizer
from scaling.train.step import compile_steps, init_train_state

PLATFORMS = ("cuda", "tpu")
DENSE = {"name": "t", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 32}
MOE = {**DENSE, "name": "m", "moe": {"n_experts": 4, "top_k": 2, "d_expert": 32, "aux_free_bias": True}}
B, S = 4, 32


def _train_step(model_fields: dict):
    cfg = run_config_from_dict({"model": model_fields, "mesh": {"devices": 1}, "data": {"source": "synthetic-math"},
                                "train": {"tokens": 10_000, "seq_len": S, "batch_size": B}})
    model = build_model(cfg.model, None, seed=0)
    tx, _ = make_optimizer(cfg.optimizer, 10)
    graphdef, state, shardings = init_train_state(model, tx, None)
    steps = compile_steps(cfg.model, graphdef, shardings, tx, None, 1)
    batch = {"inputs": jnp.zeros((B, S), jnp.int32), "targets": jnp.zeros((B, S), jnp.int32),
             "mask": jnp.ones((B, S), jnp.float32)}
    return steps, state, batch, model


@pytest.mark.parametrize("model_fields", [DENSE, MOE, {**MOE, "moe": {**MOE["moe"], "dispatch": "capacity"}}],
                         ids=["dense", "moe-dropless", "moe-capacity"])
def test_train_and_eval_steps_lower_for_gpu_and_tpu(model_fields):
    steps, state, batch, _ = _train_step(model_fields)
    for platform in PLATFORMS:
        exported = export.export(steps.train_step, platforms=[platform])(state, batch, jnp.float32(1e-3))
        assert exported.platforms == (platform,)
        assert "stablehlo" in exported.mlir_module() and "callback" not in exported.mlir_module()
        export.export(steps.eval_step, platforms=[platform])(state["params"], state["non_trainable"], batch)


def test_the_sampler_lowers_for_gpu_and_tpu():
    *_, model = _train_step(MOE)
    graphdef, *states = nnx.split(model, nnx.Param, ...)
    prompts, valid = jnp.zeros((B, 8), jnp.int32), jnp.ones((B, 8), bool)

    def sample(states, prompts, valid, key):
        return generate(graphdef, states, prompts, valid, key, sampling=SamplingConfig(max_new=8), eos_id=1, pad_id=0)

    for platform in PLATFORMS:
        exported = export.export(jax.jit(sample), platforms=[platform])(tuple(states), prompts, valid,
                                                                          jax.random.key(0))
        assert "while" in exported.mlir_module()  # the decode loop stays on the device


SPLASH_S = 128  # Splash tiles sequences in multiples of 128 lanes


def _splash_steps(model_fields: dict, mesh_fields: dict | None):
    cfg = run_config_from_dict({"model": {"name": "s", "L": 2, "F": 64, "V": 64, "max_seq_len": SPLASH_S,
                                          **model_fields},
                                "mesh": mesh_fields or {"devices": 1}, "data": {"source": "synthetic-math"},
                                "train": {"tokens": 10_000, "seq_len": SPLASH_S, "batch_size": 8}})
    mesh = make_mesh(cfg.mesh) if mesh_fields else None
    tx, _ = make_optimizer(cfg.optimizer, 10)
    graphdef, state, shardings = init_train_state(build_model(cfg.model, mesh, seed=0), tx, mesh)
    steps = compile_steps(cfg.model, graphdef, shardings, tx, mesh, 1)
    batch = {k: jnp.zeros((8, SPLASH_S), jnp.int32 if k != "mask" else jnp.float32)
             for k in ("inputs", "targets", "mask")}
    if mesh is not None:
        batch = jax.device_put(batch, steps.batch_sharding)
    return steps, state, batch


@pytest.mark.parametrize("model_fields,mesh_fields", [
    ({"D": 32, "H": 4, "KV": 2, "attention": "splash"}, None),
    ({"D": 32, "H": 4, "KV": 2, "attention": "splash"}, {"data": 2, "tensor": 2, "fsdp": 2}),
    ({"D": 256, "H": 2, "dtype": "float32"}, None),  # auto: head_dim 128 -> Splash on TPU; float32 -> XLA on GPU
], ids=["splash", "splash-dp2-tp2-fsdp2", "auto"])
def test_splash_lowers_to_a_mosaic_kernel_for_tpu(model_fields, mesh_fields):
    """Traced as for a TPU (lowering_for), the train step holds the Pallas kernel's Mosaic custom calls: the
    forward and its two backward kernels (dq, dkv), once for the scanned layers; under a mesh inside shard_map."""
    steps, state, batch = _splash_steps(model_fields, mesh_fields)
    with lowering_for("tpu"):
        module = export.export(steps.train_step, platforms=["tpu"])(state, batch, jnp.float32(1e-3)).mlir_module()
        evaluated = export.export(steps.eval_step, platforms=["tpu"])(state["params"], state["non_trainable"], batch)
    assert module.count("tpu_custom_call") == 3, module.count("tpu_custom_call")
    assert evaluated.mlir_module().count("tpu_custom_call") == 1
    assert ("sdy.manual_computation" in module) == (mesh_fields is not None)
    if model_fields.get("attention") != "splash":  # the same jitted step, traced again for GPU, has no TPU kernel
        with lowering_for("cuda"):
            module = export.export(steps.train_step, platforms=["cuda"])(state, batch, jnp.float32(1e-3)).mlir_module()
        assert "tpu_custom_call" not in module
