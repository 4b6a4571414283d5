"""Causal attention through Splash, JAX's Pallas TPU flash-attention kernel (model.attention "splash").

The kernel works on one sequence of one device's shard: q [H, S, E], k and v [K, T, E], with grouped-query
heads (H a multiple of K) taken natively and no softmax scaling of its own. So the batch is vmapped, the
queries are scaled by E^-1/2 first (as the XLA path scales its scores), and under a mesh the kernel runs in
shard_map over the batch (data/fsdp/expert) and heads (tensor) axes the activations are constrained to, with
the kernel built for the per-shard head count. The result is the XLA path's causal softmax attention.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as splash

from scaling.parallel import logical_to_spec

# Largest first: bigger tiles run faster where the sequence length allows them (all are multiples of 128).
BLOCK_CHOICES = (512, 256, 128)
HEADS_LAYOUT = ("batch", "act_heads", None, None)  # [B, heads, S, E]: how the kernel's inputs are sharded


def block_size(seq_len: int) -> int:
    """The largest tile that divides `seq_len` (attention_impl refuses lengths no tile divides)."""
    return next(b for b in BLOCK_CHOICES if seq_len % b == 0)


def splash_attention(q_BxSxHxE: jax.Array, k_BxTxKxE: jax.Array, v_BxTxKxE: jax.Array,
                     interpret: bool = False) -> jax.Array:
    """Causal attention [B, S, H, E] like layers._xla_attention with q_offset 0 and no padding.
    `interpret` runs the kernel's Pallas program on any backend (tests on CPU); off, it lowers for TPU only."""
    B, S, H, E = q_BxSxHxE.shape
    K = k_BxTxKxE.shape[2]
    q_BxHxSxE = (q_BxSxHxE * (E ** -0.5)).astype(q_BxSxHxE.dtype).transpose(0, 2, 1, 3)
    k_BxKxTxE, v_BxKxTxE = k_BxTxKxE.transpose(0, 2, 1, 3), v_BxTxKxE.transpose(0, 2, 1, 3)
    per_shard = functools.partial(_causal_splash, interpret=interpret)
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty or mesh.size == 1:
        return per_shard(q_BxHxSxE, k_BxKxTxE, v_BxKxTxE).transpose(0, 2, 1, 3)
    q_spec = logical_to_spec(HEADS_LAYOUT, q_BxHxSxE.shape, mesh)
    kv_spec = logical_to_spec(HEADS_LAYOUT, k_BxKxTxE.shape, mesh)
    if kv_spec[1] != q_spec[1]:
        # Query heads are split over `tensor` but too few kv-heads are: a shard's local query head h would
        # meet local kv-head h // G, not its own. Give every query head its kv-head (the XLA path's grouping).
        k_BxKxTxE, v_BxKxTxE = (jnp.repeat(x, H // K, axis=1) for x in (k_BxKxTxE, v_BxKxTxE))
        kv_spec = q_spec
    # check_vma off: pallas_call does not state how its outputs vary over the mesh axes.
    sharded = jax.shard_map(per_shard, mesh=mesh, in_specs=(q_spec, kv_spec, kv_spec), out_specs=q_spec,
                            check_vma=False)
    return sharded(q_BxHxSxE, k_BxKxTxE, v_BxKxTxE).transpose(0, 2, 1, 3)


def _causal_splash(q_BxHxSxE, k_BxKxTxE, v_BxKxTxE, interpret: bool):
    """The kernel on one device's [b, h, S, E] shard: built for its shapes, vmapped over its sequences."""
    H, S, T = q_BxHxSxE.shape[1], q_BxHxSxE.shape[2], k_BxKxTxE.shape[2]
    bq, bkv = block_size(S), block_size(T)
    blocks = splash.BlockSizes(block_q=bq, block_kv=bkv, block_kv_compute=bkv,
                               block_q_dkv=bq, block_kv_dkv=bkv, block_kv_dkv_compute=bkv,
                               block_q_dq=bq, block_kv_dq=bkv)
    mask = splash.MultiHeadMask([splash.CausalMask((S, T)) for _ in range(H)])
    kernel = splash.make_splash_mha(mask, block_sizes=blocks, head_shards=1, q_seq_shards=1, interpret=interpret)
    return jax.vmap(kernel)(q_BxHxSxE, k_BxKxTxE, v_BxKxTxE)
