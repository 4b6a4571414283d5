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
