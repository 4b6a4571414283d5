"""`run_rl`: GRPO on a verifiable task, starting from a pretraining run, logging accuracy vs RL FLOPs."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config.rl import RLConfig
from scaling.errors import UserError
from scaling.data import get_tokenizer
from scaling.model.accounting import count_model
from scaling.parallel import make_mesh
from scaling.rl.checkpoints import load_policy, load_policy_config
from scaling.rl.compute import step_flops
from scaling.rl.evaluate import EvalSettings, evaluate_policy
from scaling.rl.grpo import group_advantages, informative_groups, weight_negatives
from scaling.rl.policy import make_policy_fns, rollout_batch
from scaling.rl.tasks import get_task
from scaling.rl.validate import check_task_fits_model, cut_off_answers_warning
from scaling.runtime import enable_compilation_cache
from scaling.sampling import decode_completions, generate, left_pad
from scaling.train.cadence import Cadence, divergence, end_diverged
from scaling.train.checkpoint import Checkpointer, abstract_like
from scaling.train.metrics import MetricsLog, Progress, device_description
from scaling.train.optim import make_optimizer
from scaling.train.rundir import claim_run_dir, holds_run_dir_locks, read_summary, write_summary
from scaling.train.step import data_parallel_size, init_train_state


@holds_run_dir_locks  # a second process on the same --out is refused while this one runs
def run_rl(cfg: RLConfig, init_dir: str | Path, out_dir: str | Path, quiet: bool = False) -> dict:
    enable_compilation_cache()
    task = get_task(cfg.task.name, **cfg.task.params)
    grpo = cfg.grpo
    init_cfg = load_policy_config(Path(init_dir))
    tokenizer = get_tokenizer(init_cfg.data)
    check_task_fits_model(task, tokenizer, init_cfg, grpo.max_prompt_tokens)
    mesh = make_mesh(cfg.mesh)
    check_rollouts_divide(grpo, mesh)
    policy0 = load_policy(init_dir, cfg.mesh)
    graphdef = policy0.graphdef
    init_summary = read_summary(Path(init_dir)) or {}
    run_dir = Path(out_dir)
    claim_run_dir(run_dir, cfg.model_copy(update={"init_run": str(Path(init_dir).resolve())}))
    previous = read_summary(run_dir)
    if previous and previous.get("status") == "done":
        return previous
    warning = cut_off_answers_warning(task, tokenizer, cfg.sampling.max_new)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)

    counts = count_model(init_cfg.model, grpo.max_prompt_tokens + cfg.sampling.max_new)
    total_steps = cfg.budget.steps if cfg.budget.steps is not None else _steps_upper_bound(cfg, counts)
    tx, schedule = make_optimizer(cfg.optimizer, total_steps)
    # Pretraining's state construction: the same shardings, and its checkpoint layout.
    _, state, shardings = init_train_state(nnx.merge(graphdef, policy0.params, policy0.non_trainable), tx, mesh)
    del policy0
    ref_params = jax.tree.map(jnp.copy, state["params"]) if grpo.kl_beta > 0 else None
    policy = make_policy_fns(graphdef, tx, grpo, cfg.sampling.max_new, init_cfg.model, mesh, shardings)

    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.keep_checkpoints)
    cadence = Cadence(total_steps, cfg.log_every, cfg.eval.every, cfg.checkpoint_every)
    init_flops = {"6n": init_summary.get("flops_6n"), "full": init_summary.get("flops_full")}
    meta = {"step": 0, "wall_s": 0.0, "flops": _zero_flops(), "tokens_generated": 0, "eval_history": []}
    found = ckpt.restore_latest(abstract_like(state), None)
    if found is not None:
        state, meta = found
    start = int(meta["step"])
    # No checkpoint: drop a killed try's step-0 row.
    log = MetricsLog(run_dir, start if found is not None else -1, tensorboard=cfg.tensorboard, wandb=cfg.wandb,
                     config=cfg.model_dump(mode="json"), where="wandb")
    progress = Progress(total_steps, start, enabled=cfg.progress and not quiet, label=f"rl {task.name}")
    eval_settings = EvalSettings.of(cfg)
    eval_problems = task.eval_problems(cfg.eval.problems)
    t_run, wall_before = time.time(), meta["wall_s"]

    def record_eval(step: int) -> dict:
        # flops_full/flops_6n/tokens mirror the pretraining eval history, so sweeps record RL curves alike.
        record = {"step": step, "rl_flops": meta["flops"]["total"], "rl_flops_6n": meta["flops"]["total_6n"],
                  "flops_full": meta["flops"]["total"], "flops_6n": meta["flops"]["total_6n"],
                  "tokens": meta["tokens_generated"]}
        policy_states = (state["params"], state["non_trainable"])
        record |= evaluate_policy(graphdef, policy_states, tokenizer, task, eval_problems, eval_settings, step, mesh)
        meta["eval_history"].append(record)
        progress.note(f"step {step}: pass@1 {record['accuracy']:.3f} at {record['rl_flops']:.3g} RL FLOPs")
        return record

    if start == 0:
        log.write(record_eval(0))
    done = start  # RL steps taken; state["step"] counts optimizer updates (grpo.epochs per RL step)
    diverged = None  # why the run stopped early, if its loss or gradient stopped being finite
    try:
        for step in range(start, total_steps):
            if cfg.budget.flops is not None and meta["flops"]["total"] >= cfg.budget.flops:
                break
            problems = task.train_problems(cfg.seed, grpo.prompts_per_step, start=step * grpo.prompts_per_step)
            prompt_ids = [tokenizer.encode(p.prompt) for p in problems for _ in range(grpo.group_size)]
            toks, valid = left_pad(prompt_ids, grpo.max_prompt_tokens, tokenizer.pad_id)
            key = jax.random.fold_in(jax.random.key(cfg.seed), step)
            prompts = policy.place_batch({"tokens": toks, "valid": valid})  # rollouts split over the data axes
            with jax.set_mesh(mesh):
                out, lengths, _ = generate(graphdef, (state["params"], state["non_trainable"]), prompts["tokens"],
                                           prompts["valid"], key, sampling=cfg.sampling, eos_id=tokenizer.eos_id,
                                           pad_id=tokenizer.pad_id)
            out, lengths = np.asarray(out), np.asarray(lengths)
            texts = decode_completions(tokenizer, out, lengths)
            repeated = [p for p in problems for _ in range(grpo.group_size)]
            rewards = np.array([task.reward(t, p) for t, p in zip(texts, repeated)], np.float32)
            batch = rollout_batch(toks, valid, out, lengths)
            advantages = group_advantages(jnp.asarray(rewards), grpo.group_size, grpo.advantage)
            batch["advantages"] = np.asarray(weight_negatives(advantages, grpo.negative_weight))
            if grpo.dynamic_sampling:
                informative = np.asarray(informative_groups(jnp.asarray(rewards), grpo.group_size))
                batch["mask"] = batch["mask"] * informative[:, None]
            batch = policy.place_batch(batch)
            if grpo.epochs > 1:
                batch["old_logp"] = policy.logprobs(state["params"], state["non_trainable"], batch)
            if grpo.kl_beta > 0:
                batch["ref_logp"] = policy.logprobs(ref_params, state["non_trainable"], batch)
            lr = np.float32(schedule(step))
            for _ in range(grpo.epochs):
                state, metrics = policy.update(state, batch, lr)
            spent = step_flops(counts, grpo, valid.sum(1), lengths)
            meta["flops"] = {k: meta["flops"][k] + spent[k] for k in meta["flops"]}
            meta["tokens_generated"] += int(lengths.sum())
            done = step + 1
            due = cadence.at(done)
            if due:  # never checkpoint a state not checked finite
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                diverged = divergence(metrics, "pg_loss", done)
                if diverged is not None:
                    break
            if due.log or due.eval:
                record = {"step": done, "rl_flops": meta["flops"]["total"], "rl_flops_6n": meta["flops"]["total_6n"],
                          **{f"flops_{k}": v for k, v in meta["flops"].items() if k not in ("total", "total_6n")},
                          "tokens_generated": meta["tokens_generated"], "reward": float(rewards.mean()),
                          "train_accuracy": float((rewards == 1.0).mean()), "response_len": float(lengths.mean()),
                          "lr": float(lr), **metrics}
                if due.eval:
                    record |= {k: v for k, v in record_eval(done).items() if k not in record}
                log.write(record)
                progress.update(done, f"reward {record['reward']:.3f}")
            if due.checkpoint:
                meta = {**meta, "step": done, "wall_s": wall_before + time.time() - t_run}
                ckpt.save(done, state, None, meta)
        if diverged is None and (not meta["eval_history"] or meta["eval_history"][-1]["step"] != done):
            log.write(record_eval(done))
        meta = {**meta, "step": done, "wall_s": wall_before + time.time() - t_run}
        if diverged is None and meta["step"] not in ckpt.steps():  # stopped by the FLOP budget between checkpoints
            ckpt.save(meta["step"], state, None, meta)
    finally:
        ckpt.close()
        log.close()
        progress.close()

    history = meta["eval_history"]
    summary = {
        "status": "done" if diverged is None else "diverged", "kind": "rlvr", "task": task.name,
        "task_params": cfg.task.params,
        "init_run": str(Path(init_dir).resolve()), "model": init_cfg.model.name,
        "n_params": counts.n_params, "n_params_nonembedding": counts.n_nonembedding, "n_params_active": counts.n_active,
        "init_flops_6n": init_flops["6n"], "init_flops_full": init_flops["full"],
        "steps": meta["step"], "rl_flops": meta["flops"]["total"], "rl_flops_6n": meta["flops"]["total_6n"],
        # The registry contract: flops_* of an RL run are its RL FLOPs; init_flops the pretraining FLOPs.
        "flops_full": meta["flops"]["total"], "flops_6n": meta["flops"]["total_6n"], "flop_convention": "full",
        "tokens": meta["tokens_generated"], "init_flops": init_flops["full"],
        "flops_breakdown": meta["flops"], "tokens_generated": meta["tokens_generated"],
        "initial_accuracy": history[0]["accuracy"], "accuracy": history[-1]["accuracy"],
        "eval_history": history, "wall_s": meta["wall_s"], "device": device_description(),
        "warnings": [warning] if warning else [],
    }
    if diverged is not None:
        summary["steps"] = done
        end_diverged(run_dir, summary, diverged)
    write_summary(run_dir, summary)
    return summary


def check_rollouts_divide(grpo, mesh) -> None:
    """Rollouts and updates split their batch over the mesh's data axes."""
    dp = data_parallel_size(mesh)
    if (grpo.prompts_per_step * grpo.group_size) % dp:
        raise UserError(f"grpo: prompts_per_step x group_size = {grpo.prompts_per_step * grpo.group_size} sequences "
                        f"a step is not divisible by the {dp}-way data-parallel mesh")


def _zero_flops() -> dict:
    return {"rollout": 0.0, "update": 0.0, "old_policy": 0.0, "reference": 0.0, "total": 0.0, "total_6n": 0.0}


def _steps_upper_bound(cfg: RLConfig, counts) -> int:
    """With only a FLOP budget: the most steps it could buy (every completion one token long)."""
    n = cfg.grpo.prompts_per_step * cfg.grpo.group_size
    cheapest = step_flops(counts, cfg.grpo, np.ones(n, int), np.ones(n, int))["total"]
    return max(1, math.ceil(cfg.budget.flops / cheapest))
