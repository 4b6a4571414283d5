"""Sweep overhead benchmark: a sweep's wall time against its runs' own training time.

    python benchmarks/bench_sweep.py                 # the six-run sweep below, both ways, one JSON line each
    python benchmarks/bench_sweep.py --write         # also records "## Sweep overhead" in BENCHMARKS.md
    python benchmarks/bench_sweep.py --sweep sweeps/demo-cpu-isoflop.yaml --max-parallel 2

The default sweep is issue #14's yardstick: the CPU math recipe (configs/train/demo-math-cpu.yaml) with
two models (D = 32 and 48) at 2e9, 4e9 and 8e9 FLOPs, `--max-parallel 2`. Each mode submits it to a new
sweep directory: `process-per-run` starts a `scaling train` process per run (the old executor),
`persistent` gives each slot one worker process that runs its runs in turn (the default). A first,
untimed submit fills the compilation cache, so both timed modes start from the same warm cache.

Reported per mode: `wall_s` of the whole `scaling sweep submit` command; `span_s` from the first run's
start to the last run's end (the registry's timestamps: the submitter's own start-up left out);
`train_s`, the sum of the runs' own wall times (summary.json: from their first step to the end) over
the slots; and the ratios wall/train and span/train.
"""
from __future__ import annotations

import argparse
import datetime
import json
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
budgets: [2.0e9, 4.0e9, 8.0e9]
models:
  - {{name: math-27k, D: 32, L: 2, H: 2, F: 96, max_seq_len: 64, dtype: float32, scan_layers: false}}
  - {{name: math-56k, D: 48, L: 2, H: 2, F: 128, max_seq_len: 64, dtype: float32, scan_layers: false}}
"""
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
    wall = submit(sweep, out, max_parallel, MODES[mode])
    with sqlite3.connect(out / "registry.sqlite") as db:
        rows = db.execute("SELECT wall_s, started_at, finished_at FROM runs").fetchall()
    train = sum(r[0] for r in rows) / max_parallel
    stamp = datetime.datetime.fromisoformat  # whole seconds
    span = (max(stamp(r[2]) for r in rows) - min(stamp(r[1]) for r in rows)).total_seconds()
    return {"mode": mode, "runs": len(rows), "max_parallel": max_parallel, "wall_s": round(wall, 1),
            "span_s": round(span, 1), "train_s_per_slot": round(train, 1), "wall_over_train": round(wall / train, 2),
            "span_over_train": round(span / train, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", help="a sweep file (default: the six-run sweep above)")
    ap.add_argument("--max-parallel", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sweep = Path(a.sweep).resolve() if a.sweep else tmp / "six.yaml"
        if not a.sweep:
            sweep.write_text(SIX_RUNS.format(base=ROOT / "configs/train/demo-math-cpu.yaml"))
        submit(sweep, tmp / "warm-up", a.max_parallel, [])
        rows = []
        for mode in MODES:
            rows.append(measure(sweep, tmp / mode, a.max_parallel, mode))
            print(json.dumps(rows[-1]), flush=True)
    if a.write:
        name = a.sweep or "six runs: demo-math-cpu recipe, D=32/48 x 2e9/4e9/8e9 FLOPs"
        lines = [f"{environment()}. Command: `python {' '.join(sys.argv)}`. Sweep: {name}. wall: the whole "
                 "`scaling sweep submit` command; span: first run's start to last run's end (registry); train: "
                 "the runs' own wall times (first step to end) summed over the slots; compile cache warm.", "",
                 "| executor mode | runs | slots | wall s | span s | train s per slot | wall / train | span / train |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['mode']} | {r['runs']} | {r['max_parallel']} | {r['wall_s']} | {r['span_s']} | "
                  f"{r['train_s_per_slot']} | {r['wall_over_train']}x | {r['span_over_train']}x |" for r in rows]
        write_section("## Sweep overhead" + (f" ({Path(a.sweep).stem})" if a.sweep else ""), lines)


if __name__ == "__main__":
    main()
