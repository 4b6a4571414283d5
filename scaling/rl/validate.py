"""Checks of an RL task against the model it starts from, run before anything is trained or evaluated.

The RL loop, sweep planning (`kind: rlvr`, at submit) and the evaluations of `scaling eval` and
`scaling compare` all make them, so a task the model cannot read fails the same way everywhere.
"""
from __future__ import annotations

from scaling.config.run import RunConfig
from scaling.errors import UserError
from scaling.train.loop import check_vocab


def check_task_fits_model(task, tokenizer, model_run: RunConfig, max_prompt_tokens: int) -> None:
    """`model_run`: the pretraining config of the model (its vocabulary and tokenizer)."""
    check_vocab(model_run, tokenizer)
    for problem in task.eval_problems(16):
        ids = tokenizer.encode(problem.prompt)
        if tokenizer.decode(ids) != problem.prompt:
            raise UserError(f"task {task.name}: prompts do not round-trip through the model's {tokenizer.name} tokenizer")
        if len(ids) > max_prompt_tokens:
            raise UserError(f"grpo.max_prompt_tokens: {max_prompt_tokens} is shorter than a {task.name} prompt "
                            f"({len(ids)} tokens)")


def cut_off_answers_warning(task, tokenizer, max_new: int, n: int = 256) -> str | None:
    """A cap on new tokens below the length of the task's own answers cuts correct answers off, and
    they earn no reward: the policy is then pushed to shorter, often worse, answers without anyone
    noticing. Not an error: capping length can be the point (inference-time compute)."""
    lengths = [len(tokenizer.encode(task.reference_completion(p))) for p in task.eval_problems(n)]
    cut = sum(length > max_new for length in lengths)
    if not cut:
        return None
    return (f"sampling.max_new={max_new} cuts off {cut} of {len(lengths)} reference answers of task "
            f"{task.name} (the longest is {max(lengths)} tokens); a cut-off answer earns no reward")
