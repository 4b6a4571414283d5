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


def test_six_n_and_full_counts_match_a_derivation_by_hand():
    """BASE (D=256, L=2, H=4, F=1024, V=512, S=128; SwiGLU, RMS norms, untied output head), by hand."""
    D, L, F, V = 256, 2, 1024, 512
    # Per layer: q, k, v, o (D x D each), SwiGLU's three D x F matrices, two norm scales; then the final norm.
    N = L * (4 * D * D + 3 * D * F + 2 * D) + D
    assert N == 2_098_432
    # Forward per token: 2 FLOPs per weight of every matmul (norm scales do none), the D x V output layer,
    # and QK^T + PV (2 x 2D per key) against half of the S keys on average (causal).
    forward = 2 * L * (4 * D * D + 3 * D * F) + 2 * D * V + L * 2 * 2 * D * S // 2
    assert forward == 4_587_520
    cfg = ModelConfig(**BASE)
    params = nnx.state(abstract_model(cfg), nnx.Param)
    built = sum(v.size for path, v in jax.tree_util.tree_leaves_with_path(params) if path[0].key not in ("embed", "head"))
    c = count_model(cfg, S)
    assert c.n_active_nonembedding == c.n_nonembedding == N == built
    assert c.train_flops_per_token_6n == 6 * N
    assert c.train_flops_per_token_full == 3 * forward  # backward = 2 x forward
