"""The `arithmetic` task: the synthetic-math corpus's problems, answered in the same text format.

A model pretrained on `synthetic-math` at low difficulty meets this task's prompts in exactly the
format it has seen, so raising `max_digits`/`max_steps` gives a task it starts above zero on.
"""
from __future__ import annotations

from scaling.config.data import MathConfig
from scaling.data import arithmetic
from scaling.rl.tasks.base import Problem


class ArithmeticTask:
    """Reward 1 for the right final answer in the strict format (see `scaling.data.arithmetic`),
    `format_reward` for a well-formed wrong answer, 0 for anything unparseable."""

    name = "arithmetic"

    def __init__(self, math: MathConfig | None = None, format_reward: float = 0.0):
        if not 0.0 <= format_reward < 1.0:
            raise ValueError(f"format_reward must be in [0, 1), got {format_reward}")
        self.math = math or MathConfig()
        self.format_reward = format_reward

    @property
    def eval_set_note(self) -> str:
        """How an accuracy over `eval_problems` averages (for report labels): an equal share per step count."""
        if self.math.min_steps == self.math.max_steps:
            return ""
        return f"{self.math.min_steps}- to {self.math.max_steps}-step problems in equal shares: the mean over tiers"

    def _problem(self, p: arithmetic.ArithmeticProblem, split: str, index: int) -> Problem:
        meta = {
            "split": split,
            "index": index,
            "expression": p.expression,
            "steps": len(p.steps),
            "completion": p.completion(self.math.worked_fraction > 0),
        }
        return Problem(prompt=p.prompt, answer=str(p.answer), meta=meta)

    def train_problems(self, seed: int, n: int, start: int = 0) -> list[Problem]:
        return [
            self._problem(arithmetic.train_problem(self.math, seed, i), "train", i) for i in range(start, start + n)
        ]

    def eval_problems(self, n: int) -> list[Problem]:
        return [self._problem(p, "eval", i) for i, p in enumerate(arithmetic.eval_problems(self.math, n))]

    def reward(self, completion: str, problem: Problem) -> float:
        value = arithmetic.parse_completion(completion)
        if value is None:
            return 0.0
        return 1.0 if str(value) == problem.answer else self.format_reward

    def answer_of(self, completion: str) -> int | None:
        """The parsed final answer (for majority voting), None if unparseable."""
        return arithmetic.parse_completion(completion)

    def reference_completion(self, problem: Problem) -> str:
        return problem.meta["completion"]
