"""Mixture-of-experts MLP: router, two dispatch paths, auxiliary losses, aux-loss-free bias.

Dispatch paths (selected by `moe.dispatch`):
  dropless  sort the (token, choice) pairs by expert, one grouped matmul per weight with
            `jax.lax.ragged_dot`, unsort. No token is ever dropped.
  capacity  GShard/Switch einsum dispatch per sequence with `capacity_factor`; overflow is dropped
            (the token keeps its residual). Static shapes, friendly to expert-sharded einsums.
Shapes: N tokens, D width, X experts, k choices per token, F expert width, C capacity.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.config.model import ModelConfig
from scaling.model.accounting import expert_capacity


class RouterBias(nnx.Variable):
    """Non-trainable per-expert selection bias (DeepSeek-V3 aux-loss-free balancing). A Variable type of its
    own, not an nnx.Param: the optimizer (which takes nnx.Param) never sees it, and the bias update below
    finds it by this type, so renaming the attribute cannot silently stop the update."""


def route(p: dict, x_NxD: jax.Array, cfg: ModelConfig):
    """Top-k routing. Returns (expert_idx_Nxk, weights_Nxk, aux) with router losses and load in aux.

    softmax: weights are softmax probabilities of the chosen experts.
    sigmoid: DeepSeek-V3 scoring; a non-trainable per-expert bias shifts *selection* only, which is the
             auxiliary-loss-free balancing of DeepSeek-V3 (the bias is updated outside the optimizer).
    """
    moe = cfg.moe
    X = moe.n_experts
    logits_NxX = jnp.einsum("nd,dx->nx", x_NxD.astype(jnp.float32), p["router"].astype(jnp.float32))
    if moe.router == "softmax":
        scores_NxX = jax.nn.softmax(logits_NxX, axis=-1)
    else:
        scores_NxX = jax.nn.sigmoid(logits_NxX)
    select_NxX = scores_NxX
    if moe.aux_free_bias:
        select_NxX = scores_NxX + jax.lax.stop_gradient(p["router_bias"])
    _, idx_Nxk = jax.lax.top_k(select_NxX, moe.top_k)
    weights_Nxk = jnp.take_along_axis(scores_NxX, idx_Nxk, axis=-1)
    if moe.normalize_top_k and (moe.top_k > 1 or moe.router == "sigmoid"):
        weights_Nxk = weights_Nxk / (weights_Nxk.sum(-1, keepdims=True) + 1e-9)

    # Switch load-balancing loss: X * sum_x f_x * P_x; equals 1 for perfectly uniform routing.
    N = x_NxD.shape[0]
    load_X = jnp.zeros((X,), jnp.float32).at[idx_Nxk.reshape(-1)].add(1.0)
    frac_tokens_X = load_X / (N * moe.top_k)
    probs_NxX = scores_NxX / scores_NxX.sum(-1, keepdims=True)
    frac_probs_X = probs_NxX.mean(0)
    aux = {
        "moe_lb_loss": X * jnp.sum(frac_tokens_X * frac_probs_X),
        "moe_z_loss": jnp.mean(jax.nn.logsumexp(logits_NxX, axis=-1) ** 2),
        "expert_load": load_X,
    }
    return idx_Nxk, weights_Nxk, aux


def _expert_ffn(h_in, p: dict, cfg: ModelConfig, matmul):
    """The expert MLP given a matmul(h, w) that knows how tokens are grouped by expert."""
    dt = jnp.dtype(cfg.dtype)
    up = matmul(h_in, p["w_up"].astype(dt))
    if cfg.mlp == "swiglu":
        up = jax.nn.silu(matmul(h_in, p["w_gate"].astype(dt))) * up
    else:
        up = jax.nn.gelu(up)
    return matmul(up, p["w_down"].astype(dt))


def dropless(p: dict, x_NxD: jax.Array, idx_Nxk: jax.Array, w_Nxk: jax.Array, cfg: ModelConfig) -> jax.Array:
    N, D = x_NxD.shape
    k, X = cfg.moe.top_k, cfg.moe.n_experts
    flat_expert = idx_Nxk.reshape(-1)
    order = jnp.argsort(flat_expert, stable=True)
    x_sorted = x_NxD[order // k]
    group_sizes = jnp.bincount(flat_expert, length=X).astype(jnp.int32)

    def grouped(h, w_XxIxO):
        return jax.lax.ragged_dot(h, w_XxIxO, group_sizes)

    y_sorted = _expert_ffn(x_sorted, p, cfg, grouped)
    y_Nkxd = jnp.zeros_like(y_sorted).at[order].set(y_sorted)
    y_NxkxD = y_Nkxd.reshape(N, k, D)
    return jnp.einsum("nkd,nk->nd", y_NxkxD, w_Nxk.astype(y_NxkxD.dtype))


def capacity(p: dict, x_BxSxD: jax.Array, idx_Nxk: jax.Array, w_Nxk: jax.Array, cfg: ModelConfig) -> jax.Array:
    """Einsum dispatch per sequence (a group of S tokens), priority to first choices (Switch/GShard)."""
    B, S, D = x_BxSxD.shape
    k, X = cfg.moe.top_k, cfg.moe.n_experts
    C = expert_capacity(S, cfg.moe)
    idx_BxSxk = idx_Nxk.reshape(B, S, k)
    onehot_BxkxSxX = jax.nn.one_hot(idx_BxSxk.transpose(0, 2, 1), X, dtype=jnp.int32)
    # Position of each (choice, token) in its expert's buffer: cumulative count in (choice, token) order.
    pos_BxkSxX = jnp.cumsum(onehot_BxkxSxX.reshape(B, k * S, X), axis=1) - 1
    pos_BxSxk = (pos_BxkSxX.reshape(B, k, S, X) * onehot_BxkxSxX).sum(-1).transpose(0, 2, 1)
    keep_BxSxk = pos_BxSxk < C
    dt = jnp.dtype(cfg.dtype)
    dispatch_BxSxkxXxC = (jax.nn.one_hot(idx_BxSxk, X, dtype=dt)[..., None]
                          * jax.nn.one_hot(jnp.where(keep_BxSxk, pos_BxSxk, C), C, dtype=dt)[..., None, :])
    dispatch_BxSxXxC = dispatch_BxSxkxXxC.sum(2)
    combine_BxSxXxC = jnp.einsum("bskxc,bsk->bsxc", dispatch_BxSxkxXxC, w_Nxk.reshape(B, S, k).astype(dt))
    x_in_BxXxCxD = jnp.einsum("bsxc,bsd->bxcd", dispatch_BxSxXxC, x_BxSxD)

    def per_expert(h, w_XxIxO):
        return jnp.einsum("bxci,xio->bxco", h, w_XxIxO)

    y_BxXxCxD = _expert_ffn(x_in_BxXxCxD, p, cfg, per_expert)
    return jnp.einsum("bsxc,bxcd->bsd", combine_BxSxXxC, y_BxXxCxD)


def moe_mlp(p: dict, x_BxSxD: jax.Array, cfg: ModelConfig):
    """Routed experts (+ shared experts). Returns (y_BxSxD, aux)."""
    B, S, D = x_BxSxD.shape
    x_NxD = x_BxSxD.reshape(B * S, D)
    idx_Nxk, w_Nxk, aux = route(p, x_NxD, cfg)
    if cfg.moe.dispatch == "dropless":
        y_BxSxD = dropless(p["experts"], x_NxD, idx_Nxk, w_Nxk, cfg).reshape(B, S, D)
    else:
        y_BxSxD = capacity(p["experts"], x_BxSxD, idx_Nxk, w_Nxk, cfg)
    if cfg.moe.n_shared_experts:
        from scaling.model.layers import mlp

        y_BxSxD = y_BxSxD + mlp(p["shared"], x_BxSxD, cfg)
    return y_BxSxD, aux


def updated_router_bias(bias_X: jax.Array, load_X: jax.Array, rate: float) -> jax.Array:
    """DeepSeek-V3 aux-loss-free update: raise the bias of under-loaded experts, lower over-loaded ones."""
    return bias_X + rate * jnp.sign(load_X.mean(-1, keepdims=True) - load_X)


def with_updated_router_biases(cfg: ModelConfig, non_trainable, load):
    """The non-trainable variables after one aux-free bias update of every router (a no-op unless the model
    uses `moe.aux_free_bias`); `load` is the step's expert load from the model's aux outputs."""
    if cfg.moe is None or not cfg.moe.aux_free_bias:
        return non_trainable

    def update(variable: nnx.Variable) -> nnx.Variable:
        if isinstance(variable, RouterBias):
            return variable.replace(updated_router_bias(variable.get_value(), load, cfg.moe.bias_update_rate))
        return variable

    return jax.tree.map(update, non_trainable, is_leaf=lambda x: isinstance(x, nnx.Variable))
