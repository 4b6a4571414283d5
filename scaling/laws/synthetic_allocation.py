"""Synthetic allocation data with known answers: for the split and test-time laws' tests and examples.

`split_accuracy` is an accuracy surface over total compute C and RL share f built from two smooth
terms: pretraining skill grows with log10 of its compute (1 - f)·C, and RL adds a gain that is a
sigmoid in log RL compute f·C (the shape ScaleRL fits to RL curves), all through a logistic link so
accuracy stays in (0, 1). Its best share falls as C grows, because the RL gain saturates in absolute
compute while pretraining keeps paying per decade. `true_optimum` finds it on a fine grid.
"""
from __future__ import annotations

import numpy as np

SPLIT = {"k_pre": 1.0, "C_pre": 1e17, "b0": -2.5, "G": 2.5, "C_rl": 1e17, "B": 0.8}


def split_accuracy(C, f, params: dict[str, float] = SPLIT) -> np.ndarray:
    C, f = np.asarray(C, dtype=float), np.asarray(f, dtype=float)
    pretrain = params["k_pre"] * np.log10(np.maximum(1 - f, 1e-300) * C / params["C_pre"]) + params["b0"]
    with np.errstate(divide="ignore", over="ignore"):
        rl = params["G"] / (1 + (params["C_rl"] / (f * C)) ** params["B"])  # f = 0: no gain
    return 1 / (1 + np.exp(-(pretrain + rl)))


def true_optimum(C: float, params: dict[str, float] = SPLIT) -> tuple[float, float]:
    """(best share, best accuracy) of the noise-free surface at total compute C."""
    grid = np.linspace(0, 0.999, 99_901)
    acc = split_accuracy(C, grid, params)
    return float(grid[acc.argmax()]), float(acc.max())


def split_runs(budgets=(1e18, 3e18, 1e19, 3e19, 1e20), shares=(0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9),
               repeats: int = 2, noise: float = 0.005, params: dict[str, float] = SPLIT,
               seed: int = 0) -> dict[str, np.ndarray]:
    """Runs at every (budget, share), `repeats` seeds each, accuracy plus Gaussian noise (clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    C, f = (a.ravel() for a in np.meshgrid(np.asarray(budgets, float), np.asarray(shares, float), indexing="ij"))
    C, f = np.repeat(C, repeats), np.repeat(f, repeats)
    acc = np.clip(split_accuracy(C, f, params) + rng.normal(0, noise, C.shape), 0, 1)
    return {"total_flops": C, "rl_share": f, "accuracy": acc}


# ---- test-time compute -------------------------------------------------------------------------------
# A model trained with C_train FLOPs has N = sqrt(C_train / 120) parameters (Chinchilla's D = 20 N) and
# spends 2·N FLOPs per token on `SAMPLE_TOKENS` tokens per sample: bigger models pay more per sample.
SAMPLE_TOKENS = 256
TESTTIME = {"a": -9.0, "b": 0.5, "c": 0.6}  # logit accuracy = a + b·log10 C_train + c·log10 k


def sample_flops(train_flops) -> np.ndarray:
    return 2.0 * np.sqrt(np.asarray(train_flops, dtype=float) / 120.0) * SAMPLE_TOKENS


def testtime_exchange_rate(params: dict[str, float] = TESTTIME) -> float:
    """The known answer of `testtime_plane`: with k = C_test / sample_flops and sample_flops ∝ C_train^0.5,
    logit accuracy = const + (b − c/2)·log10 C_train + c·log10 C_test, so along iso-accuracy lines
    d log10 C_test / d log10 C_train = −(b − c/2)/c, and 10x training is worth 10^((b − c/2)/c) x test compute."""
    return 10 ** ((params["b"] - params["c"] / 2) / params["c"])


def testtime_plane(train=(1e18, 1e19, 1e20, 1e21), ks=(1, 2, 4, 8, 16, 32, 64), noise: float = 0.0,
                   params: dict[str, float] = TESTTIME, seed: int = 0) -> dict[str, np.ndarray]:
    """Accuracy logit-linear in log C_train and log k (Jones's straight iso-performance lines), plus
    Gaussian noise on the accuracy."""
    rng = np.random.default_rng(seed)
    C, k = (a.ravel() for a in np.meshgrid(np.asarray(train, float), np.asarray(ks, float), indexing="ij"))
    z = params["a"] + params["b"] * np.log10(C) + params["c"] * np.log10(k)
    acc = np.clip(1 / (1 + np.exp(-z)) + rng.normal(0, noise, C.shape), 1e-4, 1 - 1e-4)
    return {"train_flops": C, "k": k, "sample_flops": sample_flops(C), "accuracy": acc}


def testtime_sampled(train=(1e18, 3e18, 1e19, 3e19, 1e20), ks=(1, 2, 4, 8, 16, 32, 64), n_problems: int = 500,
                     n_wrong: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """pass@k and majority@k of simulated models on simulated problems: a problem of difficulty d ~ N(0, 2) is
    solved by one sample with probability σ(skill − d), skill = 1.2·log10(C_train/1e18) − 2.5; a wrong
    sample is one of `n_wrong` wrong answers; majority vote breaks ties at random. No closed-form
    exchange rate: this is the example a real `scaling eval` table looks like."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 2.0, n_problems)
    rows = {k: [] for k in ("train_flops", "k", "sample_flops", "pass_at_k", "majority")}
    for C in train:
        p = 1 / (1 + np.exp(-(1.2 * np.log10(C / 1e18) - 2.5 - difficulty)))
        draws = rng.random((n_problems, max(ks)))
        correct = draws < p[:, None]
        wrong = rng.integers(0, n_wrong, (n_problems, max(ks)))
        for k in ks:
            votes = np.zeros((n_problems, n_wrong + 1))
            votes[:, 0] = correct[:, :k].sum(1)
            for w in range(n_wrong):
                votes[:, w + 1] = (~correct[:, :k] & (wrong[:, :k] == w)).sum(1)
            top = votes == votes.max(1, keepdims=True)
            majority = top[:, 0] / top.sum(1)  # expected score under random tie-breaking
            for key, value in (("train_flops", C), ("k", k), ("sample_flops", float(sample_flops(C))),
                               ("pass_at_k", correct[:, :k].any(1).mean()), ("majority", majority.mean())):
                rows[key].append(value)
    return {key: np.array(v) for key, v in rows.items()}
