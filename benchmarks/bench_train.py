"""Training throughput benchmark: tokens/s, model FLOP/s and MFU for model configs on this device.

    python benchmarks/bench_train.py                       # CPU default: the 3M dense model
    python benchmarks/bench_train.py --models dense-85m dense-300m --batch 12 --seq 1024 --steps 20

Prints one JSON line per config and, with --write, records a table in BENCHMARKS.md under
"## Training throughput (<device>)". The step is the real compiled train step (AdamW, bf16 compute,
float32 master weights) on random tokens, so the data pipeline is not measured here.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
from pathlib import Path

import jax

from scaling.config.run import run_config_from_dict
from scaling.model.accounting import count_model
from scaling.runtime import enable_compilation_cache
from scaling.train.metrics import device_description, device_peak_flops
from scaling.train.throughput import measure_step

ROOT = Path(__file__).resolve().parents[1]


def bench(model: str, batch: int, seq: int, steps: int, overrides: dict) -> dict:
    cfg = run_config_from_dict({"model": {"base": model, "max_seq_len": max(seq, 2), **overrides},
                                "train": {"tokens": batch * seq * 10, "seq_len": seq, "batch_size": batch}})
    timing = measure_step(cfg, steps)
    counts = count_model(cfg.model, seq)
    peak = device_peak_flops()
    flops_s = timing["tokens_per_s"] * counts.train_flops_per_token_full
    return {"model": model, "n_params": counts.n_params, "batch": batch, "seq": seq, **overrides,
            "tokens_per_s": round(timing["tokens_per_s"], 1), "step_ms": round(1e3 * timing["step_s"], 2),
            "model_tflops_per_s": round(flops_s / 1e12, 4), "mfu": round(flops_s / peak, 4) if peak else None,
            "compile_s": round(timing["compile_s"], 1), "device": device_description()}


def write_markdown(rows: list[dict], command: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    device = rows[0]["device"]
    header = f"## Training throughput ({device})"
    lines = [header, "",
             f"{datetime.date.today()}, jax {jax.__version__}, Python {platform.python_version()}, "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average "
             f"{os.getloadavg()[0]:.1f} when measured. Command: `{command}`. FLOPs in the full convention "
             "(6N + attention + output layer); MFU against the dense bf16 peak where known.", "",
             "| model | params | batch×seq | tokens/s | step ms | model TFLOP/s | MFU | compile s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a (CPU)"
        lines.append(f"| {r['model']} | {r['n_params'] / 1e6:.2f}M | {r['batch']}×{r['seq']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['step_ms']} | {r['model_tflops_per_s']} | {mfu} | {r['compile_s']} |")
    section = "\n".join(lines) + "\n"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["dense-3m"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], help="model field override, e.g. attention=cudnn")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    a = ap.parse_args()
    enable_compilation_cache()
    overrides = {k: _parse(v) for k, v in (s.split("=", 1) for s in a.set)}
    rows = []
    for model in a.models:
        row = bench(model, a.batch, a.seq, a.steps, overrides)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if a.write:
        import sys
        write_markdown(rows, "python " + " ".join(sys.argv))


def _parse(v: str):
    import yaml
    return yaml.safe_load(v)


if __name__ == "__main__":
    main()
