"""How fast are the fits? The Chinchilla fit on Epoch's 240 points, JAX vs a scipy loop, and bootstrap.

    python benchmarks/bench_fits.py            # full scipy baselines (2 x 4,500 L-BFGS-B runs, a few min)
    python benchmarks/bench_fits.py --scipy-starts 900 --no-write   # quicker, extrapolated, print only

The scipy baseline is the usual notebook procedure: `scipy.optimize.minimize(..., method="L-BFGS-B",
jac=True)` once per start of the 4,500-point grid, keeping the best, with an analytic gradient and
the objective written with scipy.special (logsumexp, huber); a second, stronger baseline writes the
objective in plain numpy. The scipy loops run in a separate process that never imports JAX, with
one BLAS thread (OpenBLAS's spinning threads slow L-BFGS-B's tiny BLAS calls badly). Wall and CPU
times are both reported because the machine may be shared. Writes the "## Fits" section of
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EPOCH_CSV = REPO.parent / "shared/data/chinchilla_epoch/svg_extracted_data.csv"
EPOCH_HOFFMANN_FIT = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.3473, "beta": 0.3672}


def timed(fn, repeats: int = 1):
    """(result, best wall seconds, CPU seconds of that run)."""
    best = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[1]:
            best = (out, wall, cpu)
    return best


def scipy_objective(pts, tuned: bool):
    """Huber objective + analytic gradient in numpy. `tuned=False` is the usual notebook code
    (scipy.special.logsumexp and huber); `tuned=True` replaces them with plain numpy, which makes
    each call ~10x cheaper: a stronger baseline than most notebooks."""
    from scipy.special import huber, logsumexp

    log_n, log_d, log_l, delta = np.log(pts.N), np.log(pts.D), np.log(pts.loss), 1e-3

    def value_and_grad(p):
        terms = np.stack([p[0] - p[3] * log_n, p[1] - p[4] * log_d, np.full_like(log_n, p[2])])
        if tuned:
            top = terms.max(axis=0)
            pred = top + np.log(np.exp(terms - top).sum(axis=0))
            r = pred - log_l
            value = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
        else:
            pred = logsumexp(terms, axis=0)
            r = pred - log_l
            value = huber(delta, r).sum()
        share = np.clip(r, -delta, delta) * np.exp(terms - pred)
        grad = [share[0].sum(), share[1].sum(), share[2].sum(), -(share[0] * log_n).sum(), -(share[1] * log_d).sum()]
        return value, np.array(grad)

    return value_and_grad


def scipy_fit(value_and_grad, starts: np.ndarray):
    """The baseline loop: one scipy L-BFGS-B run per start, keep the best."""
    from scipy.optimize import minimize

    best = None
    for x0 in starts:
        res = minimize(value_and_grad, x0, jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return best


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{model}, {os.cpu_count()} CPU cores{load}"


def versions() -> str:
    import jax
    import optax
    import scipy

    return (f"python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), "
            f"numpy {np.__version__}, scipy {scipy.__version__}, optax {optax.__version__}")


def write_section(text: str, path: Path) -> None:
    """Replace (or append) the '## Fits' section of BENCHMARKS.md, leaving other sections alone."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    lines, out, skipping = old.splitlines(), [], False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == "## Fits"
            if skipping:
                continue
        if not skipping:
            out.append(line)
    body = "\n".join(out).rstrip("\n")
    path.write_text(body + "\n\n" + text.rstrip("\n") + "\n")


def hoffmann_starts() -> np.ndarray:
    """Hoffmann's 4,500-start grid (a, b, e, α, β), built here so the scipy worker never imports JAX
    (main() checks it equals scaling.laws.chinchilla.hoffmann_grid)."""
    import itertools

    ab, exps, es = np.arange(0.0, 25.1, 5.0), np.arange(0.0, 2.01, 0.5), np.arange(-1.0, 1.01, 0.5)
    return np.array([(a, b, e, al, be) for al, be, e, a, b in itertools.product(exps, exps, es, ab, ab)])


def scipy_worker(objective: str, n_starts: int) -> None:
    """Time the scipy loop in this (JAX-free) process and print the result as JSON: XLA's idle
    threads in the parent would otherwise slow scipy down and flatter the speedup."""
    import json

    from scaling.laws import Columns, load_points

    pts = load_points(EPOCH_CSV, "chinchilla", Columns(n="Model Size", c="Training FLOP", loss="loss"), 5)
    grid = hoffmann_starts()
    subset = grid[np.linspace(0, len(grid) - 1, min(n_starts, len(grid))).astype(int)]
    best, wall, cpu = timed(lambda: scipy_fit(scipy_objective(pts, objective == "numpy"), subset))
    print(json.dumps({"wall": wall, "cpu": cpu, "n_starts": len(subset), "fun": float(best.fun), "x": best.x.tolist()}))


def run_worker(objective: str, n_starts: int) -> dict:
    import json
    import subprocess

    # One BLAS thread: L-BFGS-B makes many tiny BLAS calls, and OpenBLAS's default thread pool spins
    # on them; on a busy 2-core machine that made the scipy loop ~15x slower (an unfair baseline).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--scipy-worker", objective, "--scipy-starts", str(n_starts)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scipy-starts", type=int, default=4500, help="scipy starts to time (extrapolated to 4,500)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    ap.add_argument("--scipy-worker", choices=["special", "numpy"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scipy_worker:
        scipy_worker(args.scipy_worker, args.scipy_starts)
        return 0

    from scaling.laws import Columns, fit, load_points
    from scaling.laws.chinchilla import hoffmann_grid, to_params

    assert np.array_equal(hoffmann_grid(), hoffmann_starts())
    pts = load_points(EPOCH_CSV, "chinchilla", Columns(n="Model Size", c="Training FLOP", loss="loss"), 5)
    print(f"data: {len(pts)} points from {EPOCH_CSV.name}; {machine()}")

    first, first_wall, _ = timed(lambda: fit("chinchilla", pts))
    jax_fit, jax_wall, jax_cpu = timed(lambda: fit("chinchilla", pts), repeats=3)
    print(f"jax: first call (compile + fit) {first_wall:.1f} s; after compilation {jax_wall:.2f} s wall, {jax_cpu:.2f} s CPU")

    baselines = {name: run_worker(name, args.scipy_starts) for name in ("special", "numpy")}
    scale = 4500 / baselines["special"]["n_starts"]
    extrapolated = " (extrapolated from %d starts)" % baselines["special"]["n_starts"] if scale > 1 else ""
    for name, b in baselines.items():
        print(f"scipy L-BFGS-B loop ({'numpy-only' if name == 'numpy' else 'scipy.special'} objective, separate "
              f"process): {b['wall'] * scale:.1f} s wall, {b['cpu'] * scale:.1f} s CPU{extrapolated}")
    # The machine may be shared: time JAX again after the long scipy runs and keep the best.
    again, wall2, cpu2 = timed(lambda: fit("chinchilla", pts), repeats=2)
    if wall2 < jax_wall:
        jax_wall, jax_cpu = wall2, cpu2
    sp_wall, sp_cpu = baselines["special"]["wall"] * scale, baselines["special"]["cpu"] * scale
    tuned_wall, tuned_cpu = baselines["numpy"]["wall"] * scale, baselines["numpy"]["cpu"] * scale
    sp_params = to_params(np.array(baselines["special"]["x"]))
    sp_fun = baselines["special"]["fun"]
    worst = max(abs(jax_fit.params[k] / sp_params[k] - 1) for k in sp_params)
    print(f"same optimum: objective jax {jax_fit.objective:.8g} vs scipy {sp_fun:.8g}; largest parameter "
          f"difference {worst:.1e} (relative)")
    speedup_wall, speedup_cpu = sp_wall / jax_wall, sp_cpu / jax_cpu
    print(f"speedup after compilation: {speedup_wall:.0f}x wall, {speedup_cpu:.0f}x CPU "
          f"(vs the numpy-only objective: {tuned_wall / jax_wall:.0f}x wall, {tuned_cpu / jax_cpu:.0f}x CPU)")

    fit("chinchilla", pts, bootstrap=20)  # compiles nothing new, but warms the bootstrap path
    boot, boot_wall, boot_cpu = timed(lambda: fit("chinchilla", pts, bootstrap=args.bootstrap))
    print(f"bootstrap: {args.bootstrap} refits in {boot_wall:.1f} s wall ({boot_cpu:.1f} s CPU) "
          f"including the full fit")

    rows = "\n".join(f"| {k} | {jax_fit.params[k]:.4g} | {sp_params[k]:.4g} | {EPOCH_HOFFMANN_FIT[k]:.4g} | "
                     f"[{boot.ci[k][0]:.4g}, {boot.ci[k][1]:.4g}] |" for k in EPOCH_HOFFMANN_FIT)
    section = f"""## Fits

Chinchilla Approach 3 on Epoch AI's 240 points (`{EPOCH_CSV.name}`, 5 highest losses dropped,
D = C/(6N)): summed Huber (δ = 1e-3) on log loss from Hoffmann's 4,500-start grid.

- Date: {datetime.date.today().isoformat()}
- Device: {machine()} (JAX on CPU, float64 inside the fits)
- Versions: {versions()}
- Command: `python benchmarks/bench_fits.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`

| | wall | CPU |
|---|---:|---:|
| JAX, first call (compile + fit) | {first_wall:.1f} s | |
| JAX multi-start L-BFGS, after compilation (best of 5, before and after the scipy runs) | {jax_wall:.2f} s | {jax_cpu:.2f} s |
| scipy L-BFGS-B loop over the same starts, scipy.special objective{extrapolated} | {sp_wall:.1f} s | {sp_cpu:.1f} s |
| speedup over it | {speedup_wall:.0f}x | {speedup_cpu:.0f}x |
| scipy loop with a numpy-only objective (stronger baseline){extrapolated} | {tuned_wall:.1f} s | {tuned_cpu:.1f} s |
| speedup over it | {tuned_wall / jax_wall:.0f}x | {tuned_cpu / jax_cpu:.0f}x |
| full fit + {args.bootstrap} bootstrap refits (from the best full-data optima + 4 grid starts each) | {boot_wall:.1f} s | {boot_cpu:.1f} s |

Same optimum: objective {jax_fit.objective:.8g} (JAX) vs {sp_fun:.8g} (scipy); parameters agree to
{worst:.1e} relative.

| param | JAX | scipy | Epoch (Hoffmann's procedure) | 95% bootstrap CI |
|---|---:|---:|---:|---:|
{rows}
"""
    if not args.no_write:
        write_section(section, REPO / "BENCHMARKS.md")
        print(f"wrote the '## Fits' section of {REPO / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
