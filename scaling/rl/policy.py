"""The policy side of GRPO: turning rollouts into a training batch, log-probs, and the compiled update."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from scaling.config.model import ModelConfig
from scaling.config.rl import GRPOConfig
from scaling.model import token_logprobs
from scaling.model.loss import moe_aux_loss
from scaling.model.moe import with_updated_router_biases
from scaling.parallel.mesh import traced_on
from scaling.rl.grpo import grpo_loss
from scaling.train.optim import scaled_updates
from scaling.train.step import batch_spec


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


def sequence_logprobs(graphdef, params, non_trainable, batch) -> tuple[jax.Array, dict]:
    """log p of every target token, and the model's aux outputs (MoE router losses and expert load)."""
    model = nnx.merge(graphdef, params, non_trainable)
    logits, aux, _ = model(batch["inputs"], batch["positions"], kv_valid_BxT=batch["kv_valid"])
    return token_logprobs(logits, batch["targets"])[0], aux


@dataclass
class PolicyFns:
    logprobs: Callable  # (params, non-trainable variables, batch) -> logp_BxT
    update: Callable  # (state, batch, lr) -> (state, metrics)
    place_batch: Callable  # numpy batch -> arrays sharded over the mesh's batch axes


def make_policy_fns(graphdef, tx: optax.GradientTransformation, cfg: GRPOConfig, max_new: int,
                    model_cfg: ModelConfig, mesh: Mesh | None = None, shardings=None) -> PolicyFns:
    """The compiled GRPO update and log-prob pass. On a mesh they are traced with it in context and keep the
    state's shardings (those of pretraining's `init_train_state`), the batch split over the data axes."""
    def loss_fn(params, non_trainable, batch):
        logp, aux = sequence_logprobs(graphdef, params, non_trainable, batch)
        # One epoch: old policy == current policy, so ratio = 1 with the right gradient and no extra forward.
        old = batch["old_logp"] if "old_logp" in batch else jax.lax.stop_gradient(logp)
        loss, stats = grpo_loss(logp, old, batch["advantages"], batch["mask"], cfg, max_new, batch.get("ref_logp"))
        router_loss, router_parts = moe_aux_loss(model_cfg, aux)
        return loss + router_loss, ({"pg_loss": loss, **stats, **router_parts}, aux.get("expert_load"))

    def update(state: dict[str, Any], batch, lr):
        params, non_trainable = state["params"], state["non_trainable"]
        (_, (stats, load)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, non_trainable, batch)
        updates, opt_state = tx.update(grads, state["opt_state"], params)
        params = optax.apply_updates(params, scaled_updates(updates, lr))
        non_trainable = with_updated_router_biases(model_cfg, non_trainable, load)
        metrics = {**stats, "grad_norm": optax.tree.norm(grads)}
        new_state = {**state, "params": params, "opt_state": opt_state, "non_trainable": non_trainable,
                     "step": state["step"] + 1}
        return new_state, metrics

    def logprobs(params, non_trainable, batch):
        return sequence_logprobs(graphdef, params, non_trainable, batch)[0]

    if mesh is None:
        return PolicyFns(jax.jit(logprobs), jax.jit(update, donate_argnums=0), batch_placer(None))
    rows = NamedSharding(mesh, batch_spec(mesh))
    replicated = NamedSharding(mesh, P())
    return PolicyFns(
        jax.jit(traced_on(mesh, logprobs), out_shardings=rows),
        jax.jit(traced_on(mesh, update), donate_argnums=0, out_shardings=(shardings, replicated)),
        batch_placer(mesh))


def batch_placer(mesh: Mesh | None) -> Callable[[dict], dict]:
    """How rollouts, updates and evaluation put a numpy batch on the mesh: [B, T] arrays with their rows over
    the data axes, [B] arrays (advantages) alike; without a mesh the batch stays as it is."""
    if mesh is None:
        return lambda batch: batch
    rows = NamedSharding(mesh, batch_spec(mesh))
    per_row = NamedSharding(mesh, P(*batch_spec(mesh)[:1]))
    return lambda batch: {k: jax.device_put(v, rows if np.ndim(v) == 2 else per_row) for k, v in batch.items()}
