"""Thousands of small, independent minimisations at once: a batched L-BFGS in JAX.

Scaling-law fits are 2-6 parameter problems solved from a grid of thousands of starts (Hoffmann et
al. use 4,500) and then refitted for every bootstrap replicate. One L-BFGS step of every start is
a single vmapped, jitted computation, so the whole grid costs little more than one start.

The stopping rules copy scipy's L-BFGS-B defaults on purpose: stop when the largest gradient
component is below `gtol`, or when one step lowers f by less than `ftol * max(|f|, 1)`. The second
rule is not scale-free, which is exactly why averaging instead of summing the Huber terms makes
the published Chinchilla fit stop early; reproducing that needs the same rule.

Starts finish after very different numbers of steps (most in ~40, a few in hundreds). A vmapped
while-loop would run every start for as long as the slowest one, so the loop runs in chunks of a
few steps and, between chunks, moves the unfinished starts into a smaller batch (sizes are powers
of two, so only a handful of shapes are ever compiled).

Everything runs in float64 under a local `jax.enable_x64` context, so the rest of the process keeps
its float32 default.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Objective = Callable[[jax.Array, Any, Any], jax.Array]  # (x, per_start, shared) -> scalar


@dataclass(frozen=True)
class Settings:
    memory: int = 10  # curvature pairs kept, as in scipy
    gtol: float = 1e-5  # scipy's pgtol
    ftol: float = 2.220446049250313e-09  # scipy's factr * machine epsilon
    max_iter: int = 2000
    max_linesearch: int = 20
    chunk: int = 8  # steps between compactions of the batch


class MultiStartResult(NamedTuple):
    x: np.ndarray  # (B, P) final points
    f: np.ndarray  # (B,) objective there (inf where it was not finite)
    n_iter: np.ndarray  # (B,) L-BFGS iterations used
    converged: np.ndarray  # (B,) stopped by a tolerance rather than a failed line search / max_iter

    def best(self) -> int:
        return int(np.argmin(self.f))


class _State(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    s_hist: jax.Array  # (m, P) oldest first; unused rows have rho == 0
    y_hist: jax.Array
    rho: jax.Array
    n_iter: jax.Array
    done: jax.Array
    converged: jax.Array


def _direction(g, s_hist, y_hist, rho):
    """Two-loop recursion: -H g with the limited-memory inverse Hessian."""

    def newest_to_oldest(q, pair):
        s, y, r = pair
        alpha = r * jnp.dot(s, q)
        return q - alpha * y, alpha

    q, alphas = jax.lax.scan(newest_to_oldest, g, (s_hist, y_hist, rho), reverse=True)
    s_new, y_new = s_hist[-1], y_hist[-1]
    have_pairs = rho[-1] > 0
    # Initial scaling: s'y/y'y from the newest pair; before any pair, a first step of length
    # min(1, 1/|g|) like L-BFGS-B, so a steep start does not jump far away.
    gamma = jnp.where(have_pairs, jnp.dot(s_new, y_new) / jnp.dot(y_new, y_new),
                      jnp.minimum(1.0, 1.0 / (jnp.linalg.norm(g) + 1e-300)))

    def oldest_to_newest(r_vec, pair):
        s, y, r, alpha = pair
        beta = r * jnp.dot(y, r_vec)
        return r_vec + s * (alpha - beta), None

    r_vec, _ = jax.lax.scan(oldest_to_newest, gamma * q, (s_hist, y_hist, rho, alphas))
    return -r_vec


def _step(objective: Objective, st: Settings, state: _State, per_start, shared) -> _State:
    value_and_grad = jax.value_and_grad(objective)
    d = _direction(state.g, state.s_hist, state.y_hist, state.rho)
    slope = jnp.dot(state.g, d)
    # A non-descent direction means the memory went stale: fall back to steepest descent.
    bad = ~(slope < 0)
    d = jnp.where(bad, -state.g * jnp.minimum(1.0, 1.0 / (jnp.linalg.norm(state.g) + 1e-300)), d)
    slope = jnp.where(bad, jnp.dot(state.g, d), slope)

    def trial(t):
        f_t, g_t = value_and_grad(state.x + t * d, per_start, shared)
        ok = jnp.isfinite(f_t) & (f_t <= state.f + 1e-4 * t * slope)
        return f_t, g_t, ok

    def keep_backtracking(c):
        _, _, _, ok, k = c
        return ~ok & (k < st.max_linesearch) & ~state.done

    def backtrack(c):
        t, f_t, _, _, k = c
        # Minimiser of the quadratic through f(0), f'(0), f(t), kept within [0.1 t, 0.5 t].
        curvature = f_t - state.f - t * slope
        t_quad = -slope * t * t / (2.0 * jnp.where(jnp.isfinite(curvature) & (curvature > 0), curvature, jnp.inf))
        t_new = jnp.clip(jnp.nan_to_num(t_quad, nan=0.5 * t), 0.1 * t, 0.5 * t)
        f_new, g_new, ok = trial(t_new)
        return t_new, f_new, g_new, ok, k + 1

    f1, g1, ok1 = trial(1.0)
    t, f_new, g_new, ok, _ = jax.lax.while_loop(keep_backtracking, backtrack, (1.0, f1, g1, ok1, 0))
    x_new = state.x + t * d

    s, y = x_new - state.x, g_new - state.g
    sy = jnp.dot(s, y)
    add_pair = ok & (sy > 1e-10 * jnp.dot(y, y))
    s_hist = jnp.where(add_pair, jnp.roll(state.s_hist, -1, axis=0).at[-1].set(s), state.s_hist)
    y_hist = jnp.where(add_pair, jnp.roll(state.y_hist, -1, axis=0).at[-1].set(y), state.y_hist)
    rho = jnp.where(add_pair, jnp.roll(state.rho, -1).at[-1].set(1.0 / jnp.where(sy > 0, sy, 1.0)), state.rho)

    small_decrease = (state.f - f_new) <= st.ftol * jnp.maximum(jnp.maximum(jnp.abs(state.f), jnp.abs(f_new)), 1.0)
    small_gradient = jnp.max(jnp.abs(g_new)) <= st.gtol
    converged = ok & (small_decrease | small_gradient)
    n_iter = state.n_iter + 1
    done = ~ok | converged | (n_iter >= st.max_iter)
    new = _State(jnp.where(ok, x_new, state.x), jnp.where(ok, f_new, state.f), jnp.where(ok, g_new, state.g),
                 s_hist, y_hist, rho, n_iter, done, converged)
    # Finished starts stay exactly where they stopped.
    return jax.tree.map(lambda old, upd: jnp.where(state.done, old, upd), state, new)


@partial(jax.jit, static_argnames=("objective", "settings"))
def _init(objective, settings, x0, per_start, shared):
    def one(x, p):
        f, g = jax.value_and_grad(objective)(x, p, shared)
        m, n = settings.memory, x.shape[0]
        done = ~jnp.isfinite(f) | (jnp.max(jnp.abs(g)) <= settings.gtol)
        return _State(x, f, g, jnp.zeros((m, n)), jnp.zeros((m, n)), jnp.zeros((m,)),
                      jnp.array(0), done, jnp.isfinite(f) & done)

    return jax.vmap(one)(x0, per_start)


@partial(jax.jit, static_argnames=("objective", "settings"))
def _advance(objective, settings, state, per_start, shared):
    step = jax.vmap(lambda s, p: _step(objective, settings, s, p, shared))
    return jax.lax.fori_loop(0, settings.chunk, lambda _, s: step(s, per_start), state)


def _bucket(n: int) -> int:
    return max(8, 1 << (n - 1).bit_length())


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def minimize_batch(objective: Objective, x0, per_start=None, shared=None,
                   settings: Settings = Settings()) -> MultiStartResult:
    """Minimise `objective(x, per_start[i], shared)` from every row of `x0` (B, P).

    `objective` must be a module-level function (it is a static jit argument, compiled once per
    batch shape). `per_start` is a pytree whose leaves have a leading axis B (e.g. bootstrap
    weights); `shared` is passed unchanged to every start (e.g. the data).
    """
    with jax.enable_x64(True):
        x0 = jnp.asarray(np.asarray(x0, dtype=np.float64))
        n_starts = x0.shape[0]
        if per_start is None:
            per_start = jnp.zeros((n_starts,))
        per_start = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, dtype=np.float64)), per_start)
        shared = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, dtype=np.float64)), shared)

        state = _init(objective, settings, x0, per_start, shared)
        owner = np.arange(n_starts)  # global index of each batch row; -1 for padding
        final = {k: np.asarray(v).copy() for k, v in state._asdict().items()}

        def write_back(state, owner):
            real = owner >= 0
            for k, v in state._asdict().items():
                final[k][owner[real]] = np.asarray(v)[real]

        for _ in range(0, settings.max_iter, settings.chunk):
            done = np.asarray(state.done)
            active = np.flatnonzero(~done & (owner >= 0))
            if active.size == 0:
                break
            size = _bucket(active.size)
            if size <= len(owner) // 2:
                write_back(state, owner)
                pad = np.full(size - active.size, active[0])
                rows = np.concatenate([active, pad])
                state = _take(state, jnp.asarray(rows))
                # Padding rows duplicate an active start but are marked done, so they cost nothing
                # beyond their slot in the batch and are never written back.
                state = state._replace(done=state.done.at[active.size:].set(True))
                per_start = _take(per_start, jnp.asarray(rows))
                owner = np.concatenate([owner[active], np.full(pad.size, -1)])
            state = _advance(objective, settings, state, per_start, shared)
        write_back(state, owner)

    f = np.where(np.isfinite(final["f"]), final["f"], np.inf)
    return MultiStartResult(final["x"], f, final["n_iter"], final["converged"])
