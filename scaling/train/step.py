"""The compiled training and eval steps: pure functions over split NNX state under one `jax.jit`.

`nnx.jit` would walk the module graph in Python on every call; a sweep of many small models spends
real time there. Instead the model is split once into (graphdef, params, non_trainable) and the step closes
over the graphdef. `non_trainable` holds the other variables (the MoE router bias), updated outside the optimizer.
Buffers are donated, and in/out shardings are stated explicitly so nothing is resharded between steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from scaling.config.model import ModelConfig
from scaling.model import Decoder, lm_objective, token_logprobs
from scaling.model.moe import with_updated_router_biases
from scaling.parallel import state_shardings
from scaling.parallel.mesh import BATCH_AXES, traced_on
from scaling.runtime import cpu_compiler_options
from scaling.train.optim import scaled_updates

# {"params": nnx.State, "opt_state": optax state, "non_trainable": nnx.State, "step": int32}
TrainState = dict[str, Any]


@dataclass
class CompiledSteps:
    graphdef: Any
    train_step: Callable  # (state, batch, lr) -> (state, metrics)
    eval_step: Callable  # (params, non_trainable, batch) -> (sum_nll, n_tokens)
    state_shardings: Any
    batch_sharding: NamedSharding
    # (state, batches, lrs, n) -> (state, metrics of the n-th step): the first n of K stacked batches in one call
    train_steps: Callable | None = None
    steps_per_call: int = 1


def batch_spec(mesh: Mesh | None) -> P:
    if mesh is None:
        return P()
    axes = tuple(a for a in BATCH_AXES if mesh.shape[a] > 1)
    return P(axes or None, None)


def stacked_sharding(batch_sharding: NamedSharding | None) -> NamedSharding | None:
    """The sharding of K batches stacked on a new leading axis (one call of `train_steps`)."""
    if batch_sharding is None:
        return None
    return NamedSharding(batch_sharding.mesh, P(None, *batch_sharding.spec))


def data_parallel_size(mesh: Mesh | None) -> int:
    if mesh is None:
        return 1
    size = 1
    for a in BATCH_AXES:
        size *= mesh.shape[a]
    return size


def init_train_state(model: Decoder, tx: optax.GradientTransformation, mesh: Mesh | None):
    """Split the model and build the optimizer state with the same shardings as the parameters."""
    graphdef, params, non_trainable = nnx.split(model, nnx.Param, ...)
    if mesh is None:
        opt_state = jax.jit(tx.init)(params)
        shardings = None
    else:
        p_sh = state_shardings(params, mesh)
        n_sh = state_shardings(non_trainable, mesh)
        with jax.set_mesh(mesh):
            opt_state = jax.jit(tx.init, in_shardings=(p_sh,))(params)
        o_sh = jax.tree.map(lambda x: x.sharding, opt_state)
        shardings = {"params": p_sh, "opt_state": o_sh, "non_trainable": n_sh, "step": NamedSharding(mesh, P())}
    state = {"params": params, "opt_state": opt_state, "non_trainable": non_trainable,
             "step": jnp.zeros((), jnp.int32)}
    if mesh is not None:
        state["step"] = jax.device_put(state["step"], shardings["step"])
    return graphdef, state, shardings


def compile_steps(cfg: ModelConfig, graphdef, shardings, tx: optax.GradientTransformation,
                  mesh: Mesh | None, grad_accum: int = 1, steps_per_call: int = 1) -> CompiledSteps:
    """`train_step(state, batch, lr)`: `tx` from `make_optimizer` (unit rate), the step's lr an argument.
    With `steps_per_call` K > 1 also `train_steps(state, batches, lrs, n)`: batches and lrs stacked K deep
    (leading axis), the first n (1 <= n <= K, a traced value: one program for every n) taken in turn."""
    def objective(params, non_trainable, batch):
        model = nnx.merge(graphdef, params, non_trainable)
        logits, aux, _ = model(batch["inputs"])
        total, parts = lm_objective(cfg, logits, aux, batch["targets"], batch["mask"])
        return total, (parts, aux.get("expert_load"))

    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def train_step(state: TrainState, batch, lr):
        params, non_trainable = state["params"], state["non_trainable"]
        if grad_accum == 1:
            (_, (parts, load)), grads = grad_fn(params, non_trainable, batch)
        else:  # scan over microbatches, summing gradients and metrics
            micro = jax.tree.map(lambda x: x.reshape(grad_accum, x.shape[0] // grad_accum, *x.shape[1:]), batch)
            shapes = jax.eval_shape(grad_fn, params, non_trainable, jax.tree.map(lambda x: x[0], micro))
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0][1], shapes[1]))

            def accumulate(carry, mb):
                (_, aux), mb_grads = grad_fn(params, non_trainable, mb)
                return jax.tree.map(jnp.add, carry, (aux, mb_grads)), None

            ((parts, load), grads), _ = jax.lax.scan(accumulate, zeros, micro)
            grads, parts = jax.tree.map(lambda total: total / grad_accum, (grads, parts))
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, state["opt_state"], params)
        params = optax.apply_updates(params, scaled_updates(updates, lr))
        non_trainable = with_updated_router_biases(cfg, non_trainable, load)
        metrics = {**parts, "loss": parts["ce"], "grad_norm": grad_norm, "lr": lr}
        new_state = {"params": params, "opt_state": opt_state, "non_trainable": non_trainable,
                     "step": state["step"] + 1}
        return new_state, metrics

    def eval_step(params, non_trainable, batch):
        model = nnx.merge(graphdef, params, non_trainable)
        logits, _, _ = model(batch["inputs"])
        logp, _ = token_logprobs(logits, batch["targets"])
        return -(logp * batch["mask"]).sum(), batch["mask"].sum()

    def train_steps(state: TrainState, batches, lrs, n):
        # A while loop whose trip count is an argument: every chunk length shares one compiled program, so a
        # step gives the same numbers wherever it falls in a chunk (and a resumed run the same as an unbroken one).
        first = jax.tree.map(lambda x: x[0], batches)
        shapes = jax.eval_shape(train_step, state, first, lrs[0])[1]
        metrics = jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), shapes)

        def one(i, carry):
            return train_step(carry[0], jax.tree.map(lambda x: x[i], batches), lrs[i])

        return jax.lax.fori_loop(0, n, one, (state, metrics))

    b_sh = NamedSharding(mesh, batch_spec(mesh)) if mesh is not None else None
    options = cpu_compiler_options(mesh.size if mesh is not None else 1)
    steps_jit = None
    if mesh is None:
        train_jit = jax.jit(train_step, donate_argnums=0, compiler_options=options)
        eval_jit = jax.jit(eval_step, compiler_options=options)
        if steps_per_call > 1:
            steps_jit = jax.jit(train_steps, donate_argnums=0, compiler_options=options)
    else:
        batch_sh = {"inputs": b_sh, "targets": b_sh, "mask": b_sh}
        replicated = NamedSharding(mesh, P())
        train_jit = jax.jit(traced_on(mesh, train_step), donate_argnums=0,
                            in_shardings=(shardings, batch_sh, replicated), out_shardings=(shardings, replicated),
                            compiler_options=options)
        eval_jit = jax.jit(traced_on(mesh, eval_step),
                           in_shardings=(shardings["params"], shardings["non_trainable"], batch_sh),
                           out_shardings=replicated, compiler_options=options)
        if steps_per_call > 1:
            stacked = stacked_sharding(b_sh)
            steps_jit = jax.jit(traced_on(mesh, train_steps), donate_argnums=0,
                                in_shardings=(shardings, {k: stacked for k in batch_sh}, replicated, replicated),
                                out_shardings=(shardings, replicated), compiler_options=options)
    return CompiledSteps(graphdef, train_jit, eval_jit, shardings, b_sh, steps_jit, steps_per_call)

