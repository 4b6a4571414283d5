"""The tiniest sweeps the real trainer and RL loop take, shared by the sweep, compare and demo tests
(the same shapes everywhere, so the persistent compilation cache serves them all)."""
from __future__ import annotations

import time
from pathlib import Path

import yaml

MATH = {"min_digits": 1, "max_digits": 1, "min_steps": 1, "max_steps": 1, "operations": ["+", "-"]}
TINY = [{"name": f"math{d}", "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64} for d in (32, 48)]
PRETRAIN = {"name": "pre", "kind": "pretrain", "design": "grid", "models": TINY, "tokens": [16 * 64 * 8],
            "base": {"data": {"source": "synthetic-math", "math": MATH}, "mesh": {"devices": 1},
                     "optimizer": {"lr": 1e-2, "warmup": 4},
                     "train": {"seq_len": 64, "batch_size": 16, "log_every": 4, "eval_every": 8, "eval_batches": 1,
                               "checkpoint_every": 8, "progress": False}}}
RL_BASE = {"task": {"name": "arithmetic", "params": MATH}, "sampling": {"max_new": 8},
           "grpo": {"group_size": 4, "prompts_per_step": 2, "max_prompt_tokens": 16},
           "eval": {"every": 1, "problems": 8, "pass_k": 1}, "mesh": {"devices": 1},
           "checkpoint_every": 100, "log_every": 1, "progress": False}
# Three byte-level models at three budgets on stdlib-code: the smallest grid the isoflop design accepts.
ISO = {"name": "iso", "kind": "pretrain", "design": "isoflop", "flop_convention": "6n",
       "budgets": [1.0e8, 3.0e8, 1.0e9], "tokens_per_param": [0.1, 1000],
       "models": [{"name": f"iso{d}", "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64} for d in (16, 24, 32)],
       "base": {"data": {"source": "stdlib-code"}, "mesh": {"devices": 1}, "optimizer": {"lr": 1e-2, "warmup": 2},
                "train": {"seq_len": 64, "batch_size": 8, "log_every": 8, "eval_every": 1000, "eval_batches": 1,
                          "checkpoint_every": 1000, "progress": False}}}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def write_demo_sweeps(root: Path) -> tuple[Path, Path, Path]:
    """The demo's three sweep files at test size: isoFLOP, math 2 sizes x 2 budgets, RL from the
    compute-optimal model of each budget (its init.sweep is replaced by the demo)."""
    math = {**PRETRAIN, "name": "math", "tokens": [16 * 64 * 4, 16 * 64 * 8]}
    # Two samples per problem: the demo's comparison reads sampled pass@1 (the mean over them).
    rl_base = {**RL_BASE, "eval": {**RL_BASE["eval"], "pass_k": 2}}
    rl = {"name": "rl", "kind": "rlvr", "base": rl_base, "budgets": [1.2e8], "seeds": [0],
          "init": {"sweep": "replaced-by-the-demo", "select": "compute_optimal"}}
    return write(root / "iso.yaml", ISO), write(root / "math.yaml", math), write(root / "rl.yaml", rl)


def wait_for(predicate, timeout: float, what: str):
    """The predicate's first truthy value, polled every 0.2 s (the kill-and-resume sweep tests)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
