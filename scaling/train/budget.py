"""Budgets: a run is given tokens or FLOPs (under a stated convention); the other is derived."""
from __future__ import annotations

from dataclasses import dataclass

from scaling.config.run import RunConfig
from scaling.errors import UserError
from scaling.model.accounting import ModelCounts, count_model

MAX_STEPS = 10**9  # a billion optimizer steps is years of compute for any model: a larger count is a typo


@dataclass(frozen=True)
class Budget:
    steps: int
    tokens: int  # steps × batch tokens: what is actually trained
    flops_6n: float
    flops_full: float
    counts: ModelCounts

    def flops(self, convention: str) -> float:
        return self.flops_6n if convention == "6n" else self.flops_full


def plan_budget(cfg: RunConfig) -> Budget:
    counts = count_model(cfg.model, cfg.train.seq_len)
    t = cfg.train
    per_token = counts.train_flops_per_token(t.flop_convention)
    wanted = t.tokens if t.tokens is not None else t.flops / per_token
    steps = int(wanted // t.batch_tokens)
    if steps < 1:
        what = f"train.tokens={t.tokens}" if t.tokens is not None else f"train.flops={t.flops:.3g}"
        one_step = t.batch_tokens * per_token
        raise UserError(f"{what} is smaller than one step ({t.batch_tokens} tokens, {one_step:.3g} FLOPs "
                        f"[{t.flop_convention}]); raise the budget or lower train.batch_size")
    if steps > MAX_STEPS:
        what = f"train.tokens={t.tokens:.3g}" if t.tokens is not None else f"train.flops={t.flops:.3g}"
        raise UserError(f"{what} is {steps:.3g} steps of {t.batch_tokens} tokens, beyond any trainable run "
                        f"(at most {MAX_STEPS:.0e} steps)")
    tokens = steps * t.batch_tokens
    return Budget(steps, tokens, tokens * counts.train_flops_per_token_6n, tokens * counts.train_flops_per_token_full, counts)
