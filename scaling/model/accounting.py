"""Parameter and FLOP accounting, analytic (no model is built).

Conventions (stated wherever a FLOP count is reported):
- Parameters are counted as built (vocabulary padded to a multiple of 128). `embedding` parameters are
  the token embedding, the learned position table and the untied output head; `nonembedding` is
  everything else (Kaplan et al. 2020's N). `active` counts only top-k routed experts (MoE).
- `6n`: training FLOPs per token = 6 × active non-embedding parameters (Kaplan; C = 6ND).
- `full`: every matmul of the forward pass, including the output layer and attention scores
  (QKᵀ and attention·V), causal attention counted as half; training = 3 × forward (backward = 2 ×).
  Elementwise work (norms, softmax, activations) is not counted.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scaling.config.model import ModelConfig



@dataclass(frozen=True)
class ModelCounts:
    seq_len: int
    n_params: int
    n_embedding: int
    n_nonembedding: int
    n_active: int
    n_active_nonembedding: int
    forward_flops_per_token: float  # full convention, causal half
    train_flops_per_token_full: float
    train_flops_per_token_6n: float
    matmul_flops_per_token: float  # forward weight matmuls (incl. output layer), no attention scores
    attention_flops_per_key: float  # forward QKᵀ + PV of one query against one key, all layers

    def forward_flops(self, n_tokens: int, n_cached: int = 0) -> float:
        """Forward FLOPs (full convention) of n new tokens, causally attending to themselves and to
        `n_cached` tokens already in a KV cache: n·matmul + Σ_i (n_cached + i + 1)·attention."""
        keys = n_tokens * n_cached + n_tokens * (n_tokens + 1) / 2
        return n_tokens * self.matmul_flops_per_token + keys * self.attention_flops_per_key

    def train_flops_per_token(self, convention: str) -> float:
        return self.train_flops_per_token_6n if convention == "6n" else self.train_flops_per_token_full

    def as_dict(self) -> dict:
        return asdict(self)


def _mlp_params(cfg: ModelConfig, width: int) -> int:
    return cfg.D * width * (3 if cfg.mlp == "swiglu" else 2)


def _attention_proj_params(cfg: ModelConfig) -> int:
    return cfg.D * cfg.d_head * (2 * cfg.H + 2 * cfg.n_kv_heads)


def expert_capacity(seq_len: int, moe) -> int:
    """Buffer slots per expert and sequence in capacity dispatch: ceil(S·k·capacity_factor / X)."""
    return max(1, math.ceil(seq_len * moe.top_k * moe.capacity_factor / moe.n_experts))


def count_model(cfg: ModelConfig, seq_len: int | None = None, causal_half: bool = True) -> ModelCounts:
    S = seq_len or cfg.max_seq_len
    D, Vp = cfg.D, cfg.padded_vocab
    n_moe = sum(cfg.is_moe_layer(i) for i in range(cfg.L))
    n_dense = cfg.L - n_moe

    per_layer = _attention_proj_params(cfg) + 2 * D + (2 * cfg.d_head if cfg.qk_norm else 0)
    layers = cfg.L * per_layer + n_dense * _mlp_params(cfg, cfg.F)
    moe_total = moe_active = 0
    if cfg.moe:
        m = cfg.moe
        expert = _mlp_params(cfg, m.d_expert)
        shared = m.n_shared_experts * expert
        moe_total = n_moe * (D * m.n_experts + m.n_experts * expert + shared)
        moe_active = n_moe * (D * m.n_experts + m.top_k * expert + shared)
    embedding = Vp * D + (cfg.max_seq_len * D if cfg.pos == "learned" else 0) + (0 if cfg.tie_embeddings else D * Vp)
    nonembedding = layers + moe_total + D  # + final norm
    active_nonembedding = layers + moe_active + D

    attn_matmul = 2 * cfg.d_head * cfg.H * 2 * S * (0.5 if causal_half else 1.0)  # QK^T and PV per token
    matmul = (2 * (layers + moe_active) - 2 * cfg.L * (2 * D)  # weights only (norm scales do no matmul)
              - (2 * cfg.L * 2 * cfg.d_head if cfg.qk_norm else 0) + 2 * D * Vp)
    fwd = matmul + cfg.L * attn_matmul
    return ModelCounts(
        seq_len=S,
        n_params=embedding + nonembedding,
        n_embedding=embedding,
        n_nonembedding=nonembedding,
        n_active=embedding + active_nonembedding,
        n_active_nonembedding=active_nonembedding,
        forward_flops_per_token=float(fwd),
        train_flops_per_token_full=float(3 * fwd),
        train_flops_per_token_6n=float(6 * active_nonembedding),
        matmul_flops_per_token=float(matmul),
        attention_flops_per_key=float(cfg.L * 4 * cfg.d_head * cfg.H),
    )


def executed_forward_flops_per_token(cfg: ModelConfig, seq_len: int, causal_half: bool = False) -> float:
    """Forward matmul FLOPs per token of what the implementation actually executes.

    Differs from the `full` convention only for the capacity-factor MoE path, which computes every
    expert's C = ceil(S·k·cf/X) buffer slots (padding included) and pays for dispatch/combine einsums.
    Used to cross-check against XLA's cost analysis; the ragged_dot path executes exactly the active
    count (but XLA's CPU cost model counts ragged_dot as dense over all experts).
    """
    counts = count_model(cfg, seq_len, causal_half=causal_half)
    fwd = counts.forward_flops_per_token
    if not cfg.moe or cfg.moe.dispatch != "capacity":
        return fwd
    m, S, D = cfg.moe, seq_len, cfg.D
    C = expert_capacity(S, m)
    expert = 2 * _mlp_params(cfg, m.d_expert)
    slots_per_token = m.n_experts * C / S
    per_layer_extra = ((slots_per_token - m.top_k) * expert  # padded (or dropped) buffer slots
                       + 2 * 2 * m.n_experts * C * D  # dispatch and combine einsums contract over all slots
                       + 2 * m.top_k * m.n_experts * C)  # combine weights
    n_moe = sum(cfg.is_moe_layer(i) for i in range(cfg.L))
    return fwd + n_moe * per_layer_extra
