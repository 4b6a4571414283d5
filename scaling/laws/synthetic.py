"""Synthetic sweeps drawn from known laws: for tests, demos and checking that a fit recovers truth.

`write_registry` stores them as a minimal sweep directory (`registry.sqlite` with the `runs` and
`curves` columns the fits read), so `scaling fit` / `scaling plot` can be tried without training.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

HOFFMANN = {"E": 1.6934, "A": 406.40, "B": 410.72, "alpha": 0.33917, "beta": 0.28491}  # unrounded, Hoffmann et al.


def chinchilla_loss(params: dict[str, float], N, D) -> np.ndarray:
    return params["E"] + params["A"] / np.asarray(N) ** params["alpha"] + params["B"] / np.asarray(D) ** params["beta"]


def isoflop_runs(params: dict[str, float] = HOFFMANN, budgets=(1e18, 3e18, 1e19, 3e19, 1e20), runs_per_budget: int = 7,
                 spread_decades: float = 1.5, noise: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """For each budget C, runs with N log-spaced around the optimum and D = C/(6N); loss from the
    law times log-normal noise of relative size `noise`."""
    from scaling.laws.chinchilla import compute_optimal

    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {k: [] for k in ("n_params", "tokens", "flops", "budget", "eval_loss")}
    for C in budgets:
        n_opt, _ = compute_optimal(params, C)
        for N in n_opt * np.logspace(-spread_decades / 2, spread_decades / 2, runs_per_budget):
            D = C / (6 * N)
            loss = chinchilla_loss(params, N, D) * np.exp(rng.normal(0, noise)) if noise else chinchilla_loss(params, N, D)
            for key, value in zip(columns, (round(N), round(D), C, C, float(loss))):
                columns[key].append(value)
    return {k: np.array(v) for k, v in columns.items()}


def scattered_runs(params: dict[str, float] = HOFFMANN, n_runs: int = 200, n_range=(3e7, 1e10), d_range=(3e8, 3e11),
                   noise: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Runs with N and D drawn log-uniformly (a Chinchilla-style scatter rather than isoFLOP grids)."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(*np.log(n_range), n_runs))
    D = np.exp(rng.uniform(*np.log(d_range), n_runs))
    loss = chinchilla_loss(params, N, D) * np.exp(rng.normal(0, noise, n_runs))
    return {"n_params": N, "tokens": D, "flops": 6 * N * D, "eval_loss": loss}


def sigmoid_curve(params: dict[str, float], x, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """ScaleRL's R(C) = R0 + (A − R0)/(1 + (C_mid/C)^B) plus Gaussian noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float)
    y = params["R0"] + (params["A"] - params["R0"]) / (1 + (params["C_mid"] / x) ** params["B"])
    return np.clip(y + rng.normal(0, noise, x.shape), 0, 1)


RUN_COLUMNS = ("run_id TEXT PRIMARY KEY, kind TEXT, status TEXT, model TEXT, n_params INTEGER, "
               "n_params_nonembedding INTEGER, n_params_active INTEGER, tokens INTEGER, flops REAL, flops_6n REAL, "
               "flops_full REAL, budget REAL, loss REAL, eval_loss REAL, accuracy REAL, init_flops REAL")
CURVE_COLUMNS = "run_id TEXT, step INTEGER, tokens INTEGER, flops REAL, eval_loss REAL, accuracy REAL"


def write_registry(sweep_dir: str | Path, runs: dict[str, np.ndarray] | None = None,
                   curves: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
    """A sweep directory whose registry holds `runs` (pretraining, status done) and `curves`
    (run id -> {"flops": cumulative FLOPs, "accuracy": pass@1} for RL runs)."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(sweep_dir / "registry.sqlite")
    with con:
        con.execute(f"CREATE TABLE IF NOT EXISTS runs ({RUN_COLUMNS})")
        con.execute(f"CREATE TABLE IF NOT EXISTS curves ({CURVE_COLUMNS})")
        for i in range(len(next(iter(runs.values()))) if runs else 0):
            N, D, C = int(runs["n_params"][i]), int(runs["tokens"][i]), float(runs["flops"][i])
            loss = float(runs["eval_loss"][i])
            budget = float(runs["budget"][i]) if "budget" in runs else None
            con.execute("INSERT INTO runs (run_id, kind, status, model, n_params, n_params_nonembedding, n_params_active,"
                        " tokens, flops, flops_6n, flops_full, budget, loss, eval_loss) VALUES"
                        " (?, 'pretrain', 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (f"pre{i:04d}", f"N{N}", N, N, N, D, C, 6.0 * N * D, C, budget, loss, loss))
        for run_id, curve in (curves or {}).items():
            con.execute("INSERT INTO runs (run_id, kind, status, accuracy, init_flops) VALUES (?, 'rlvr', 'done', ?, 0)",
                        (run_id, float(curve["accuracy"][-1])))
            for step, (flops, acc) in enumerate(zip(curve["flops"], curve["accuracy"])):
                con.execute("INSERT INTO curves VALUES (?, ?, ?, ?, NULL, ?)",
                            (run_id, step, step * 1000, float(flops), float(acc)))
    con.close()
    return sweep_dir
