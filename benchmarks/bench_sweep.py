"""Sweep overhead benchmark: a sweep's wall time against its runs' own training time.

    python benchmarks/bench_sweep.py                 # the six-run sweep below, both ways, 3 times, one JSON line each
    python benchmarks/bench_sweep.py --write         # also records the medians in "## Sweep overhead" of BENCHMARKS.md
    python benchmarks/bench_sweep.py --sweep sweeps/demo-cpu-isoflop.yaml --max-parallel 2
    python benchmarks/bench_sweep.py --budgets 2e10 4e10 8e10 --write   # the same six runs, 10x longer

The default sweep is issue #14's yardstick: the CPU math recipe (configs/train/demo-math-cpu.yaml) with
two models (D = 32 and 48) at 2e9, 4e9 and 8e9 FLOPs, `--max-parallel 2`. Each mode submits it to a new
sweep directory (`--budgets` scales its runs: the overhead per slot is fixed, so the ratios fall as the
runs' training grows): `process-per-run` starts a `scaling train` process per run (the old executor),
`persistent` gives each slot one worker process that runs its runs in turn (the default). A first,
untimed submit fills the compilation cache, so both timed modes start from the same warm cache. The box is
usually shared: the modes alternate (A/B back to back) `--repeat` times, and the table shows each mode's
median attempt (by wall time) and the range of the 1-minute load average over its attempts.

Reported per mode: `wall_s` of the whole `scaling sweep submit` command; `span_s` from the first run's
start to the last run's end (the registry's timestamps: the submitter's own start-up left out);
`train_s`, the sum of the runs' own wall times (summary.json: from their first step to the end) over
the slots; `other_s_per_slot`, wall minus train: the seconds per slot that are not training (process
start-up, imports, data and model set-up, compiling new shapes before the first step, hand-offs); and the
ratios wall/train and span/train. A run's own time includes its first step, so a compile it saves shrinks
train as much as wall: compare `other_s_per_slot` as well as the ratio.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import ROOT, environment, write_section

SIX_RUNS = """\
name: bench-six
kind: pretrain
design: grid
base: {base}
budgets: [{budgets}]
models:
  - {{name: math-27k, D: 32, L: 2, H: 2, F: 96, max_seq_len: 64, dtype: float32, scan_layers: false}}
  - {{name: math-56k, D: 48, L: 2, H: 2, F: 128, max_seq_len: 64, dtype: float32, scan_layers: false}}
"""
DEFAULT_BUDGETS = [2e9, 4e9, 8e9]
MODES = {"process-per-run": ["--process-per-run"], "persistent": []}


def submit(sweep: Path, out: Path, max_parallel: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out),
               "--max-parallel", str(max_parallel), *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def measure(sweep: Path, out: Path, max_parallel: int, mode: str) -> dict:
    load = os.getloadavg()[0]
    wall = submit(sweep, out, max_parallel, MODES[mode])
    with sqlite3.connect(out / "registry.sqlite") as db:
        rows = db.execute("SELECT wall_s, started_at, finished_at FROM runs").fetchall()
    train = sum(r[0] for r in rows) / max_parallel
    stamp = datetime.datetime.fromisoformat  # whole seconds
    span = (max(stamp(r[2]) for r in rows) - min(stamp(r[1]) for r in rows)).total_seconds()
    return {"mode": mode, "runs": len(rows), "max_parallel": max_parallel, "wall_s": round(wall, 1),
            "span_s": round(span, 1), "train_s_per_slot": round(train, 1), "other_s_per_slot": round(wall - train, 1),
            "wall_over_train": round(wall / train, 2), "span_over_train": round(span / train, 2),
            "load": round(max(load, os.getloadavg()[0]), 1)}


def short_float(x: float) -> str:
    """2e9 for 2000000000.0, as a sweep file would write it."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def median_attempt(attempts: list[dict]) -> dict:
    """The attempt of median wall time (the lower middle one of an even count), with its mode's load range."""
    ranked = sorted(attempts, key=lambda r: r["wall_s"])
    loads = [r["load"] for r in attempts]
    return {**ranked[(len(ranked) - 1) // 2], "attempts": len(attempts), "load_range": f"{min(loads)}-{max(loads)}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", help="a sweep file (default: the six-run sweep above)")
    ap.add_argument("--budgets", type=float, nargs="+", default=DEFAULT_BUDGETS,
                    help="FLOP budgets of the six-run sweep (default 2e9 4e9 8e9)")
    ap.add_argument("--max-parallel", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed attempts per mode, alternating modes (default 3)")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sweep = Path(a.sweep).resolve() if a.sweep else tmp / "six.yaml"
        if not a.sweep:
            sweep.write_text(SIX_RUNS.format(base=ROOT / "configs/train/demo-math-cpu.yaml",
                                             budgets=", ".join(f"{b:.1e}" for b in a.budgets)))
        submit(sweep, tmp / "warm-up", a.max_parallel, [])
        attempts: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for i in range(a.repeat):
            for mode in MODES:
                attempts[mode].append(measure(sweep, tmp / f"{mode}-{i}", a.max_parallel, mode))
                print(json.dumps(attempts[mode][-1]), flush=True)
        rows = [median_attempt(attempts[mode]) for mode in MODES]
        for row in rows:
            print(json.dumps({"median_of": row["attempts"], **row}), flush=True)
    if a.write:
        budgets = "/".join(short_float(b) for b in a.budgets)
        name = a.sweep or f"six runs: demo-math-cpu recipe, D=32/48 x {budgets} FLOPs"
        lines = [f"{environment()}. Command: `python {' '.join(sys.argv)}`. Sweep: {name}. wall: the whole "
                 "`scaling sweep submit` command; span: first run's start to last run's end (registry); train: "
                 "the runs' own wall times (first step to end) summed over the slots; other: wall - train; compile "
                 f"cache warm. Median attempt (by wall) of {a.repeat} per mode, modes alternating; load: the "
                 "1-minute load average over that mode's attempts.", "",
                 "| executor mode | runs | slots | wall s | span s | train s per slot | other s per slot "
                 "| wall / train | span / train | load |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['mode']} | {r['runs']} | {r['max_parallel']} | {r['wall_s']} | {r['span_s']} | "
                  f"{r['train_s_per_slot']} | {r['other_s_per_slot']} | {r['wall_over_train']}x | "
                  f"{r['span_over_train']}x | {r['load_range']} |" for r in rows]
        variant = Path(a.sweep).stem if a.sweep else (None if a.budgets == DEFAULT_BUDGETS else f"budgets {budgets}")
        write_section("## Sweep overhead" + (f" ({variant})" if variant else ""), lines)


if __name__ == "__main__":
    main()
