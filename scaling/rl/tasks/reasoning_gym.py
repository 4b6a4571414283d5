"""Adapter for reasoning-gym's procedural tasks (optional extra: pip install 'scaling[tasks]').

Prompts use the lab's format (`Q: <question>\\nA:`); the completion must be ` #### <answer>`, and the
text after the marker is scored by the dataset's own `score_answer`. Held-out problems come from a
reserved seed, and train problems whose question appears among them are skipped (reasoning-gym
seeds item i with seed + i, so streams of nearby seeds overlap: only an explicit check is safe).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from scaling.data.cache import stable_hash
from scaling.errors import UserError
from scaling.rl.tasks.base import Problem

_EVAL_SEED = 0xE7A1_5EED
_MARKER_RE = re.compile(r"#### (\S(?:.*\S)?)", re.DOTALL)


def _import_reasoning_gym():
    try:
        import reasoning_gym
    except ImportError:
        raise UserError("task 'reasoning-gym' needs the reasoning-gym package: pip install 'scaling[tasks]'") from None
    return reasoning_gym


class ReasoningGymTask:
    name = "reasoning-gym"

    def __init__(self, dataset: str = "basic_arithmetic", eval_size: int = 500, format_reward: float = 0.0, **params: Any):
        rg = _import_reasoning_gym()
        from reasoning_gym.factory import DATASETS

        if dataset not in DATASETS:
            raise UserError(f"task reasoning-gym: unknown dataset {dataset!r} (e.g. {', '.join(sorted(DATASETS)[:8])}, ...)")
        if not 0.0 <= format_reward < 1.0:
            raise UserError(f"task reasoning-gym: format_reward must be in [0, 1), got {format_reward}")
        self.dataset, self.params, self.format_reward = dataset, params, format_reward
        try:
            self._eval = rg.create_dataset(dataset, seed=_EVAL_SEED, size=eval_size, **params)
        except (TypeError, ValueError, AssertionError) as e:
            raise UserError(f"task reasoning-gym ({dataset}): bad parameters ({e})") from None
        self._eval_entries = [self._eval[i] for i in range(eval_size)]
        self._eval_questions = {entry["question"] for entry in self._eval_entries}

    @lru_cache(maxsize=64)
    def _train_stream(self, seed: int, attempt: int):
        stream_seed = int(stable_hash([self.dataset, seed, attempt]), 16) % 2**31
        return _import_reasoning_gym().create_dataset(self.dataset, seed=stream_seed, size=2**31, **self.params)

    def _problem(self, entry: dict, split: str, index: int) -> Problem:
        meta = {"split": split, "index": index, "entry": entry}
        return Problem(prompt=f"Q: {entry['question']}\nA:", answer=str(entry["answer"]), meta=meta)

    def train_problems(self, seed: int, n: int, start: int = 0) -> list[Problem]:
        problems = []
        for index in range(start, start + n):
            attempt = 0
            entry = self._train_stream(seed, attempt)[index]
            while entry["question"] in self._eval_questions:
                attempt += 1
                entry = self._train_stream(seed, attempt)[index]
            problems.append(self._problem(entry, "train", index))
        return problems

    def eval_problems(self, n: int) -> list[Problem]:
        if n > len(self._eval_entries):
            raise UserError(f"task reasoning-gym: {n} held-out problems asked for, but task.params.eval_size is "
                            f"{len(self._eval_entries)} (the length checks read 256): raise eval_size")
        return [self._problem(entry, "eval", i) for i, entry in enumerate(self._eval_entries[:n])]

    def reward(self, completion: str, problem: Problem) -> float:
        match = _MARKER_RE.fullmatch(completion.strip())
        if match is None or "####" in match.group(1):
            return 0.0
        score = float(self._eval.score_answer(match.group(1), problem.meta["entry"]))
        return max(self.format_reward, min(1.0, score)) if score < 1.0 else 1.0

    def reference_completion(self, problem: Problem) -> str:
        return f" #### {problem.answer}"
