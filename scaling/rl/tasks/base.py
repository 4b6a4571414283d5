"""What an RL task is: prompts, reference answers, and a verifier that turns a completion into a reward.

The sampler stops at EOS and hands the verifier the decoded text before it, so a completion never
contains the EOS token itself. Rewards are floats in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Problem:
    prompt: str  # fed to the model as is; the completion continues it
    answer: str  # the reference answer, canonical text (what `reward` compares against)
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@runtime_checkable
class Task(Protocol):
    name: str

    def train_problems(self, seed: int, n: int, start: int = 0) -> list[Problem]:
        """Problems start..start+n-1 of train stream `seed`: random access, so resuming at step k
        asks for `start = k * batch` and sees the same problems as an uninterrupted run."""
        ...

    def eval_problems(self, n: int) -> list[Problem]:
        """The first n held-out problems: fixed, disjoint from every train stream."""
        ...

    def reward(self, completion: str, problem: Problem) -> float: ...

    def reference_completion(self, problem: Problem) -> str:
        """A completion that earns full reward (for tests, and for supervised warm-up)."""
        ...
