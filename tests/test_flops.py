"""Analytic FLOP counts against XLA's cost analysis of the compiled forward pass.

XLA counts the masked half of causal attention too, so the analytic side uses causal_half=False.
Layers are unrolled (scan_layers=False) because XLA's cost analysis counts a while-loop body once.
"""
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from scaling.config.model import ModelConfig, MoEConfig
from scaling.model import abstract_model, count_model
from scaling.model.accounting import executed_forward_flops_per_token

B, S = 2, 128
BASE = dict(D=256, L=2, H=4, F=1024, V=512, max_seq_len=S, scan_layers=False)


def xla_forward_flops(cfg: ModelConfig) -> float:
    graphdef, state = nnx.split(abstract_model(cfg))
    fwd = jax.jit(lambda st, t: nnx.merge(graphdef, st)(t)[0])
    compiled = fwd.lower(state, jax.ShapeDtypeStruct((B, S), jnp.int32)).compile()
    cost = compiled.cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"]


@pytest.mark.parametrize("cfg", [
    ModelConfig(**BASE),
    ModelConfig(**BASE, KV=2, qk_norm=True, mlp="gelu", tie_embeddings=True, pos="learned"),
    ModelConfig(**BASE, moe=MoEConfig(n_experts=4, top_k=2, d_expert=256, dispatch="capacity", n_shared_experts=1)),
], ids=["dense", "gpt2-style-gqa", "moe-capacity"])
def test_analytic_forward_flops_match_xla_cost_analysis(cfg):
    analytic = executed_forward_flops_per_token(cfg, S, causal_half=False) * B * S
    assert xla_forward_flops(cfg) == pytest.approx(analytic, rel=0.05)


def test_dropless_moe_flops_match_xla_once_its_dense_ragged_dot_count_is_accounted_for():
    """XLA's CPU cost model charges ragged_dot as a dense matmul of every row against every expert
    (X times the real work). Correcting for exactly that, the active-parameter count must match."""
    moe = MoEConfig(n_experts=4, top_k=2, d_expert=256, dispatch="dropless")
    cfg = ModelConfig(**BASE, moe=moe)
    active = count_model(cfg, S, causal_half=False).forward_flops_per_token * B * S
    expert_matmuls = 2 * 3 * cfg.D * moe.d_expert * moe.top_k * B * S * cfg.L  # SwiGLU: 3 matrices
    xla_view = active + (moe.n_experts - 1) * expert_matmuls
    assert xla_forward_flops(cfg) == pytest.approx(xla_view, rel=0.05)


def test_six_n_and_full_conventions_relate_as_documented():
    cfg = ModelConfig(**BASE)
    c = count_model(cfg, S)
    assert c.train_flops_per_token_6n == 6 * c.n_active_nonembedding
    assert c.train_flops_per_token_full == 3 * c.forward_flops_per_token
    # Full adds the output layer and attention scores on top of ~6N.
    attention = 3 * cfg.L * 2 * cfg.H * cfg.d_head * 2 * S * 0.5
    head = 3 * 2 * cfg.D * cfg.padded_vocab
    norms = 6 * (cfg.L * 2 * cfg.D + cfg.D)
    assert c.train_flops_per_token_full == pytest.approx(c.train_flops_per_token_6n + attention + head - norms)
