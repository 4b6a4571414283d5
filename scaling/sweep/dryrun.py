"""`submit --dry-run`: the grid as a table, with wall times estimated from a short throughput probe."""
from __future__ import annotations

import sys

from scaling.sweep.plan import Plan, PlannedRun, canonical_json, with_fields
from scaling.sweep.progress import format_seconds


def _speed_key(run: PlannedRun) -> str:
    """One probe per model shape: each costs a compilation, and tokens/s depends far less on the batch
    size (rules may give every run its own) than on the model, so the batch is left out of the key."""
    c = run.config
    return canonical_json({"model": c.model.model_dump(mode="json"), "mesh": c.mesh.model_dump(mode="json"),
                           "seq_len": c.train.seq_len, "kind": run.kind})


def probe_speeds(plan: Plan) -> dict[str, float]:
    """tokens/s per distinct model shape; empty if the trainer's probe is not available."""
    try:
        from scaling.train.throughput import measure_tokens_per_s
    except ImportError as e:
        print(f"note: no throughput probe ({e}); wall times not estimated", file=sys.stderr)
        return {}
    by_shape: dict[str, list[PlannedRun]] = {}
    for run in plan.runs:
        if run.kind != "pretrain":  # RL runs' cost depends on generated lengths: no probe for them
            continue
        by_shape.setdefault(_speed_key(run), []).append(run)
    speeds: dict[str, float] = {}
    for key, runs in by_shape.items():
        typical = sorted(runs, key=lambda r: r.config.train.batch_size)[len(runs) // 2]  # the median batch
        print(f"probing {typical.model} (batch {typical.config.train.batch_size}) ...", file=sys.stderr, flush=True)
        speeds[key] = measure_tokens_per_s(with_fields(typical.config, "train", fork_from=None, keep_steps=[]), steps=3)
    return speeds


def print_plan(plan: Plan, probe: bool = True, max_parallel: int = 1) -> None:
    from rich.console import Console
    from rich.table import Table

    speeds = probe_speeds(plan) if probe else {}
    table = Table(title=f"{len(plan.runs)} runs (dry run: nothing written)", title_justify="left")
    for col in ("run", "model", "N", "D", "C", "D/N", "steps", "fork", "est. wall"):
        table.add_column(col, justify="left" if col in ("run", "model") else "right")
    total = 0.0
    for run in plan.runs:
        speed = speeds.get(_speed_key(run)) if run.kind == "pretrain" else None
        wall = run.tokens * run.trained_steps / run.steps / speed if speed else None
        total += wall or 0.0
        fork = f"@{run.fork_step}" if run.fork_step else ("trunk" if run.role == "trunk" else "")
        budget = run.budget if run.budget is not None else run.flops
        table.add_row(run.name, run.model, f"{run.n:,}", f"{run.tokens:,}", f"{budget:.3g}",
                      f"{run.tokens / run.n:.1f}" if run.tokens else "",
                      f"{run.steps:,}", fork, format_seconds(wall) if wall else "?")
    console = Console(width=max(160, Console().width))
    console.print(table)
    print(f"N: active non-embedding parameters; C: budget in FLOPs ({plan.runs[0].flop_convention} convention)")
    if speeds:
        print(f"estimated wall time: {format_seconds(total)} of training on one slot, about "
              f"{format_seconds(total / max_parallel)} with --max-parallel {max_parallel} (compile time not included)")
