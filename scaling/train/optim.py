"""AdamW with the lab's schedules: warmup then cosine, WSD (warmup-stable-decay) or constant.

Warmup given as a fraction (< 1) is a share of all steps; as an integer it is absolute, which is what
WSD forks need so that every branch has the same schedule up to its cooldown (Hägele et al. 2024).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import optax
from flax import nnx

from scaling.config.run import OptimizerConfig


def warmup_steps(cfg: OptimizerConfig, total_steps: int) -> int:
    return int(cfg.warmup) if cfg.warmup >= 1 else int(round(cfg.warmup * total_steps))


def decay_start(cfg: OptimizerConfig, total_steps: int) -> int:
    """First step of the WSD cooldown."""
    return total_steps - int(round(cfg.decay_fraction * total_steps))


def lr_schedule(cfg: OptimizerConfig, total_steps: int) -> Callable[[int], float]:
    """step -> learning rate, evaluated on the host: the compiled step takes the value as an argument."""
    peak, final = cfg.lr, cfg.lr * cfg.final_lr_fraction
    warm = min(warmup_steps(cfg, total_steps), total_steps)
    start = decay_start(cfg, total_steps)

    def schedule(step: int) -> float:
        step = int(step)
        if step < warm:
            return peak * (step + 1) / max(warm, 1)
        if cfg.schedule == "constant":
            return peak
        if cfg.schedule == "cosine":
            t = min(max((step - warm) / max(total_steps - warm, 1), 0.0), 1.0)
            return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * t))
        if step < start:  # wsd
            return peak
        t = min((step - start) / max(total_steps - start, 1), 1.0)
        return final + (peak - final) * (1 - (t if cfg.decay_shape == "linear" else math.sqrt(t)))

    return schedule


def decay_mask(params, decay_norms_and_embeddings: bool):
    """Which parameters AdamW decays: all of them, or all but those the model created with
    `weight_decay=False` (norm scales and embedding tables, model/decoder.py)."""
    def flag(variable):
        decayed = decay_norms_and_embeddings or variable.get_metadata().get("weight_decay", True)
        return jax.tree.map(lambda _: decayed, variable)  # the Variable's shape of tree, holding a bool

    return jax.tree.map(flag, params, is_leaf=lambda x: isinstance(x, nnx.Variable))


def make_optimizer(cfg: OptimizerConfig, total_steps: int) -> tuple[optax.GradientTransformation,
                                                                    Callable[[int], float]]:
    """AdamW at unit learning rate, and the schedule. The compiled step multiplies the update by the
    step's learning rate, passed in as an argument: closed over, the schedule's peak, warmup and total
    steps would be constants of the compiled program, and every run of a sweep (same shapes, other
    budget) would compile its own instead of hitting the persistent cache."""
    parts = []
    if cfg.grad_clip:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    parts.append(optax.adamw(1.0, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay,
                             mask=lambda p: decay_mask(p, cfg.decay_norms_and_embeddings)))
    return optax.chain(*parts), lr_schedule(cfg, total_steps)


def scaled_updates(updates, lr):
    """AdamW's unit-rate update times the step's learning rate."""
    return jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
