"""Would packing pay on this machine? Same-shape runs in one compiled program, and several steps per call.

    python benchmarks/bench_packing.py                 # prints one JSON line per recipe
    python benchmarks/bench_packing.py --write         # also records "## Packing same-shape runs" in BENCHMARKS.md

For each CPU recipe of benchmarks/bench_step.py (demo-math and the isoFLOP demo's models) it times the real
compiled train step (AdamW, random tokens, batch already on the device) three ways:
- one run, one step per call: the trainer today;
- K runs of the same shape packed into one program (`jax.vmap` over stacked train states and batches, as a
  grid of seeds or learning rates of one model would run): per-run tokens/s relative to one run;
- one run, S steps per call (`lax.scan` over S batches): what the Python dispatch of each step costs.
A gain near 1x means the compiled step's own ops, not dispatch or op count, set the time. The numbers decide
whether packing is worth building into the sweep executors (issue #14); they change nothing in the trainer.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from bench_step import recipe_configs
from record import environment, write_section


def _time_per_call(fn, state, *args, calls: int, windows: int = 3):
    """Best mean seconds per call over `windows` windows; `fn` donates and returns the state."""
    import jax

    state, out = fn(state, *args)  # compile + first call
    jax.block_until_ready(out)
    best = float("inf")
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(calls):
            state, out = fn(state, *args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def bench(label: str, cfg, packs: list[int], scan_steps: int, steps: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from scaling.model import build_model
    from scaling.runtime import cpu_compiler_options
    from scaling.train.optim import make_optimizer
    from scaling.train.step import compile_steps, init_train_state

    tx, _ = make_optimizer(cfg.optimizer, 100)
    states = []
    for seed in range(max(packs)):
        graphdef, state, _ = init_train_state(build_model(cfg.model, None, seed=seed), tx, None)
        states.append(state)
    one_step = compile_steps(cfg.model, graphdef, None, tx, None).train_step
    raw_step = one_step.__wrapped__  # the step function itself, to vmap or scan
    options = cpu_compiler_options(1)
    rng = np.random.default_rng(0)
    shape = (cfg.train.batch_size, cfg.train.seq_len)

    def batches(n: int) -> dict:
        return {"inputs": jnp.asarray(rng.integers(0, cfg.model.V, (n, *shape), dtype=np.int32)),
                "targets": jnp.asarray(rng.integers(0, cfg.model.V, (n, *shape), dtype=np.int32)),
                "mask": jnp.ones((n, *shape), jnp.float32)}

    stacked = {k: jax.tree.map(lambda *x: jnp.stack(x), *states[:k]) for k in packs}
    state_scan = jax.tree.map(jnp.copy, states[0])
    single = batches(1)
    t_one = _time_per_call(one_step, states[0], jax.tree.map(lambda x: x[0], single), np.float32(1e-3), calls=steps)
    row = {"recipe": label, "D": cfg.model.D, "L": cfg.model.L, "batch": cfg.train.batch_size,
           "seq": cfg.train.seq_len, "one_step_ms": round(1e3 * t_one, 3)}
    packed = jax.jit(jax.vmap(raw_step), donate_argnums=0, compiler_options=options)
    for k in packs:
        t = _time_per_call(packed, stacked[k], batches(k), np.full(k, 1e-3, np.float32), calls=max(steps // k, 5))
        row[f"pack{k}_gain"] = round(k * t_one / t, 2)

    def scanned(state, batch_stack, lrs):
        return jax.lax.scan(lambda s, x: raw_step(s, x[0], x[1]), state, (batch_stack, lrs))

    multi = jax.jit(scanned, donate_argnums=0, compiler_options=options)
    t = _time_per_call(multi, state_scan, batches(scan_steps), np.full(scan_steps, 1e-3, np.float32),
                       calls=max(steps // scan_steps, 5))
    row[f"scan{scan_steps}_gain"] = round(scan_steps * t_one / t, 2)
    return row


def write_markdown(rows: list[dict], packs: list[int], scan_steps: int, command: str) -> None:
    pack_cols = [f"pack{k}_gain" for k in packs]
    lines = [f"{environment()}. Command: `{command}`. Per-run tokens/s of K same-shape runs packed into one "
             "compiled program (`jax.vmap` over stacked states and batches), and of one run taking "
             f"{scan_steps} steps per call (`lax.scan`), each relative to one run taking one step per call "
             "(the trainer today); best of 3 windows, random tokens, batch on the device.", "",
             "| recipe | D×L | batch×seq | one step ms | " + " | ".join(f"{k} runs packed" for k in packs)
             + f" | {scan_steps} steps per call |",
             "|---|---|---|---:|" + "---:|" * (len(packs) + 1)]
    for r in rows:
        gains = " | ".join(f"{r[c]}x" for c in pack_cols)
        lines.append(f"| {r['recipe']} | {r['D']}×{r['L']} | {r['batch']}×{r['seq']} | {r['one_step_ms']} | "
                     f"{gains} | {r[f'scan{scan_steps}_gain']}x |")
    write_section("## Packing same-shape runs (CPU)", lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=["demo-math", "isoflop"], choices=["demo-math", "isoflop"])
    ap.add_argument("--packs", type=int, nargs="+", default=[2, 4, 8], help="runs per packed program")
    ap.add_argument("--scan-steps", type=int, default=16, help="steps per call for the scanned variant")
    ap.add_argument("--steps", type=int, default=64, help="single-run steps per timed window")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    a = ap.parse_args()
    if min(a.packs) < 1 or a.scan_steps < 1 or a.steps < 1:
        print("error: --packs, --scan-steps and --steps must be positive", file=sys.stderr)
        sys.exit(2)
    rows = []
    for label, cfg in recipe_configs(a.recipes, []):
        rows.append(bench(label, cfg, sorted(set(a.packs)), a.scan_steps, a.steps))
        print(json.dumps(rows[-1]), flush=True)
    if a.write:
        write_markdown(rows, sorted(set(a.packs)), a.scan_steps, "python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
