"""The policy side of GRPO: turning rollouts into a training batch, log-probs, and the compiled update."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np
import optax
from flax import nnx

from scaling.config.rl import GRPOConfig
from scaling.model import token_logprobs
from scaling.rl.grpo import grpo_loss
from scaling.train.optim import scaled_updates


def rollout_batch(prompts_BxP: np.ndarray, valid_BxP: np.ndarray, completions_BxN: np.ndarray,
                  lengths_B: np.ndarray) -> dict:
    """Prompt (left-padded) + completion (right-padded) as one teacher-forced sequence per row."""
    B, P = prompts_BxP.shape
    N = completions_BxN.shape[1]
    tokens = np.concatenate([prompts_BxP, completions_BxN], axis=1)
    valid = np.concatenate([valid_BxP, np.arange(N)[None, :] < lengths_B[:, None]], axis=1)
    positions = np.maximum(np.cumsum(valid, axis=1) - 1, 0).astype(np.int32)
    j = np.arange(P + N - 1)[None, :]
    # Target j is token j+1; completion tokens sit at P .. P+len-1.
    mask = (j >= P - 1) & (j < P - 1 + lengths_B[:, None])
    return {"inputs": tokens[:, :-1].astype(np.int32), "targets": tokens[:, 1:].astype(np.int32),
            "positions": positions[:, :-1], "kv_valid": valid[:, :-1], "mask": mask.astype(np.float32)}


def sequence_logprobs(graphdef, params, non_trainable, batch) -> jax.Array:
    model = nnx.merge(graphdef, params, non_trainable)
    logits, _, _ = model(batch["inputs"], batch["positions"], kv_valid_BxT=batch["kv_valid"])
    return token_logprobs(logits, batch["targets"])[0]


@dataclass
class PolicyFns:
    logprobs: Callable  # (params, non-trainable variables, batch) -> logp_BxT
    update: Callable  # (state, batch, lr) -> (state, metrics)


def make_policy_fns(graphdef, tx: optax.GradientTransformation, cfg: GRPOConfig, max_new: int) -> PolicyFns:
    def loss_fn(params, non_trainable, batch):
        logp = sequence_logprobs(graphdef, params, non_trainable, batch)
        # One epoch: old policy == current policy, so ratio = 1 with the right gradient and no extra forward.
        old = batch["old_logp"] if "old_logp" in batch else jax.lax.stop_gradient(logp)
        return grpo_loss(logp, old, batch["advantages"], batch["mask"], cfg, max_new, batch.get("ref_logp"))

    def update(state: dict[str, Any], batch, lr):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], state["rest"], batch)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], scaled_updates(updates, lr))
        metrics = {"pg_loss": loss, "grad_norm": optax.tree.norm(grads), **stats}
        return {**state, "params": params, "opt_state": opt_state, "step": state["step"] + 1}, metrics

    logprobs = jax.jit(lambda params, non_trainable, batch: sequence_logprobs(graphdef, params, non_trainable, batch))
    return PolicyFns(logprobs, jax.jit(update, donate_argnums=0))
