"""Losses over the decoder's float32 logits: next-token cross-entropy, z-loss, MoE auxiliaries."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from scaling.config.model import ModelConfig


def token_logprobs(logits_BxSxV: jax.Array, targets_BxS: jax.Array) -> tuple[jax.Array, jax.Array]:
    """log p(target) per position and log Z (for z-loss), both float32."""
    logz_BxS = jax.nn.logsumexp(logits_BxSxV, axis=-1)
    picked_BxS = jnp.take_along_axis(logits_BxSxV, targets_BxS[..., None], axis=-1)[..., 0]
    return picked_BxS - logz_BxS, logz_BxS


def lm_objective(cfg: ModelConfig, logits_BxSxV, aux: dict, targets_BxS, mask_BxS):
    """Training objective and its parts. `ce` (nats/token) is what metrics and scaling laws use."""
    logp_BxS, logz_BxS = token_logprobs(logits_BxSxV, targets_BxS)
    mask = mask_BxS.astype(jnp.float32)
    n = jnp.maximum(mask.sum(), 1.0)
    ce = -(logp_BxS * mask).sum() / n
    total = ce
    parts = {"ce": ce}
    if cfg.z_loss:
        z = (jnp.square(logz_BxS) * mask).sum() / n
        total = total + cfg.z_loss * z
        parts["z_loss"] = z
    moe_total, moe_parts = moe_aux_loss(cfg, aux)
    return total + moe_total, parts | moe_parts


def moe_aux_loss(cfg: ModelConfig, aux: dict) -> tuple[jax.Array | float, dict]:
    """The MoE router's auxiliary losses, weighted, and their parts: added to every objective that trains
    an MoE model (pretraining and RL alike), so the router keeps balancing its experts."""
    if not cfg.moe:
        return 0.0, {}
    total = cfg.moe.load_balance_weight * aux["moe_lb_loss"] + cfg.moe.router_z_weight * aux["moe_z_loss"]
    return total, {"moe_lb_loss": aux["moe_lb_loss"], "moe_z_loss": aux["moe_z_loss"]}
