"""`run_training`: one pretraining run from config to a finished run directory, resumable at any point."""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding

from scaling.config.run import RunConfig
from scaling.data import build_eval_set, build_train_iterator, get_tokenizer
from scaling.errors import UserError
from scaling.model import build_model
from scaling.model.attention_impl import resolve_attention
from scaling.parallel import is_primary, make_mesh, on_primary
from scaling.parallel.distributed import check_batch_split, compiled_together
from scaling.runtime import enable_compilation_cache
from scaling.train.budget import Budget, plan_budget
from scaling.train.cadence import Cadence, divergence, end_diverged
from scaling.train.checkpoint import Checkpointer, abstract_like
from scaling.train.memory import check_fits
from scaling.train.metrics import MetricsLog, NoMetricsLog, Progress, device_description, device_peak_flops
from scaling.train.optim import make_optimizer
from scaling.train.rundir import claim_run_dir, holds_run_dir_locks, read_summary, write_summary
from scaling.train.step import (CompiledSteps, batch_spec, compile_steps, data_parallel_size, init_train_state,
                                 stacked_sharding)

LN2 = math.log(2.0)


def check_vocab(cfg: RunConfig, tokenizer) -> None:
    if tokenizer.vocab_size > cfg.model.V:
        raise UserError(f"model.V: {cfg.model.V} is smaller than the {tokenizer.name} tokenizer's vocabulary "
                        f"({tokenizer.vocab_size}): set model.V to at least {tokenizer.vocab_size}")


def check_run(cfg: RunConfig):
    """Every check of bad input that needs no data; returns the budget, the mesh and the tokenizer."""
    budget = plan_budget(cfg)
    tokenizer = get_tokenizer(cfg.data)
    check_vocab(cfg, tokenizer)
    mesh = make_mesh(cfg.mesh)
    check_fits(cfg.model, budget.counts.n_params, mesh)  # before compiling: XLA aborts on what cannot fit
    dp = data_parallel_size(mesh)
    micro = cfg.train.batch_size // cfg.train.grad_accum
    if micro % dp:
        raise UserError(f"train.batch_size: {cfg.train.batch_size} sequences / grad_accum={cfg.train.grad_accum} "
                        f"is not divisible by the {dp}-way data-parallel mesh")
    check_batch_split(NamedSharding(mesh, batch_spec(mesh)), cfg.train.batch_size)
    resolve_attention(cfg.model, seq_len=cfg.train.seq_len)  # a kernel it lacks: refused here, not mid-trace
    return budget, mesh, tokenizer


def prepare(cfg: RunConfig):
    """Everything that can fail on bad input, done before the run directory is touched."""
    budget, mesh, tokenizer = check_run(cfg)
    dp = data_parallel_size(mesh)
    train_iter = build_train_iterator(cfg.data, seq_len=cfg.train.seq_len, batch_size=cfg.train.batch_size,
                                      seed=cfg.train.seed, tokenizer=tokenizer)
    eval_set = build_eval_set(cfg.data, seq_len=cfg.train.seq_len, batch_size=max(dp, min(cfg.train.batch_size, 32)),
                              n_batches=cfg.train.eval_batches, tokenizer=tokenizer)
    return budget, mesh, train_iter, eval_set


def global_batch(local: dict, sharding) -> dict:
    """The global batch array from this process's rows (the data iterator reads only those)."""
    if jax.process_count() == 1:
        return jax.device_put(local, sharding)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def host_batch(batch: dict, sharding) -> dict:
    """A batch every process holds whole (the eval set is the same on every host) as a global array: each
    process puts the rows of its own devices (`device_put` of host data is for one process only)."""
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    return {k: jax.make_array_from_callback(v.shape, sharding, lambda index, v=v: v[index]) for k, v in batch.items()}


def held_out_loss(steps, state, eval_set, batch_sharding) -> tuple[float, float]:
    """Mean next-token loss (nats) over the held-out set, and the same in bits per byte."""
    total, count = 0.0, 0.0
    for batch in eval_set:
        nll, n = steps.eval_step(state["params"], state["non_trainable"], host_batch(batch, batch_sharding))
        total += float(nll)
        count += float(n)
    loss = total / count
    return loss, loss / LN2 / eval_set.bytes_per_token


# A sweep worker trains run after run in one process; runs of one model and optimizer (other budgets,
# seeds, data) reuse the jitted steps instead of tracing and lowering them again (~1 s on CPU).
_STEPS: dict[tuple, CompiledSteps] = {}
_STEPS_KEPT = 8
AUTO_STEPS_PER_CALL = 16


def _compiled_steps(cfg: RunConfig, graphdef, shardings, tx, mesh) -> CompiledSteps:
    """The jitted train and eval steps for this run. Everything they close over (graphdef, shardings, the
    optimizer transformation, the objective) is fixed by the model and optimizer configs, the mesh and grad_accum;
    the learning-rate schedule is an argument of the step."""
    per_call = steps_per_call(cfg, mesh)
    key = (cfg.model.model_dump_json(), cfg.optimizer.model_dump_json(), mesh, cfg.train.grad_accum, per_call)
    if key not in _STEPS:
        if len(_STEPS) >= _STEPS_KEPT:
            _STEPS.pop(next(iter(_STEPS)))
        _STEPS[key] = compile_steps(cfg.model, graphdef, shardings, tx, mesh, cfg.train.grad_accum, per_call)
    return _STEPS[key]


def steps_per_call(cfg: RunConfig, mesh) -> int:
    """`train.steps_per_call`, with "auto" resolved: several steps per call on a single CPU device, where the
    host's share of a small model's step is largest and the gain is measured; one step per call elsewhere."""
    per_call = cfg.train.steps_per_call
    if per_call != "auto":
        return per_call
    one_device = jax.process_count() == 1 and (mesh is None or mesh.size == 1)
    return AUTO_STEPS_PER_CALL if one_device and jax.default_backend() == "cpu" else 1


def take_steps(steps: CompiledSteps, state, train_iter, schedule, step: int, n: int):
    """Steps step+1 .. step+n in one call when the program takes several; returns (state, last step's metrics).
    The iterator advances exactly n batches (its checkpointed position stays exact); the program's other
    K - n slots get copies of the last batch, which the loop on the device does not reach."""
    if steps.train_steps is None:
        batch = global_batch(next(train_iter), steps.batch_sharding)
        return steps.train_step(state, batch, np.float32(schedule(step)))
    local = [next(train_iter) for _ in range(n)]
    local += [local[-1]] * (steps.steps_per_call - n)
    stacked = {k: np.stack([b[k] for b in local]) for k in local[0]}
    batches = global_batch(stacked, stacked_sharding(steps.batch_sharding))
    lrs = np.zeros(steps.steps_per_call, np.float32)
    lrs[:n] = [schedule(step + i) for i in range(n)]
    return steps.train_steps(state, batches, lrs, np.int32(n))


def summary_of(cfg: RunConfig, budget: Budget, status: str, meta: dict, **extra) -> dict:
    c = budget.counts
    done_tokens = meta["step"] * cfg.train.batch_tokens
    last_eval = meta["eval_history"][-1] if meta["eval_history"] else {}
    return {
        "status": status,
        "model": cfg.model.name,
        "n_params": c.n_params,
        "n_params_nonembedding": c.n_nonembedding,
        "n_params_active": c.n_active,
        "n_params_active_nonembedding": c.n_active_nonembedding,
        "seq_len": cfg.train.seq_len,
        "batch_size": cfg.train.batch_size,
        "data": cfg.data.source,
        "step": meta["step"],
        "steps": budget.steps,
        "tokens": done_tokens,
        "flops_6n": done_tokens * c.train_flops_per_token_6n,
        "flops_full": done_tokens * c.train_flops_per_token_full,
        "flop_convention": cfg.train.flop_convention,
        "flops": done_tokens * c.train_flops_per_token(cfg.train.flop_convention),
        "loss": meta.get("loss"),
        "eval_loss": last_eval.get("eval_loss"),
        "eval_bpb": last_eval.get("eval_bpb"),
        "wall_s": meta["wall_s"],
        "device": device_description(),
        # the kernel "auto" picked here (config.yaml says what was set)
        "attention": resolve_attention(cfg.model, seq_len=cfg.train.seq_len),
        "eval_history": meta["eval_history"],
        **extra,
    }


@holds_run_dir_locks  # a second process training the same --out is refused while this one runs
def run_training(cfg: RunConfig, out_dir: str | Path, quiet: bool = False) -> dict:
    """Train (or resume) the run in `out_dir`; returns its summary. Raises RunFailed if it diverges.
    `quiet` silences progress output without changing the run's config (and so its identity).
    In a multi-process run every process calls this; process 0 alone writes the run directory's files
    (Orbax checkpoints are written by all: each saves the shards its devices hold)."""
    enable_compilation_cache()
    run_dir = Path(out_dir)
    budget, mesh, train_iter, eval_set = prepare(cfg)
    on_primary(lambda: claim_run_dir(run_dir, cfg))
    previous = read_summary(run_dir)
    if previous and previous.get("status") == "done":
        return previous

    t = cfg.train
    model = build_model(cfg.model, mesh, seed=t.seed)
    tx, schedule = make_optimizer(cfg.optimizer, budget.steps)
    graphdef, state, shardings = init_train_state(model, tx, mesh)
    del model
    steps = _compiled_steps(cfg, graphdef, shardings, tx, mesh)
    steps = dataclasses.replace(steps, train_step=compiled_together(steps.train_step, "train_step"),
                                eval_step=compiled_together(steps.eval_step, "eval_step"),
                                train_steps=steps.train_steps and compiled_together(steps.train_steps, "train_steps"))

    keep_steps = [s for s in t.keep_steps if s < budget.steps]
    ckpt = Checkpointer(run_dir / "checkpoints", keep=t.keep_checkpoints, keep_steps=keep_steps)
    cadence = Cadence(budget.steps, t.log_every, t.eval_every, t.checkpoint_every, keep=tuple(keep_steps))
    meta = {"step": 0, "wall_s": 0.0, "loss": None, "eval_history": []}
    restored = ckpt.restore_latest(abstract_like(state), train_iter)
    if restored is not None:
        state, meta = restored
    elif t.fork_from is not None:
        state, meta = _restore_fork(t.fork_from, state, train_iter)
    start = int(meta["step"])

    primary = is_primary()
    log = MetricsLog(run_dir, start, tensorboard=t.tensorboard, wandb=t.wandb, config=cfg.model_dump(mode="json")) \
        if primary else NoMetricsLog()
    progress = Progress(budget.steps, start, enabled=t.progress and not quiet and primary, label=cfg.model.name)
    peak = device_peak_flops()
    per_token_full = budget.counts.train_flops_per_token_full
    reason = None  # why the run diverged, if it did
    t_run, t_log, step_log = time.time(), time.time(), start
    wall_before = meta["wall_s"]
    if start == 0:
        progress.note(f"{cfg.model.name}: {budget.counts.n_params / 1e6:.2f}M params, {budget.steps} steps, "
                      f"{budget.tokens:.3g} tokens, {budget.flops(t.flop_convention):.3g} FLOPs [{t.flop_convention}]")
    try:
        done = start
        while done < budget.steps:
            n = cadence.chunk(done, steps.steps_per_call)
            state, metrics = take_steps(steps, state, train_iter, schedule, done, n)
            done += n
            due = cadence.at(done)
            if not due:
                continue
            metrics = {k: float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}
            reason = divergence(metrics, "loss", done, limit=t.diverge_loss)
            if reason is not None:
                break
            now = time.time()
            tokens_per_s = (done - step_log) * t.batch_tokens / max(now - t_log, 1e-9)
            t_log, step_log = now, done
            record = {"step": done, "tokens": done * t.batch_tokens,
                      "flops_6n": done * t.batch_tokens * budget.counts.train_flops_per_token_6n,
                      "flops_full": done * t.batch_tokens * per_token_full, **metrics,
                      "tokens_per_s": tokens_per_s, "model_flops_per_s": tokens_per_s * per_token_full,
                      "mfu": tokens_per_s * per_token_full / peak if peak else None}
            meta["loss"] = metrics["loss"]
            if due.eval:
                eval_loss, eval_bpb = held_out_loss(steps, state, eval_set, steps.batch_sharding)
                record |= {"eval_loss": eval_loss, "eval_bpb": eval_bpb}
                meta["eval_history"].append({k: record[k] for k in ("step", "tokens", "flops_6n", "flops_full")}
                                            | {"eval_loss": eval_loss, "eval_bpb": eval_bpb})
                progress.note(f"step {done}/{budget.steps}  loss {metrics['loss']:.4f}  eval {eval_loss:.4f} "
                              f"({eval_bpb:.3f} bits/byte)  {tokens_per_s:,.0f} tok/s")
            log.write(record)
            progress.update(done, f"loss {metrics['loss']:.3f} {tokens_per_s:,.0f} tok/s")
            if due.checkpoint:
                meta = {**meta, "step": done, "wall_s": wall_before + time.time() - t_run}
                ckpt.save(done, state, train_iter, meta)
    finally:
        ckpt.close()
        log.close()
        progress.close()

    meta = {**meta, "wall_s": wall_before + time.time() - t_run}
    if reason is not None:
        end_diverged(run_dir, summary_of(cfg, budget, "diverged", meta), reason)
    summary = summary_of(cfg, budget, "done", meta)
    if primary:
        write_summary(run_dir, summary)
    return summary


def _restore_fork(fork, state, train_iter):
    """Branch from another run's checkpoint (WSD cooldowns): same params, optimizer and data position."""
    src = Path(fork.run_dir) / "checkpoints"
    if not src.is_dir():
        raise UserError(f"train.fork_from.run_dir: {fork.run_dir} has no checkpoints")
    source = Checkpointer(src, read_only=True)
    if fork.step not in source.steps():
        raise UserError(f"train.fork_from.step: {fork.run_dir} has no checkpoint at step {fork.step} "
                        f"(has {source.steps()})")
    state, meta = source.restore(fork.step, abstract_like(state), train_iter)
    source.close()
    return state, meta
