"""Verifiable tasks for RL: `get_task(name, **params)` builds one.

Built in: `arithmetic` (params: the fields of `MathConfig` — min_digits, max_digits, min_steps,
max_steps, operations, worked_fraction, seed — plus `format_reward`). Optional: `reasoning-gym`
(params: dataset, eval_size, format_reward, and the dataset's own config fields).
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from scaling.config.base import format_validation_error
from scaling.config.data import MathConfig
from scaling.errors import UserError
from scaling.rl.tasks.arithmetic import ArithmeticTask
from scaling.rl.tasks.base import Problem, Task


def _arithmetic(format_reward: float = 0.0, **params: Any) -> Task:
    try:
        math = MathConfig.model_validate(params)
    except ValidationError as e:
        raise UserError(f"task arithmetic: {format_validation_error(e)}") from None
    if not 0.0 <= format_reward < 1.0:
        raise UserError(f"task arithmetic: format_reward must be in [0, 1), got {format_reward}")
    return ArithmeticTask(math, format_reward)


def _reasoning_gym(**params: Any) -> Task:
    from scaling.rl.tasks.reasoning_gym import ReasoningGymTask

    return ReasoningGymTask(**params)


TASKS: dict[str, Callable[..., Task]] = {
    "arithmetic": _arithmetic,
    "reasoning-gym": _reasoning_gym,
}


def get_task(name: str, **params: Any) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; available: {', '.join(sorted(TASKS))}")
    return TASKS[name](**params)


__all__ = ["ArithmeticTask", "Problem", "TASKS", "Task", "get_task"]
