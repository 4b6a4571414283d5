"""Procedural arithmetic problems: one text format shared by the pretraining corpus and the RL task.

A document is `prompt + completion` (then EOS):

    Q: 47+38=?                     Q: (3+4)*5-2=?
    A: #### 85                     A: 3+4=7; 7*5=35; 35-2=33. #### 33

The prompt ends at `A:`; the completion starts with a space, optionally lists each intermediate
result (in a `worked_fraction` share of documents, only for 2+ steps), and always ends with
`#### <integer>`. Expressions chain
operations left to right, with parentheses only where precedence would otherwise change the order,
so each expression is also valid Python that evaluates to the answer.

Problems whose canonical text hashes into a reserved bucket (5%) form the held-out eval set; every
train stream (corpus windows, RL train problems) skips them, so train and eval never share a problem.
"""
from __future__ import annotations

import hashlib
import itertools
import random
import re
from dataclasses import dataclass
from typing import Iterator

from scaling.config.data import MathConfig
from scaling.data.cache import bucket_of

EVAL_BUCKETS_PER_MILLE = 50
# Distinct salts keep the streams independent even when seeds coincide.
_EVAL_STREAM = 0x5EED_E7A1
_TRAIN_STREAM = 0x7EA1_0001
_CORPUS_STREAM = 0xC0_4705

_STEP = r"-?[0-9]+[-+*][0-9]+=-?[0-9]+"  # [0-9], not \d: \d also matches non-ASCII digits
_INTEGER = r"-?(?:0|[1-9][0-9]*)"
# Strict: optional worked steps, then exactly one `#### N` and nothing else (surrounding blanks allowed).
COMPLETION_RE = re.compile(rf"(?:{_STEP}(?:; {_STEP})*\. )?#### ({_INTEGER})")
MAX_COMPLETION_CHARS = 1024


@dataclass(frozen=True)
class ArithmeticProblem:
    expression: str  # e.g. "(3+4)*5"
    steps: tuple[str, ...]  # e.g. ("3+4=7", "7*5=35")
    answer: int

    @property
    def prompt(self) -> str:
        return f"Q: {self.expression}=?\nA:"

    def completion(self, worked: bool) -> str:
        work = "; ".join(self.steps) + ". " if worked and len(self.steps) > 1 else ""
        return f" {work}#### {self.answer}"

    def document(self, worked: bool) -> str:
        return self.prompt + self.completion(worked)

    @property
    def is_eval(self) -> bool:
        return bucket_of(self.expression, 1000) < EVAL_BUCKETS_PER_MILLE

    def held_out_document(self, worked_fraction: float) -> str:
        """The document of a held-out problem: whether it shows its work is fixed by a hash of the
        problem, so eval losses compare across runs."""
        return self.document(bucket_of("worked:" + self.expression, 1000) < worked_fraction * 1000)


def parse_completion(completion: str) -> int | None:
    """The final answer of a completion in the canonical format, or None if it is not in it.

    Leading/trailing whitespace is tolerated; anything else (extra text, two answers, `085`, `-0`,
    `#### 8 5`, a missing `####`) is a format failure.
    """
    if len(completion) > MAX_COMPLETION_CHARS:
        return None
    match = COMPLETION_RE.fullmatch(completion.strip())
    if match is None or match.group(1) == "-0":
        return None
    return int(match.group(1))


def _rng(*key: int) -> random.Random:
    """A generator for one stream position. Only `random()` is drawn from it: Python guarantees that
    method's sequence across versions (not randrange's), and it is 25x cheaper than a numpy draw."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _uniform_int(rng: random.Random, low: int, high: int) -> int:
    """Uniform on [low, high]; exact enough for the <= 12-digit ranges used here."""
    return low + int(rng.random() * (high - low + 1))


def _operand(rng: random.Random, cfg: MathConfig) -> int:
    digits = _uniform_int(rng, cfg.min_digits, cfg.max_digits)
    return _uniform_int(rng, 0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def draw_problem(rng: random.Random, cfg: MathConfig) -> ArithmeticProblem:
    n_steps = _uniform_int(rng, cfg.min_steps, cfg.max_steps)
    value = _operand(rng, cfg)
    expression, top_op = str(value), ""
    steps = []
    for _ in range(n_steps):
        op = cfg.operations[_uniform_int(rng, 0, len(cfg.operations) - 1)]
        right = _operand(rng, cfg)
        if op == "*" and top_op in ("+", "-"):
            expression = f"({expression})"
        expression += f"{op}{right}"
        result = value + right if op == "+" else value - right if op == "-" else value * right
        steps.append(f"{value}{op}{right}={result}")
        value, top_op = result, op
    return ArithmeticProblem(expression, tuple(steps), value)


def iter_eval_problems(cfg: MathConfig) -> Iterator[ArithmeticProblem]:
    """The held-out problems of this difficulty, distinct, in a fixed order that does not depend on
    `cfg.seed`: every run of a sweep is scored on the same problems. Ends when the (tiny) space of
    problems stops yielding new ones."""
    rng = _rng(_EVAL_STREAM)
    seen: set[str] = set()
    misses = 0
    while misses < 20_000:
        problem = draw_problem(rng, cfg)
        if problem.is_eval and problem.expression not in seen:
            seen.add(problem.expression)
            misses = 0
            yield problem
        else:
            misses += 1


def eval_problems(cfg: MathConfig, n: int) -> list[ArithmeticProblem]:
    """`n` held-out problems for scoring, stratified by number of steps: problem i has
    `min_steps + i % tiers` steps, so an accuracy over them is the mean over step tiers.

    Drawn unstratified, distinct problems would mostly be the longest (one-digit one-step problems
    number 200, of which ~10 are held out), and the score would hide the tiers a model has learned.
    A tier whose space is too small for its share repeats its problems.
    """
    tiers = range(cfg.min_steps, cfg.max_steps + 1)
    per_tier = -(-n // len(tiers))
    drawn = []
    for steps in tiers:
        tier = cfg.model_copy(update={"min_steps": steps, "max_steps": steps})
        found = list(itertools.islice(iter_eval_problems(tier), per_tier))
        if not found:
            raise ValueError(f"no held-out problems exist at this difficulty ({tier})")
        drawn.append(found)
    return [drawn[i % len(tiers)][(i // len(tiers)) % len(drawn[i % len(tiers)])] for i in range(n)]


def _next_train_problem(rng: random.Random, cfg: MathConfig) -> ArithmeticProblem:
    while True:
        problem = draw_problem(rng, cfg)
        if not problem.is_eval:
            return problem


def train_problem(cfg: MathConfig, seed: int, index: int) -> ArithmeticProblem:
    """Train problem number `index` of stream `seed`: random access, never a held-out problem."""
    rng = _rng(_TRAIN_STREAM, cfg.seed, seed, index)
    return _next_train_problem(rng, cfg)


def corpus_documents(cfg: MathConfig, seed: int, window: int) -> Iterator[str]:
    """The unbounded document stream that fills pretraining window `window` (a function of its index only)."""
    rng = _rng(_CORPUS_STREAM, cfg.seed, seed, window)
    mixed = 0.0 < cfg.worked_fraction < 1.0  # draw only for a mix: the pure streams stay as they were
    while True:
        problem = _next_train_problem(rng, cfg)
        # Drawn per occurrence, not per problem: the same problem is seen both ways.
        yield problem.document(rng.random() < cfg.worked_fraction if mixed else cfg.worked_fraction == 1.0)
