"""The sampler's KV cache is sharded like the activations it caches (issue #18): rows over the data axes,
kv-heads over tensor. Without the constraint XLA was free to replicate the cache, the largest tensor of a
decode step, on every device."""
import jax
import jax.numpy as jnp
from flax import nnx

from scaling.config.model import MeshConfig, ModelConfig
from scaling.config.rl import SamplingConfig
from scaling.model import build_model
from scaling.parallel import make_mesh
from scaling.rl.policy import batch_placer
from scaling.sampling.sampler import generate

B, P, N = 8, 6, 4


def test_the_decode_loop_carries_a_kv_cache_constrained_over_the_batch_axes():
    cfg = ModelConfig(name="t", D=32, L=2, H=2, F=64, max_seq_len=P + N, scan_layers=False, dtype="float32")
    mesh = make_mesh(MeshConfig(data=2, fsdp=4))
    graphdef, params, rest = nnx.split(build_model(cfg, mesh, seed=0), nnx.Param, ...)
    prompts = batch_placer(mesh)({"tokens": jnp.zeros((B, P), jnp.int32), "valid": jnp.ones((B, P), bool)})
    with jax.set_mesh(mesh):
        text = generate.lower(graphdef, (params, rest), prompts["tokens"], prompts["valid"], jax.random.key(0),
                              sampling=SamplingConfig(max_new=N), eos_id=1, pad_id=0).as_text()
    cache_type = f"tensor<{cfg.L // cfg.block_layers}x{cfg.block_layers}x{B}x{P + N}x{cfg.n_kv_heads}x{cfg.d_head}xf32>"
    constrained = [line for line in text.splitlines() if "sdy.sharding_constraint" in line and cache_type in line]
    assert len(constrained) >= 2, cache_type  # keys and values
    assert all('{"data", "fsdp"}' in line for line in constrained), constrained[0]
