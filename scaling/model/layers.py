"""Pure functions for one decoder layer's pieces. Tensors are named with their shapes:
B batch, S query length, T key length, D width, H heads, K kv-heads, G = H/K query heads per kv-head,
E head dim, F MLP width. Parameters arrive as float32 masters and are cast to the compute dtype here.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from scaling.config.model import ModelConfig
from scaling.model.attention_impl import resolve_attention
from scaling.parallel import constrain


def dense(x: jax.Array, w: jax.Array, n_in: int = 1) -> jax.Array:
    """Contract the last `n_in` axes of x with the first `n_in` axes of w as one 2-D matmul.

    XLA:CPU runs a flattened [tokens, in] @ [in, out] dot about twice as fast as the equivalent
    batched einsum (forward and backward); on GPU both lower to the same GEMM.
    """
    lead, k_shape = x.shape[: x.ndim - n_in], x.shape[x.ndim - n_in:]
    out_shape = w.shape[n_in:]
    k = math.prod(k_shape)
    y = x.reshape(-1, k) @ w.reshape(k, -1)
    return y.reshape(*lead, *out_shape)


def norm(x_BxSxD: jax.Array, scale_D: jax.Array, kind: str, eps: float = 1e-6) -> jax.Array:
    """RMSNorm or bias-free LayerNorm, computed in float32 for stability."""
    x = x_BxSxD.astype(jnp.float32)
    if kind == "layer":
        x = x - x.mean(-1, keepdims=True)
    x = x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + eps)
    return (x * scale_D.astype(jnp.float32)).astype(x_BxSxD.dtype)


def rope_tables(positions_BxS: jax.Array, E: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """sin and cos of the rotary angles, [B, S, 1, E/2] in float32. Computed once per forward pass and
    shared by every layer's queries and keys; with positions [1, S] (training) once for the whole batch."""
    freqs = theta ** (-jnp.arange(0, E, 2, dtype=jnp.float32) / E)
    angles_BxSxE2 = positions_BxS[..., None].astype(jnp.float32) * freqs
    return jnp.sin(angles_BxSxE2)[:, :, None, :], jnp.cos(angles_BxSxE2)[:, :, None, :]


def rope(x_BxSxHxE: jax.Array, sin_cos: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Rotary embeddings (rotate-half form), in float32."""
    sin, cos = sin_cos
    x1, x2 = jnp.split(x_BxSxHxE.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x_BxSxHxE.dtype)


def attention(p: dict, x_BxSxD: jax.Array, sin_cos: tuple[jax.Array, jax.Array] | None, cfg: ModelConfig,
              cache: dict | None = None, kv_valid_BxT: jax.Array | None = None):
    """Multi-head / grouped-query causal self-attention.

    Without `cache`: ordinary causal attention over the S tokens (training, scoring).
    With `cache` ({"k","v": [B, T, K, E]} and scalar "index"): the S new tokens are written at
    slots index..index+S-1 and attend to every valid earlier slot (prefill and decode). Slot order is
    time order, so causality is `slot_k <= slot_q`; `kv_valid_BxT` masks left padding of prompts.
    `sin_cos` are the rotary tables of `rope_tables` (None unless cfg.pos == "rope").
    Returns (y_BxSxD, new_cache).
    """
    dt = jnp.dtype(cfg.dtype)
    B, S, _ = x_BxSxD.shape
    q_BxSxHxE = dense(x_BxSxD, p["wq"].astype(dt))
    k_BxSxKxE = dense(x_BxSxD, p["wk"].astype(dt))
    v_BxSxKxE = dense(x_BxSxD, p["wv"].astype(dt))
    if cfg.qk_norm:
        q_BxSxHxE = norm(q_BxSxHxE, p["q_norm"], "rms")
        k_BxSxKxE = norm(k_BxSxKxE, p["k_norm"], "rms")
    if cfg.pos == "rope":
        q_BxSxHxE = rope(q_BxSxHxE, sin_cos)
        k_BxSxKxE = rope(k_BxSxKxE, sin_cos)
    q_BxSxHxE = constrain(q_BxSxHxE, ("batch", "seq", "act_heads", None))

    new_cache = None
    if cache is not None:
        index = cache["index"]
        k_all = jax.lax.dynamic_update_slice_in_dim(cache["k"], k_BxSxKxE.astype(cache["k"].dtype), index, axis=1)
        v_all = jax.lax.dynamic_update_slice_in_dim(cache["v"], v_BxSxKxE.astype(cache["v"].dtype), index, axis=1)
        new_cache = {"k": k_all, "v": v_all, "index": index + S}
        k_BxTxKxE, v_BxTxKxE, q_offset = k_all.astype(dt), v_all.astype(dt), index
    else:
        k_BxTxKxE, v_BxTxKxE, q_offset = k_BxSxKxE, v_BxSxKxE, 0

    # Fused kernels take plain causal attention only: decoding (cache) and padded rollouts (kv_valid) use XLA.
    impl = resolve_attention(cfg, seq_len=S) if cache is None and kv_valid_BxT is None else "xla"
    if impl == "splash":
        from scaling.model.splash import splash_attention  # Pallas TPU: loaded only where it is picked

        y_BxSxHxE = splash_attention(q_BxSxHxE, k_BxTxKxE, v_BxTxKxE)
    elif impl != "xla":
        y_BxSxHxE = jax.nn.dot_product_attention(q_BxSxHxE, k_BxTxKxE, v_BxTxKxE, is_causal=True,
                                                 implementation="cudnn" if impl == "cudnn" else None)
    else:
        y_BxSxHxE = _xla_attention(q_BxSxHxE, k_BxTxKxE, v_BxTxKxE, q_offset, kv_valid_BxT)
    y_BxSxD = dense(y_BxSxHxE, p["wo"].astype(dt), n_in=2)
    return y_BxSxD, new_cache


def _xla_attention(q_BxSxHxE, k_BxTxKxE, v_BxTxKxE, q_offset, kv_valid_BxT):
    """Plain einsum attention with scores and softmax in float32; GQA by grouping query heads."""
    B, S, H, E = q_BxSxHxE.shape
    T, K = k_BxTxKxE.shape[1], k_BxTxKxE.shape[2]
    q_BxSxKxGxE = q_BxSxHxE.reshape(B, S, K, H // K, E)
    scores = jnp.einsum("bskge,btke->bkgst", q_BxSxKxGxE, k_BxTxKxE,
                        preferred_element_type=jnp.float32) * (E ** -0.5)
    q_slot = q_offset + jnp.arange(S)
    mask_SxT = jnp.arange(T)[None, :] <= q_slot[:, None]
    mask = mask_SxT[None, None, None]
    if kv_valid_BxT is not None:
        mask = mask & kv_valid_BxT[:, None, None, None, :]
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v_BxTxKxE.dtype)
    y = jnp.einsum("bkgst,btke->bskge", probs, v_BxTxKxE)
    return y.reshape(B, S, H, E)


def mlp(p: dict, x_BxSxD: jax.Array, cfg: ModelConfig) -> jax.Array:
    """SwiGLU (w_gate, w_up, w_down) or GELU (w_up, w_down) MLP."""
    dt = jnp.dtype(cfg.dtype)
    up_BxSxF = dense(x_BxSxD, p["w_up"].astype(dt))
    if cfg.mlp == "swiglu":
        gate_BxSxF = dense(x_BxSxD, p["w_gate"].astype(dt))
        h_BxSxF = jax.nn.silu(gate_BxSxF) * up_BxSxF
    else:
        h_BxSxF = jax.nn.gelu(up_BxSxF)
    h_BxSxF = constrain(h_BxSxF, ("batch", "seq", "act_mlp"))
    return dense(h_BxSxF, p["w_down"].astype(dt))
