"""Evaluating a policy on a task's held-out problems, the one home of it: greedy pass@1, sampled pass@k
(unbiased estimator), majority@k, and accuracy under capped generation lengths.

`evaluate_policy` is the RL evaluation (the RL loop's curve, and what `scaling compare` measures every
pretrained model with); `evaluate_test_time_compute` is `scaling eval`, the inference-time axis beside
pretraining and RL compute.
"""
from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from math import comb
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh

from scaling.config.rl import EVAL_SEED_OFFSET, EvalSettings, SamplingConfig
from scaling.rl.checkpoints import Policy, load_policy, rl_config_of
from scaling.rl.compute import rollout_flops
from scaling.rl.policy import batch_placer
from scaling.rl.tasks import Problem, get_task
from scaling.rl.validate import check_task_fits_model
from scaling.sampling import decode_completions, generate, left_pad
from scaling.train.step import data_parallel_size


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. 2021: probability that at least one of k draws (without replacement) from n samples
    with c correct is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class Evaluator:
    """Runs a task's problems through the sampler in fixed-size batches (one compiled shape). On a mesh
    (the RL run's) the prompts are placed as rollouts are, rows over the data axes, and the sampler is traced
    with the mesh in context; the batch is then a multiple of the data-parallel size."""

    def __init__(self, graphdef, tokenizer, task, prompt_len: int, batch_size: int, mesh: Mesh | None = None):
        self.graphdef, self.tokenizer, self.task = graphdef, tokenizer, task
        dp = data_parallel_size(mesh)
        self.prompt_len, self.batch_size = prompt_len, -(-batch_size // dp) * dp
        self.mesh, self.place = mesh, batch_placer(mesh)

    def generate(self, states, toks: np.ndarray, valid: np.ndarray, sampling: SamplingConfig, key):
        """The sampler on one batch of left-padded prompts: (completions, lengths) as device arrays."""
        prompts = self.place({"tokens": toks, "valid": valid})  # host arrays, as the rollouts pass them
        with jax.set_mesh(self.mesh) if self.mesh is not None else nullcontext():
            out, lens, _ = generate(self.graphdef, states, prompts["tokens"], prompts["valid"], key, sampling=sampling,
                                    eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id)
        return out, lens

    def completions(self, states, problems: list[Problem], sampling: SamplingConfig,
                    key) -> tuple[list[str], np.ndarray]:
        texts, lengths = [], []
        for start in range(0, len(problems), self.batch_size):
            chunk = problems[start:start + self.batch_size]
            prompts = [self.tokenizer.encode(p.prompt) for p in chunk]
            prompts += [prompts[0]] * (self.batch_size - len(prompts))  # pad the batch to the compiled shape
            toks, valid = left_pad(prompts, self.prompt_len, self.tokenizer.pad_id)
            out, lens = self.generate(states, toks, valid, sampling, jax.random.fold_in(key, start))
            out, lens = np.asarray(out)[: len(chunk)], np.asarray(lens)[: len(chunk)]
            texts += decode_completions(self.tokenizer, out, lens)
            lengths.append(lens)
        return texts, np.concatenate(lengths)

    def greedy_accuracy(self, states, problems: list[Problem], max_new: int) -> tuple[float, float]:
        texts, lengths = self.completions(states, problems, SamplingConfig(max_new=max_new, temperature=0.0),
                                          jax.random.key(0))
        rewards = [self.task.reward(t, p) for t, p in zip(texts, problems)]
        return float(np.mean([r == 1.0 for r in rewards])), float(lengths.mean())

    def draw(self, states, problems: list[Problem], n: int, sampling: SamplingConfig, key) -> Samples:
        """n samples per problem, scored by the task's verifier, with the token counts their FLOPs need."""
        repeated = [p for p in problems for _ in range(n)]
        texts, gen_lens = self.completions(states, repeated, sampling, key)
        correct = np.array([self.task.reward(t, p) == 1.0 for t, p in zip(texts, repeated)]).reshape(len(problems), n)
        prompt_lens = np.repeat([len(self.tokenizer.encode(p.prompt)) for p in problems], n)
        return Samples(correct, [self._answer(t) for t in texts], prompt_lens, gen_lens)

    def sampled(self, states, problems: list[Problem], n: int, sampling: SamplingConfig, key) -> dict:
        """n samples per problem → pass@k and majority@k (first k samples) for k = 1, 2, 4, … ≤ n."""
        s = self.draw(states, problems, n, sampling, key)
        out = {}
        for k in (k for k in (2 ** i for i in range(12)) if k <= n):
            out[f"pass@{k}"] = pass_at_k_mean(s.correct, k)
            out[f"maj@{k}"] = majority_at_k(s.answers, s.correct, k, blocks=1)
        return out

    def _answer(self, text: str):
        extract = getattr(self.task, "answer_of", None)
        return extract(text) if extract else text.strip()


@dataclass
class Samples:
    correct: np.ndarray  # [problems, n] bool: the verifier's verdict per sample
    answers: list  # problems·n extracted answers (None: no answer), problem-major
    prompt_lens: np.ndarray  # [problems·n] prompt tokens (unpadded)
    gen_lens: np.ndarray  # [problems·n] generated tokens, EOS included


def pass_at_k_mean(correct: np.ndarray, k: int) -> float:
    """Unbiased pass@k from n = correct.shape[1] samples per problem, averaged over problems."""
    n = correct.shape[1]
    return float(np.mean([pass_at_k(n, int(c), k) for c in correct.sum(1)]))


def majority_correct(answers, correct) -> float:
    """1 if the most frequent answer (ties: the first drawn) is a correct one, else 0; None answers abstain."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    top, _ = votes.most_common(1)[0]
    return float(any(c for a, c in zip(answers, correct) if a == top))


def majority_at_k(answers: list, correct: np.ndarray, k: int, blocks: int | None = None) -> float:
    """maj@k from n samples per problem: majority vote over each of the first `blocks` disjoint runs of
    k samples (all n // k when None: the same expectation as one block, with less variance), averaged
    over blocks and problems."""
    P, n = correct.shape
    blocks = n // k if blocks is None else min(blocks, n // k)
    if blocks < 1:
        raise ValueError(f"maj@{k} needs at least {k} samples per problem, got {n}")
    return float(np.mean([majority_correct(answers[i * n + b * k:i * n + (b + 1) * k], correct[i, b * k:(b + 1) * k])
                          for i in range(P) for b in range(blocks)]))


def doubling_ks(K: int) -> list[int]:
    """1, 2, 4, … up to K, and K itself."""
    return sorted({k for k in (2 ** i for i in range(K.bit_length())) if k <= K} | {K})


def accuracy_vs_samples(evaluator: Evaluator, states, counts, problems: list[Problem], K: int, sampling: SamplingConfig,
                    key) -> dict:
    """Accuracy against test-time compute: K samples per problem drawn once; pass@k (unbiased) and maj@k
    (all disjoint blocks of k) for every k in doubling_ks(K), and the FLOPs of one sample (full convention:
    the forward pass over its prompt and, with the KV cache, its generated tokens; mean over samples).
    Sampling k per problem costs k × sample_flops."""
    s = evaluator.draw(states, problems, K, sampling, key)
    ks = doubling_ks(K)
    return {"k": ks, "pass@k": [pass_at_k_mean(s.correct, k) for k in ks],
            "maj@k": [majority_at_k(s.answers, s.correct, k) for k in ks],
            "sample_flops": rollout_flops(counts, s.prompt_lens, s.gen_lens) / len(s.gen_lens),
            "prompt_tokens_mean": float(s.prompt_lens.mean()), "generated_tokens_mean": float(s.gen_lens.mean()),
            "problems": len(problems), "samples": int(s.correct.size)}


def evaluate_policy(graphdef, states, tokenizer, task, problems: list[Problem], s: EvalSettings,
                    step: int, mesh: Mesh | None = None) -> dict[str, float]:
    """The RL evaluation of a policy at RL step `step`: greedy pass@1 (and mean response length) on
    `problems` (the task's first s.eval.problems held-out ones), and, when eval.pass_k > 1, sampled
    pass@k and maj@k on the first eval.pass_k_problems of them. The RL loop records it at every eval, on
    its mesh; `scaling compare` applies it, at step 0, to each pretrained model."""
    evaluator = Evaluator(graphdef, tokenizer, task, s.prompt_tokens, min(s.eval.batch_size, s.eval.problems), mesh)
    accuracy, mean_len = evaluator.greedy_accuracy(states, problems, s.sampling.max_new)
    metrics = {"accuracy": accuracy, "eval_response_len": mean_len}
    if s.eval.pass_k > 1:
        metrics |= evaluator.sampled(states, problems[: s.eval.pass_k_problems], s.eval.pass_k, s.sampling,
                                     jax.random.key(s.seed + EVAL_SEED_OFFSET + step))
    return metrics


def load_policy_for_task(run_dir, task, prompt_tokens: int) -> Policy:
    """The newest checkpoint of RUN_DIR, once the task is known to fit its model."""
    policy = load_policy(run_dir)
    check_task_fits_model(task, policy.tokenizer, policy.pretrain_cfg, prompt_tokens)
    return policy


def evaluate_test_time_compute(run_dir, task_name: str, task_params: dict, *, problems: int, k: int,
                               temperature: float, caps: list[int], max_new: int | None = None,
                               prompt_tokens: int | None = None, batch_size: int = 256, seed: int = 0) -> dict:
    """`scaling eval`: accuracy of a run's model against inference-time compute. Greedy accuracy under
    each generation cap, greedy pass@1, and pass@k / maj@k from k samples per problem. max_new and
    prompt_tokens default to the RL run's own settings (an RL run dir) or the RL config's defaults."""
    rl_cfg = rl_config_of(Path(run_dir))
    max_new = max_new or rl_cfg.sampling.max_new
    prompt_tokens = prompt_tokens or rl_cfg.grpo.max_prompt_tokens
    task = get_task(task_name, **task_params)
    policy = load_policy_for_task(run_dir, task, prompt_tokens)
    states = policy.states
    held_out = task.eval_problems(problems)
    evaluator = Evaluator(policy.graphdef, policy.tokenizer, task, prompt_tokens, min(batch_size, problems * k))
    metrics = {}
    for cap in caps:
        metrics[f"greedy@len{cap}"] = evaluator.greedy_accuracy(states, held_out, cap)[0]
    greedy_eval = Evaluator(policy.graphdef, policy.tokenizer, task, prompt_tokens, min(batch_size, problems))
    metrics["pass@1 (greedy)"] = greedy_eval.greedy_accuracy(states, held_out, max_new)[0]
    metrics |= evaluator.sampled(states, held_out, k, SamplingConfig(max_new=max_new, temperature=temperature),
                                 jax.random.key(seed))
    return {"run_dir": str(run_dir), "step": policy.step, "task": task_name, "task_params": task_params,
            "problems": problems, "k": k, "temperature": temperature, "max_new": max_new,
            "prompt_tokens": prompt_tokens, "metrics": metrics}
