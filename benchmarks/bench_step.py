"""CPU step benchmark: the compiled train step of the CPU recipes against this machine's matmul rate.

    python benchmarks/bench_step.py                          # all recipes, prints one JSON line each
    python benchmarks/bench_step.py --recipes demo-math --set model.scan_layers=false
    python benchmarks/bench_step.py --write                  # also records "## CPU step" in BENCHMARKS.md
    python benchmarks/bench_step.py --save before.json       # on an older checkout: rows to compare against
    python benchmarks/bench_step.py --baseline before.json --write   # adds "before" columns to the table

The matmul rate is the best of several 1024x1024 float32 products (2·1024³ FLOPs each) through the same
JAX; it is measured before and after the recipes, and the ratio uses the higher of the two. Recipes:
`demo-math` (configs/train/demo-math-cpu.yaml), `math-3step` (configs/train/math-3step-cpu.yaml) and
`isoflop` (one row per model of sweeps/demo-cpu-isoflop.yaml, as that sweep resolves it). Each step is
the real compiled train step (AdamW) on random tokens, so the data pipeline is not measured; the time
is the best of `--repeats` windows of `--steps` steps. Each recipe is then also trained by the trainer itself
(`run_training`, `--trainer-tokens` tokens on the recipe's own data, steps per call as the trainer picks
them): what a user's `scaling train` of the recipe reaches, the loop around the step included. FLOPs are the
full convention of scaling.model.accounting (every matmul incl. attention and the output layer, causal half,
backward = 2×).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from record import ROOT, environment, write_section

RECIPES = {"demo-math": "configs/train/demo-math-cpu.yaml", "math-3step": "configs/train/math-3step-cpu.yaml"}
ISOFLOP_SWEEP = "sweeps/demo-cpu-isoflop.yaml"


def matmul_gflops(n: int = 1024, reps: int = 10, windows: int = 5) -> float:
    """Best float32 n×n matmul rate (GFLOP/s) over `windows` windows of `reps` products."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(reps):
            out = dot(a, b)
        out.block_until_ready()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n**3 / best / 1e9


def recipe_configs(names: list[str], overrides: list[str]) -> list[tuple[str, object]]:
    """(label, RunConfig) for each requested recipe, with `--set` overrides applied."""
    from scaling.config.base import apply_overrides
    from scaling.config.run import load_run_config, run_config_from_dict
    from scaling.sweep.expand import expand, load_sweep

    out = []
    for name in names:
        if name in RECIPES:
            out.append((name, load_run_config(ROOT / RECIPES[name], overrides)))
            continue
        plan = expand(load_sweep(ROOT / ISOFLOP_SWEEP), ROOT / ISOFLOP_SWEEP)
        seen = {}
        for run in plan.runs:  # one run per model: the step does not depend on the budget
            seen.setdefault(run.config.model.name, run.config)
        for model, cfg in sorted(seen.items(), key=lambda kv: kv[1].model.D * kv[1].model.L):
            data = apply_overrides(cfg.model_dump(mode="json"), overrides)
            out.append((f"isoflop {model}", run_config_from_dict(data, source=ISOFLOP_SWEEP)))
    return out


def bench(label: str, cfg, steps: int, repeats: int, trainer_tokens: int) -> dict:
    from scaling.model.accounting import count_model
    from scaling.train.throughput import measure_step

    timing = measure_step(cfg, steps, repeats)
    m = cfg.model
    flops_s = timing["tokens_per_s"] * count_model(m, cfg.train.seq_len).train_flops_per_token_full
    row = {"recipe": label, "D": m.D, "L": m.L, "F": m.F, "batch": cfg.train.batch_size, "seq": cfg.train.seq_len,
           "dtype": m.dtype, "scan_layers": m.scan_layers, "step_ms": round(1e3 * timing["step_s"], 2),
           "tokens_per_s": round(timing["tokens_per_s"]), "gflops_per_s": round(flops_s / 1e9, 2),
           "compile_s": round(timing["compile_s"], 1)}
    return row | trainer_rate(cfg, trainer_tokens) if trainer_tokens else row


def trainer_rate(cfg, tokens: int) -> dict:
    """The recipe trained by the trainer itself (`run_training`: data pipeline, steps per call, logging) for
    `tokens` tokens, evaluated and checkpointed only at its end: the median of its log windows after the first
    (which holds the compile), in tokens/s and model FLOP/s (full convention)."""
    import statistics
    import tempfile

    from scaling.train import run_training
    from scaling.train.loop import steps_per_call
    from scaling.parallel import make_mesh

    steps = max(tokens // cfg.train.batch_tokens, 40)
    train = cfg.train.model_copy(update={"tokens": steps * cfg.train.batch_tokens, "flops": None, "progress": False,
                                         "tensorboard": False, "log_every": max(steps // 20, 1),
                                         "eval_every": 10**9, "checkpoint_every": 10**9, "eval_batches": 1})
    run_cfg = cfg.model_copy(update={"train": train})
    with tempfile.TemporaryDirectory() as out:
        run_training(run_cfg, out, quiet=True)
        windows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()][1:-1]
    return {"trainer_tokens_per_s": round(statistics.median(w["tokens_per_s"] for w in windows)),
            "trainer_gflops_per_s": round(statistics.median(w["model_flops_per_s"] for w in windows) / 1e9, 2),
            "steps_per_call": steps_per_call(run_cfg, make_mesh(run_cfg.mesh))}


def write_markdown(rows: list[dict], matmul: float, command: str, baseline: dict | None) -> None:
    lines = [f"{environment()}. Command: `{command}`. "
             f"f32 1024² matmul: {matmul:.0f} GFLOP/s. Model FLOP/s in the full convention (every matmul incl. "
             "attention scores and the output layer, causal half, training = 3 × forward). step: the compiled "
             "train step alone, one per call, random tokens, no data pipeline. trainer: `run_training` on the "
             "recipe's data, median of its log windows after the first (steps per call as the trainer picks them).",
             "", "| recipe | D×L | batch×seq | dtype | layers | step ms | tokens/s | GFLOP/s | % of matmul | "
             "trainer tokens/s | trainer GFLOP/s | trainer % of matmul | steps per call |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    before = {r["recipe"]: r for r in baseline["rows"]} if baseline else {}
    if baseline:
        lines[-2] += " before: step ms | dtype, layers | % of matmul | speedup |"
        lines[-1] += "---:|---|---:|---:|"
        lines[0] += (f" Before: {baseline['label']}, measured in the same session (its matmul rate "
                     f"{baseline['matmul_gflops_per_s']:.0f} GFLOP/s).")
    for r in rows:
        layers = "scanned" if r["scan_layers"] else "unrolled"
        line = (f"| {r['recipe']} | {r['D']}×{r['L']} | {r['batch']}×{r['seq']} | {r['dtype']} | {layers} | "
                f"{r['step_ms']} | {r['tokens_per_s']:,} | {r['gflops_per_s']} | {r['pct_of_matmul']}% |")
        if "trainer_gflops_per_s" in r:
            line += (f" {r['trainer_tokens_per_s']:,} | {r['trainer_gflops_per_s']} | {r['trainer_pct_of_matmul']}% | "
                     f"{r['steps_per_call']} |")
        else:
            line += " | | | |"
        if b := before.get(r["recipe"]):
            b_layers = "scanned" if b["scan_layers"] else "unrolled"
            line += (f" {b['step_ms']} | {b['dtype']}, {b_layers} | {b['pct_of_matmul']}% | "
                     f"{b['step_ms'] / r['step_ms']:.2f}x |")
        elif baseline:
            line += " | | | |"
        lines.append(line)
    write_section("## CPU step", lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=[*RECIPES, "isoflop"], choices=[*RECIPES, "isoflop"])
    ap.add_argument("--steps", type=int, default=20, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=3, help="timed windows; the fastest counts")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every recipe, e.g. model.scan_layers=false")
    ap.add_argument("--trainer-tokens", type=int, default=600_000,
                    help="also train each recipe this many tokens with the trainer itself (0: skip)")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    ap.add_argument("--save", metavar="JSON", help="write the rows and the matmul rate to this file")
    ap.add_argument("--baseline", metavar="JSON", help="a --save file of another checkout: adds 'before' columns")
    ap.add_argument("--label", default="this checkout", help="what --save records as the rows' origin")
    a = ap.parse_args()
    from scaling.errors import UserError
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    try:
        baseline = _read_baseline(a.baseline) if a.baseline else None
        if a.save and Path(a.save).exists():
            raise UserError(f"--save {a.save}: exists; nothing already written is overwritten")
        configs = recipe_configs(a.recipes, a.set)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    before = matmul_gflops()
    print(json.dumps({"matmul_gflops_per_s": round(before, 1)}), flush=True)
    rows = [bench(label, cfg, a.steps, a.repeats, a.trainer_tokens) for label, cfg in configs]
    matmul = max(before, matmul_gflops())
    for r in rows:
        r["pct_of_matmul"] = round(100 * r["gflops_per_s"] / matmul, 1)
        if "trainer_gflops_per_s" in r:
            r["trainer_pct_of_matmul"] = round(100 * r["trainer_gflops_per_s"] / matmul, 1)
        print(json.dumps(r), flush=True)
    print(json.dumps({"matmul_gflops_per_s": round(matmul, 1), "load_average": os.getloadavg()[0]}), flush=True)
    if a.save:
        Path(a.save).write_text(json.dumps({"label": a.label, "matmul_gflops_per_s": matmul, "rows": rows}))
    if a.write:
        write_markdown(rows, matmul, "python " + " ".join(sys.argv), baseline)


def _read_baseline(path: str) -> dict:
    from scaling.errors import UserError

    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data.get("rows"), list) or "matmul_gflops_per_s" not in data:
            raise ValueError
    except (OSError, ValueError, AttributeError):
        raise UserError(f"--baseline {path}: not a file written by --save") from None
    return data


if __name__ == "__main__":
    main()
