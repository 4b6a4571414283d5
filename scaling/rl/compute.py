"""RL compute accounting (full convention; a 6N view alongside).

rollout  prefill of the prompt + one cached decode step per generated token (each attends to the
         prompt and the tokens before it);
update   forward + backward (3 × forward) over prompt + completion, once per GRPO epoch;
old      one extra forward for the old-policy log-probs (only when epochs > 1; with one epoch the
         ratio is exactly 1 and the current log-probs are used with stop-gradient);
ref      one forward of the frozen reference (only when kl_beta > 0).
Counted over real tokens (padding excluded). 6N view: 2N per rollout token, 6N per update token.
"""
from __future__ import annotations

import numpy as np

from scaling.config.rl import GRPOConfig
from scaling.model.accounting import ModelCounts


def rollout_flops(counts: ModelCounts, prompt_lens: np.ndarray, gen_lens: np.ndarray) -> float:
    total = 0.0
    for n_prompt, n_gen in zip(prompt_lens.tolist(), gen_lens.tolist()):
        total += counts.forward_flops(n_prompt) + counts.forward_flops(n_gen, n_cached=n_prompt)
    return total


def step_flops(counts: ModelCounts, cfg: GRPOConfig, prompt_lens: np.ndarray, gen_lens: np.ndarray) -> dict:
    seq_fwd = sum(counts.forward_flops(int(n)) for n in (prompt_lens + gen_lens))
    n_tokens = float((prompt_lens + gen_lens).sum())
    n_active = counts.n_active_nonembedding
    out = {
        "rollout": rollout_flops(counts, prompt_lens, gen_lens),
        "update": 3 * seq_fwd * cfg.epochs,
        "old_policy": seq_fwd if cfg.epochs > 1 else 0.0,
        "reference": seq_fwd if cfg.kl_beta > 0 else 0.0,
    }
    sixn = 2 * n_active * n_tokens + 6 * n_active * n_tokens * cfg.epochs
    sixn += 2 * n_active * n_tokens * ((cfg.epochs > 1) + (cfg.kl_beta > 0))
    out["total"] = out["rollout"] + out["update"] + out["old_policy"] + out["reference"]
    out["total_6n"] = sixn
    return out
