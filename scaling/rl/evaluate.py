"""Evaluation with the sampler: greedy pass@1, sampled pass@k (unbiased estimator), majority@k, and
accuracy under capped generation lengths — the inference-time axis beside pretraining and RL compute."""
from __future__ import annotations

from collections import Counter
from math import comb

import jax
import jax.numpy as jnp
import numpy as np

from scaling.rl.sampler import SamplingParams, decode_completions, generate, left_pad
from scaling.rl.tasks import Problem


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. 2021: probability that at least one of k draws (without replacement) from n samples
    with c correct is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class Evaluator:
    """Runs a task's problems through the sampler in fixed-size batches (one compiled shape)."""

    def __init__(self, graphdef, tokenizer, task, prompt_len: int, batch_size: int):
        self.graphdef, self.tokenizer, self.task = graphdef, tokenizer, task
        self.prompt_len, self.batch_size = prompt_len, batch_size

    def completions(self, states, problems: list[Problem], params: SamplingParams, key) -> tuple[list[str], np.ndarray]:
        texts, lengths = [], []
        for start in range(0, len(problems), self.batch_size):
            chunk = problems[start:start + self.batch_size]
            prompts = [self.tokenizer.encode(p.prompt) for p in chunk]
            prompts += [prompts[0]] * (self.batch_size - len(prompts))  # pad the batch to the compiled shape
            toks, valid = left_pad(prompts, self.prompt_len, self.tokenizer.pad_id)
            out, lens, _ = generate(self.graphdef, states, jnp.asarray(toks), jnp.asarray(valid),
                                    jax.random.fold_in(key, start), params=params,
                                    eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id)
            out, lens = np.asarray(out)[: len(chunk)], np.asarray(lens)[: len(chunk)]
            texts += decode_completions(self.tokenizer, out, lens)
            lengths.append(lens)
        return texts, np.concatenate(lengths)

    def greedy_accuracy(self, states, problems: list[Problem], max_new: int) -> tuple[float, float]:
        texts, lengths = self.completions(states, problems, SamplingParams(max_new=max_new, temperature=0.0),
                                          jax.random.key(0))
        rewards = [self.task.reward(t, p) for t, p in zip(texts, problems)]
        return float(np.mean([r == 1.0 for r in rewards])), float(lengths.mean())

    def sampled(self, states, problems: list[Problem], n: int, params: SamplingParams, key) -> dict:
        """n samples per problem → pass@k and majority@k for k = 1, 2, 4, … ≤ n."""
        repeated = [p for p in problems for _ in range(n)]
        texts, _ = self.completions(states, repeated, params, key)
        correct = np.array([self.task.reward(t, p) == 1.0 for t, p in zip(texts, repeated)]).reshape(len(problems), n)
        answers = [self._answer(t) for t in texts]
        ks = [k for k in (2 ** i for i in range(12)) if k <= n]
        out = {}
        for k in ks:
            out[f"pass@{k}"] = float(np.mean([pass_at_k(n, int(c), k) for c in correct.sum(1)]))
            out[f"maj@{k}"] = float(np.mean([self._majority_correct(answers[i * n:i * n + k], correct[i, :k])
                                              for i in range(len(problems))]))
        return out

    def _answer(self, text: str):
        extract = getattr(self.task, "answer_of", None)
        return extract(text) if extract else text.strip()

    @staticmethod
    def _majority_correct(answers, correct) -> float:
        votes = Counter(a for a in answers if a is not None)
        if not votes:
            return 0.0
        top, _ = votes.most_common(1)[0]
        return float(any(c for a, c in zip(answers, correct) if a == top))
