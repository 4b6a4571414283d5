"""Test-time compute evaluation of a run directory (used by `scaling eval` and `scaling compare`)."""
from __future__ import annotations

import jax

from scaling.rl.checkpoints import load_policy
from scaling.rl.evaluate import Evaluator
from scaling.rl.loop import check_task_fits_model
from scaling.rl.sampler import SamplingParams
from scaling.rl.tasks import get_task


def evaluate_run(run_dir, task_name: str, task_params: dict, *, problems: int, k: int, temperature: float,
                 max_new: int, caps: list[int], prompt_tokens: int, batch_size: int = 256, seed: int = 0) -> dict:
    task = get_task(task_name, **task_params)
    policy = load_policy(run_dir)
    check_task_fits_model(task, policy.tokenizer, policy.model_cfg, prompt_tokens)
    states = (policy.params, policy.rest)
    held_out = task.eval_problems(problems)
    evaluator = Evaluator(policy.graphdef, policy.tokenizer, task, prompt_tokens, min(batch_size, problems * k))
    metrics = {}
    for cap in caps:
        metrics[f"greedy@len{cap}"] = evaluator.greedy_accuracy(states, held_out, cap)[0]
    greedy_eval = Evaluator(policy.graphdef, policy.tokenizer, task, prompt_tokens, min(batch_size, problems))
    metrics["pass@1 (greedy)"] = greedy_eval.greedy_accuracy(states, held_out, max_new)[0]
    metrics |= evaluator.sampled(states, held_out, k, SamplingParams(max_new=max_new, temperature=temperature),
                                 jax.random.key(seed))
    return {"run_dir": str(run_dir), "step": policy.step, "task": task_name, "task_params": task_params,
            "problems": problems, "k": k, "temperature": temperature, "metrics": metrics}
