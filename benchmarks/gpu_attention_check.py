"""On one NVIDIA GPU: XLA attention against cuDNN's flash attention, numerics and speed, as one table.

    python benchmarks/gpu_attention_check.py                     # default shapes and ladder models
    python benchmarks/gpu_attention_check.py --models dense-85m --batch 8 --seq 2048
    python benchmarks/gpu_attention_check.py --write             # also records "## GPU attention" in BENCHMARKS.md
    python benchmarks/gpu_attention_check.py --cpu-smoke         # no GPU: checks this script, dot_product for cudnn

Part 1, the kernel alone: random bfloat16 q, k, v (causal; grouped-query where KV < H). The model's XLA path
(scaling.model.layers._xla_attention, the "xla" setting) and jax.nn.dot_product_attention(implementation=
"cudnn") against the same attention computed in float32: max abs error of the output and of dq, dk, dv (the
gradient of a fixed random projection of the output), and the time of one forward+backward.

Part 2, the train step: for each model, `--steps` AdamW steps on one fixed random batch from the same
initialisation with model.attention=xla and =cudnn: the loss after the first step (the same parameters, only
the kernel differs) and after the last, and the step time (best of `--repeats` windows) in tokens/s.

What to expect: both bfloat16 kernels' errors come from rounding q, k, v to bfloat16 (about 1e-2 absolute on
unit-normal inputs, as --cpu-smoke shows for XLA), cuDNN's no larger than XLA's; the losses agree to ~1e-3
relative; cuDNN's step is faster where attention matters (long sequences). A cuDNN error several times XLA's,
or a slower step, is worth an issue: "auto" picks cuDNN on GPUs.
"""
from __future__ import annotations

import argparse
import sys
import time

from record import environment, write_section

KERNEL_SHAPES = [  # (B, S, H, KV, E): MHA at head dims 64 and 128, and grouped-query attention
    (8, 1024, 8, 8, 64), (4, 2048, 16, 16, 128), (8, 1024, 16, 4, 64)]
GPU = {"models": ["dense-30m", "dense-85m", "dense-300m"], "batch": 16, "seq": 1024, "steps": 5, "repeats": 5}
# --cpu-smoke: shapes a 2-core CPU runs in a minute
SMOKE_KERNEL_SHAPES = [(2, 128, 4, 4, 64), (2, 128, 8, 2, 32)]
SMOKE = {"models": ["dense-100k"], "batch": 4, "seq": 128, "steps": 2, "repeats": 1}


def best_time(fn, *args, repeats: int, steps: int = 10) -> float:
    """Seconds per call: the fastest mean over `repeats` windows of `steps` calls (after a warm-up call)."""
    import jax

    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def kernel_rows(fused: str, shapes: list[tuple], repeats: int) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from scaling.model.layers import _xla_attention

    impls = {
        "xla": lambda q, k, v: _xla_attention(q, k, v, 0, None),
        fused: lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, is_causal=True, implementation="cudnn" if fused == "cudnn" else None),
    }
    rows = []
    for B, S, H, KV, E in shapes:
        keys = jax.random.split(jax.random.key(0), 4)
        q = jax.random.normal(keys[0], (B, S, H, E), jnp.float32)
        k, v = (jax.random.normal(kk, (B, S, KV, E), jnp.float32) for kk in keys[1:3])
        w = jax.random.normal(keys[3], (B, S, H, E), jnp.float32)

        def loss_and_grads(attend, dtype):
            def loss(q, k, v):
                return jnp.sum(attend(q.astype(dtype), k.astype(dtype), v.astype(dtype)).astype(jnp.float32) * w)
            return jax.jit(lambda q, k, v: (attend(q.astype(dtype), k.astype(dtype), v.astype(dtype)),
                                            jax.grad(loss, argnums=(0, 1, 2))(q, k, v)))

        ref_out, ref_grads = loss_and_grads(impls["xla"], jnp.float32)(q, k, v)
        for name, attend in impls.items():
            fn = loss_and_grads(attend, jnp.bfloat16)
            out, grads = fn(q, k, v)
            errors = [float(jnp.max(jnp.abs(a.astype(jnp.float32) - b))) for a, b in
                      zip((out, *grads), (ref_out, *ref_grads))]
            rows.append({"shape": f"B{B} S{S} H{H} KV{KV} E{E}", "kernel": name, "err_out": errors[0],
                         "err_grads": max(errors[1:]), "ms": 1e3 * best_time(fn, q, k, v, repeats=repeats)})
    return rows


def train_rows(fused: str, models: list[str], batch: int, seq: int, steps: int, repeats: int) -> list[dict]:
    import jax
    import numpy as np

    from scaling.config.run import load_model_config, run_config_from_dict
    from scaling.model import build_model
    from scaling.train.optim import make_optimizer
    from scaling.train.step import compile_steps, init_train_state

    rows = []
    for name in models:
        for kernel in ("xla", fused):
            model = load_model_config(name, [f"attention={kernel}", "dtype=bfloat16"])
            model = model.model_copy(update={"max_seq_len": max(model.max_seq_len, seq)})
            cfg = run_config_from_dict({"model": model.model_dump(mode="json"), "mesh": {"devices": 1},
                                        "data": {"source": "synthetic-math"},
                                        "train": {"tokens": batch * seq * (steps + 1), "seq_len": seq,
                                                  "batch_size": batch}})
            tx, schedule = make_optimizer(cfg.optimizer, steps + 1)
            graphdef, state, shardings = init_train_state(build_model(cfg.model, None, seed=0), tx, None)
            compiled = compile_steps(cfg.model, graphdef, shardings, tx, None, 1)
            rng = np.random.default_rng(0)
            tokens = rng.integers(0, cfg.model.V, (batch, seq + 1), dtype=np.int32)
            data = jax.device_put({"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
                                   "mask": np.ones((batch, seq), np.float32)}, compiled.batch_sharding)
            lr = np.float32(schedule(1))
            losses = []
            for _ in range(steps):  # the first call compiles
                state, metrics = compiled.train_step(state, data, lr)
                losses.append(float(metrics["loss"]))
            step_s = float("inf")
            for _ in range(repeats):  # the step donates its state: each window carries it on
                t0 = time.perf_counter()
                for _ in range(steps):
                    state, metrics = compiled.train_step(state, data, lr)
                jax.block_until_ready(metrics)
                step_s = min(step_s, (time.perf_counter() - t0) / steps)
            rows.append({"model": name, "kernel": kernel, "loss_1": losses[0], "loss_n": losses[-1],
                         "tokens_per_s": batch * seq / step_s, "ms": 1e3 * step_s})
            del state, compiled
    return rows


def table(kernels: list[dict], train: list[dict], steps: int, batch: int, seq: int) -> list[str]:
    lines = ["Kernel alone (bfloat16; errors against float32 attention; forward+backward time):", "",
             "| shape | kernel | max err out | max err dq,dk,dv | ms |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['shape']} | {r['kernel']} | {r['err_out']:.2e} | {r['err_grads']:.2e} | {r['ms']:.3f} |"
              for r in kernels]
    lines += ["", f"Train step (batch {batch} x seq {seq}, AdamW on one fixed random batch, {steps} steps):", "",
              "| model | kernel | loss after step 1 | loss after last | rel. gap to xla (last) | ms/step | tokens/s |",
              "|---|---|---:|---:|---:|---:|---:|"]
    xla = {r["model"]: r for r in train if r["kernel"] == "xla"}
    for r in train:
        gap = abs(r["loss_n"] - xla[r["model"]]["loss_n"]) / abs(xla[r["model"]]["loss_n"])
        lines.append(f"| {r['model']} | {r['kernel']} | {r['loss_1']:.5f} | {r['loss_n']:.5f} | {gap:.1e} | "
                     f"{r['ms']:.1f} | {r['tokens_per_s']:,.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", help=f"model ladder names, trained in bfloat16 (default {GPU['models']})")
    ap.add_argument("--batch", type=int, help=f"default {GPU['batch']}")
    ap.add_argument("--seq", type=int, help=f"default {GPU['seq']}")
    ap.add_argument("--steps", type=int,
                    help=f"train steps whose losses are compared and timed (default {GPU['steps']})")
    ap.add_argument("--repeats", type=int, help=f"timed windows; the fastest counts (default {GPU['repeats']})")
    ap.add_argument("--write", action="store_true", help="record the tables in BENCHMARKS.md")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="without a GPU: run the script with jax.nn's XLA path in place of cuDNN (checks the script)")
    a = ap.parse_args()
    from scaling.model.attention_impl import current_platform

    platform = current_platform()
    if platform != "cuda" and not a.cpu_smoke:
        print(f"error: this check needs an NVIDIA GPU, this machine runs JAX on {platform} "
              "(--cpu-smoke runs the script with dot_product in place of cudnn)", file=sys.stderr)
        sys.exit(2)
    fused = "cudnn" if platform == "cuda" else "dot_product"
    defaults = GPU if platform == "cuda" else SMOKE
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    kernels = kernel_rows(fused, KERNEL_SHAPES if platform == "cuda" else SMOKE_KERNEL_SHAPES, a.repeats)
    train = train_rows(fused, a.models, a.batch, a.seq, a.steps, a.repeats)
    lines = table(kernels, train, a.steps, a.batch, a.seq)
    print("\n".join(lines))
    if a.write:
        command = "python benchmarks/gpu_attention_check.py " + " ".join(sys.argv[1:])
        write_section("## GPU attention", [f"{environment()}. Command: `{command.strip()}`.", "", *lines])


if __name__ == "__main__":
    main()
