"""Where a CPU train step's time goes: XLA:CPU's own profile of the compiled step, op class by op class,
and what the step's matmuls alone would take.

    python benchmarks/profile_step.py                       # demo-math: prints the tables
    python benchmarks/profile_step.py --recipe math-3step
    python benchmarks/profile_step.py --write               # also records "## CPU step profile" in BENCHMARKS.md

Three measurements of the real compiled train step (benchmarks/bench_step.py's recipes, random tokens):
- the step's wall time (best of windows) and its model FLOP/s against the f32 1024² matmul rate;
- a `jax.profiler` trace of 20 steps: every XLA:CPU thunk (a fused kernel, a YNNPACK dot, a copy) with its time
  on XLA's compute threads, grouped into classes by the kernel's name: thread-milliseconds per step, summed over
  the threads (two threads busy for 1 ms count 2 ms), so the classes add up to about threads × wall;
- every dot_general of the step (read from its jaxpr: forward, backward, attention), each timed alone at its own
  shapes: their sum is the step's time if nothing but its matmuls ran, and their FLOP/s the most the step could
  reach at these shapes, whatever the rest of the step did.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import sys
import tempfile
import time

from bench_step import RECIPES, matmul_gflops, recipe_configs
from record import environment, write_section

# Kernel-name patterns of XLA:CPU thunks -> the class reported (first match wins).
CLASSES = [
    ("matmuls (YNNPACK and XLA dots)", re.compile(r"^(ynn_fusion|dot|.*_dot_)")),
    ("exp (softmax, cross-entropy)", re.compile(r"exponential|exp_")),
    ("reductions (sums, max; XLA's reduce-window split of rows > 32)", re.compile(r"reduce")),
    ("layout: transposes, copies, concatenates, slices, gathers",
     re.compile(r"transpose|copy|concatenate|slice|gather|scatter|pad|broadcast_fusion|^wrapped_broadcast")),
    ("other elementwise (norms, SiLU, RoPE, optimizer)", re.compile(r".")),
]
NOT_THUNKS = ("ThunkExecutor", "SlinkyThreadPool", "$", "PjitFunction", "CommonPjRt", "ParseArguments",
              "DevicePut", "XlaCompile", "Compile")


def build_step(cfg):
    import jax.numpy as jnp
    import numpy as np

    from scaling.model import build_model
    from scaling.train.optim import make_optimizer
    from scaling.train.step import compile_steps, init_train_state

    tx, _ = make_optimizer(cfg.optimizer, 100)
    graphdef, state, _ = init_train_state(build_model(cfg.model, None, seed=0), tx, None)
    step = compile_steps(cfg.model, graphdef, None, tx, None).train_step
    rng = np.random.default_rng(0)
    shape = (cfg.train.batch_size, cfg.train.seq_len)
    batch = {"inputs": jnp.asarray(rng.integers(0, cfg.model.V, shape, dtype=np.int32)),
             "targets": jnp.asarray(rng.integers(0, cfg.model.V, shape, dtype=np.int32)),
             "mask": jnp.ones(shape, jnp.float32)}
    return step, state, batch, np.float32(1e-3)


def time_step(step, state, batch, lr, steps: int = 20, windows: int = 5):
    import jax

    for _ in range(3):
        state, metrics = step(state, batch, lr)
    jax.block_until_ready(metrics)
    best = float("inf")
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            state, metrics = step(state, batch, lr)
        jax.block_until_ready(metrics)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best, state


def thunk_profile(step, state, batch, lr, steps: int = 20) -> tuple[dict, int]:
    """{class: (thread-ms per step, thunks per step)} from a profiler trace of `steps` steps; and the number of
    XLA compute threads that ran thunks."""
    import jax

    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir, create_perfetto_trace=True):
            for _ in range(steps):
                state, metrics = step(state, batch, lr)
            jax.block_until_ready(metrics)
        events = json.load(gzip.open(glob.glob(f"{logdir}/**/*.trace.json.gz", recursive=True)[0]))["traceEvents"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    ms, count, busy = collections.Counter(), collections.Counter(), set()
    for e in events:
        thread = threads.get((e.get("pid"), e.get("tid")), "")
        if e.get("ph") != "X" or not thread.startswith("tf_XLAEigen") or e["name"].startswith(NOT_THUNKS):
            continue
        kind = next(label for label, pattern in CLASSES if pattern.search(e["name"]))
        ms[kind] += e["dur"] / 1e3 / steps
        count[kind] += 1
        busy.add(thread)
    return {label: (ms[label], count[label] / steps) for label, _ in CLASSES}, len(busy)


def step_dots(step, state, batch, lr) -> list[tuple]:
    """(lhs shape, rhs shape, dimension_numbers, FLOPs) of every dot_general in the step's jaxpr."""
    import math

    import jax
    import jax.extend

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                lhs, rhs = (v.aval for v in eqn.invars)
                (contract, _), _ = eqn.params["dimension_numbers"]
                k = math.prod(lhs.shape[d] for d in contract)
                out = math.prod(eqn.outvars[0].aval.shape)
                yield lhs.shape, rhs.shape, eqn.params["dimension_numbers"], 2 * out * k
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                yield from walk(sub)

    return list(walk(step.trace(state, batch, lr).jaxpr.jaxpr))


def time_dot(lhs_shape, rhs_shape, dims, copies: int = 8, reps: int = 10, windows: int = 5) -> float:
    """Seconds for one such dot: `copies` independent ones per compiled call (different left operands), so the
    call's dispatch is spread over them as a step's ~600 thunks spread theirs."""
    import jax
    import jax.numpy as jnp

    lhs = jax.random.normal(jax.random.key(0), (copies, *lhs_shape), jnp.float32)
    rhs = jax.random.normal(jax.random.key(1), rhs_shape, jnp.float32)
    dots = jax.jit(lambda a, b: [jax.lax.dot_general(a[i], b, dims) for i in range(copies)])
    jax.block_until_ready(dots(lhs, rhs))
    best = float("inf")
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(reps):
            out = dots(lhs, rhs)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / reps / copies)
    return best


def profile(label: str, cfg) -> dict:
    from scaling.model.accounting import count_model

    step, state, batch, lr = build_step(cfg)
    step_s, state = time_step(step, state, batch, lr)
    flops = cfg.train.batch_tokens * count_model(cfg.model, cfg.train.seq_len).train_flops_per_token_full
    dots = step_dots(step, state, batch, lr)
    classes, threads = thunk_profile(step, state, batch, lr)
    alone: dict[str, float] = {}  # one timing per distinct (shapes, dimension numbers)
    for lhs, rhs, dims, _ in dots:
        key = repr((lhs, rhs, dims))
        if key not in alone:
            alone[key] = time_dot(lhs, rhs, dims)
    dots_s = sum(alone[repr((lhs, rhs, dims))] for lhs, rhs, dims, _ in dots)
    per_shape: dict[str, list] = {}  # what each kind of dot costs: count, ms, FLOPs
    for lhs, rhs, dims, f in dots:
        (lc, rc), (lb, _) = dims
        name = f"{'x'.join(map(str, lhs))} · {'x'.join(map(str, rhs))} (contract {lc}/{rc}" + \
            (f", batch {lb})" if lb else ")")
        entry = per_shape.setdefault(name, [0, 0.0, 0])
        entry[0] += 1
        entry[1] += 1e3 * alone[repr((lhs, rhs, dims))]
        entry[2] += f
    dot_flops = sum(f for *_, f in dots)
    return {"recipe": label, "step_ms": 1e3 * step_s, "model_gflops_per_s": flops / step_s / 1e9,
            "threads": threads, "classes": {k: [round(v[0], 3), round(v[1], 1)] for k, v in classes.items()},
            "dots": len(dots), "dot_shapes": len(alone), "dots_alone_ms": 1e3 * dots_s,
            "dot_gflop": dot_flops / 1e9, "model_gflop": flops / 1e9,
            "dots_alone_gflops_per_s": dot_flops / dots_s / 1e9,
            "dot_kinds": sorted(([k, n, ms, fl / ms / 1e6] for k, (n, ms, fl) in per_shape.items()),
                                key=lambda row: -row[2])}


def tables(r: dict, matmul: float) -> list[str]:
    total = sum(ms for ms, _ in r["classes"].values())
    lines = [f"**{r['recipe']}**: step {r['step_ms']:.2f} ms, {r['model_gflops_per_s']:.1f} GFLOP/s = "
             f"{100 * r['model_gflops_per_s'] / matmul:.1f}% of the matmul rate; {r['threads']} XLA compute threads, "
             f"{total:.1f} thread-ms of thunks per step.", "",
             "| op class (XLA:CPU thunks) | thread-ms per step | share | thunks per step |", "|---|---:|---:|---:|"]
    for label, (ms, n) in r["classes"].items():
        lines.append(f"| {label} | {ms:.2f} | {100 * ms / total:.0f}% | {n:.0f} |")
    bound = 100 * r["dots_alone_gflops_per_s"] / matmul
    lines += ["", f"Its {r['dots']} dot_generals ({r['dot_shapes']} distinct shapes, {r['dot_gflop']:.3f} GFLOP of "
              f"the model's {r['model_gflop']:.3f}), each timed alone at its shapes: {r['dots_alone_ms']:.2f} ms in "
              f"all, {r['dots_alone_gflops_per_s']:.0f} GFLOP/s = {bound:.0f}% of the 1024² rate: the most the step "
              f"could reach if everything else were free. The costliest:", "",
              "| dot (operand shapes, contracted dims) | in the step | ms alone, all of them | GFLOP/s |",
              "|---|---:|---:|---:|"]
    for name, n, ms, rate in r["dot_kinds"][:6]:
        lines.append(f"| {name} | {n} | {ms:.2f} | {rate:.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", nargs="+", default=["demo-math"], choices=list(RECIPES))
    ap.add_argument("--write", action="store_true", help="record the tables in BENCHMARKS.md")
    a = ap.parse_args()
    matmul = matmul_gflops()
    rows = [profile(label, cfg) for label, cfg in recipe_configs(a.recipe, [])]
    matmul = max(matmul, matmul_gflops())
    for r in rows:
        print(json.dumps(r | {"matmul_gflops_per_s": round(matmul, 1)}), flush=True)
        print("\n".join(tables(r, matmul)))
    if a.write:
        lines = [f"{environment()}. Command: `python {' '.join(sys.argv)}`. f32 1024² matmul: {matmul:.0f} GFLOP/s. "
                 "Thread-ms: thunk time on XLA's compute threads, summed over them (profiler trace of 20 steps).", ""]
        for r in rows:
            lines += tables(r, matmul) + [""]
        write_section("## CPU step profile", lines[:-1])


if __name__ == "__main__":
    main()
