"""AdamW with the lab's schedules: warmup then cosine, WSD (warmup-stable-decay) or constant.

Warmup given as a fraction (< 1) is a share of all steps; as an integer it is absolute, which is what
WSD forks need so that every branch has the same schedule up to its cooldown (Hägele et al. 2024).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scaling.config.run import OptimizerConfig

# Parameters never decayed by default: norm scales and embedding tables (matched by name).
NO_DECAY = {"ln1", "ln2", "q_norm", "k_norm", "final_norm", "embed", "pos_embed"}


def warmup_steps(cfg: OptimizerConfig, total_steps: int) -> int:
    return int(cfg.warmup) if cfg.warmup >= 1 else int(round(cfg.warmup * total_steps))


def decay_start(cfg: OptimizerConfig, total_steps: int) -> int:
    """First step of the WSD cooldown."""
    return total_steps - int(round(cfg.decay_fraction * total_steps))


def lr_schedule(cfg: OptimizerConfig, total_steps: int) -> optax.Schedule:
    peak, final = cfg.lr, cfg.lr * cfg.final_lr_fraction
    warm = min(warmup_steps(cfg, total_steps), total_steps)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm_lr = peak * (step + 1) / max(warm, 1)
        if cfg.schedule == "constant":
            after = jnp.asarray(peak, jnp.float32)
        elif cfg.schedule == "cosine":
            t = jnp.clip((step - warm) / max(total_steps - warm, 1), 0.0, 1.0)
            after = final + (peak - final) * 0.5 * (1 + jnp.cos(jnp.pi * t))
        else:  # wsd
            start = decay_start(cfg, total_steps)
            t = jnp.clip((step - start) / max(total_steps - start, 1), 0.0, 1.0)
            shape = t if cfg.decay_shape == "linear" else jnp.sqrt(t)
            after = jnp.where(step < start, peak, final + (peak - final) * (1 - shape))
        return jnp.where(step < warm, warm_lr, after)

    return schedule


def decay_mask(params, decay_norms_and_embeddings: bool):
    def keep(path, _):
        name = getattr(path[-1], "key", getattr(path[-1], "name", None))
        if str(name) == "value" and len(path) > 1:  # nnx.Variable leaves end in a `.value` attribute
            name = getattr(path[-2], "key", getattr(path[-2], "name", None))
        return decay_norms_and_embeddings or str(name) not in NO_DECAY

    return jax.tree_util.tree_map_with_path(keep, params)


def make_optimizer(cfg: OptimizerConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = lr_schedule(cfg, total_steps)
    parts = []
    if cfg.grad_clip:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    parts.append(optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay,
                             mask=lambda p: decay_mask(p, cfg.decay_norms_and_embeddings)))
    return optax.chain(*parts), schedule
