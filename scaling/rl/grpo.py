"""GRPO: group-relative advantages and the clipped policy-ratio objective (with DAPO/Dr. GRPO options).

Shapes: B sequences (= prompts × G), T target positions. `mask_BxT` marks completion tokens (the EOS
included, padding excluded): only they carry loss.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from scaling.config.rl import GRPOConfig


def group_advantages(rewards_B: jax.Array, group_size: int, kind: str = "grpo", eps: float = 1e-6) -> jax.Array:
    """Rewards of consecutive groups of G → advantages. grpo: (r − mean)/(std + eps) (Shao et al. 2024);
    dr_grpo: r − mean (Liu et al. 2025, no std normalisation, which biases towards easy/hard prompts)."""
    r_PxG = rewards_B.reshape(-1, group_size)
    centred = r_PxG - r_PxG.mean(-1, keepdims=True)
    if kind == "grpo":
        centred = centred / (r_PxG.std(-1, keepdims=True) + eps)
    return centred.reshape(-1)


def weight_negatives(adv_B: jax.Array, weight: float) -> jax.Array:
    """Scale the advantages of below-average completions by `weight` (GRPOConfig.negative_weight)."""
    return jnp.where(adv_B < 0, weight * adv_B, adv_B)


def informative_groups(rewards_B: jax.Array, group_size: int) -> jax.Array:
    """Per sequence: does its group have rewards that differ? (DAPO dynamic sampling keeps only those.)"""
    r_PxG = rewards_B.reshape(-1, group_size)
    keep_P = r_PxG.max(-1) > r_PxG.min(-1)
    return jnp.repeat(keep_P, group_size)


def k3_kl(logp_BxT: jax.Array, ref_logp_BxT: jax.Array) -> jax.Array:
    """Schulman's k3 estimator of KL(π‖π_ref): exp(ref − logp) − (ref − logp) − 1 ≥ 0."""
    d = ref_logp_BxT - logp_BxT
    return jnp.exp(d) - d - 1.0


def grpo_loss(logp_BxT, old_logp_BxT, adv_B, mask_BxT, cfg: GRPOConfig, max_new: int, ref_logp_BxT=None):
    """Clipped surrogate −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) (+ β·KL), aggregated per `cfg.loss_agg`."""
    mask = mask_BxT.astype(jnp.float32)
    ratio = jnp.exp(logp_BxT - old_logp_BxT)
    adv = adv_B[:, None]
    unclipped = ratio * adv
    clipped = jnp.clip(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high) * adv
    per_token = -jnp.minimum(unclipped, clipped)
    stats = {"clip_frac": _masked_mean((clipped != unclipped).astype(jnp.float32), mask),
             "ratio": _masked_mean(ratio, mask)}
    if cfg.kl_beta > 0:
        kl = k3_kl(logp_BxT, ref_logp_BxT)
        per_token = per_token + cfg.kl_beta * kl
        stats["kl"] = _masked_mean(kl, mask)
    if cfg.loss_agg == "token":
        loss = (per_token * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    elif cfg.loss_agg == "sequence":
        per_seq = (per_token * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1.0)
        has_tokens = (mask.sum(-1) > 0).astype(jnp.float32)
        loss = (per_seq * has_tokens).sum() / jnp.maximum(has_tokens.sum(), 1.0)
    else:  # constant normaliser, Dr. GRPO
        loss = (per_token * mask).sum() / (mask.shape[0] * max_new)
    return loss, stats


def _masked_mean(x, mask):
    return (x * mask).sum() / jnp.maximum(mask.sum(), 1.0)
