"""Thousands of small, independent minimisations at once: a batched L-BFGS in JAX.

Scaling-law fits are 2-6 parameter problems solved from a grid of thousands of starts (Hoffmann et
al. use 4,500) and refitted for every bootstrap replicate. Here one L-BFGS step of a whole batch of
starts is one jitted computation, so there is no per-start Python or scipy overhead.

The stopping rules copy scipy's L-BFGS-B defaults on purpose: stop when the largest gradient
component is below `gtol`, or when one step lowers f by less than `ftol * max(|f|, 1)`. The second
rule is not scale-free, which is exactly why averaging instead of summing the Huber terms makes
the Chinchilla fit stop early; reproducing that behaviour needs the same rule.

Starts finish after very different numbers of steps (median ~45, a few several hundred). A vmapped
while-loop would run every start as long as the slowest. Instead the unfinished starts live in a
host-side pool and are packed, every `chunk` evaluations, into batches of two fixed sizes: work
follows the number of unfinished starts, and only two shapes per objective are ever compiled (a
4,500-start fit and an 8,000-start bootstrap share them).

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

# (X (B, P), per_start (B, ...), shared) -> (f (B,), df/dX (B, P)); see `batched`.
ValueAndGrad = Callable[[jax.Array, Any, Any], tuple[jax.Array, jax.Array]]


@dataclass(frozen=True)
class Settings:
    memory: int = 10  # curvature pairs kept, as in scipy
    gtol: float = 1e-5  # scipy's pgtol
    ftol: float = 2.220446049250313e-09  # scipy's factr * machine epsilon
    max_iter: int = 2000
    max_linesearch: int = 20
    curvature: float = 0.9  # weak Wolfe: accept a step once the slope has flattened to this fraction
    chunk: int = 16  # objective evaluations between compactions of the batch


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
    d: jax.Array  # current search direction and its slope g.d
    slope: jax.Array
    t: jax.Array  # next trial step length along d
    t_lo: jax.Array  # longest trial so far that lowered f enough (0: none), with f and g there
    f_lo: jax.Array
    g_lo: jax.Array
    shrinking: jax.Array  # a trial along d was too long, so never lengthen again
    n_trials: jax.Array  # trials along d so far (0: pick a new direction; -1: x not evaluated)
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
    # Initial scaling: s'y/y'y from the newest pair; before any pair, a first step of length
    # min(1, 1/|g|) like L-BFGS-B, so a steep start does not jump far away.
    gamma = jnp.where(rho[-1] > 0, jnp.dot(s_new, y_new) / jnp.dot(y_new, y_new), _first_step_scale(g))

    def oldest_to_newest(r_vec, pair):
        s, y, r, alpha = pair
        beta = r * jnp.dot(y, r_vec)
        return r_vec + s * (alpha - beta), None

    r_vec, _ = jax.lax.scan(oldest_to_newest, gamma * q, (s_hist, y_hist, rho, alphas))
    return -r_vec


def _first_step_scale(g):
    return jnp.minimum(1.0, 1.0 / (jnp.linalg.norm(g) + 1e-300))


def _where(cond, a: _State, b: _State) -> _State:
    return jax.tree.map(lambda u, v: jnp.where(cond, u, v), a, b)


def _propose(state: _State) -> tuple[jax.Array, _State]:
    """The next point to evaluate: the start itself, a new direction's first trial, or a retry.

    The line search is spread over successive evaluations instead of being an inner loop: in a
    batch, an inner loop would make every start pay for the start needing the most trials.
    """
    fresh = state.n_trials < 0
    new_direction = state.n_trials == 0
    d = _direction(state.g, state.s_hist, state.y_hist, state.rho)
    slope = jnp.dot(state.g, d)
    # A non-descent direction means the memory went stale: fall back to steepest descent.
    d = jnp.where(slope < 0, d, -state.g * _first_step_scale(state.g))
    slope = jnp.dot(state.g, d)
    prepared = state._replace(
        d=jnp.where(new_direction, d, state.d), slope=jnp.where(new_direction, slope, state.slope),
        t=jnp.where(fresh, 0.0, jnp.where(new_direction, 1.0, state.t)),
        t_lo=jnp.where(new_direction, 0.0, state.t_lo), shrinking=~new_direction & state.shrinking)
    return prepared.x + prepared.t * prepared.d, prepared


def _update(st: Settings, state: _State, f_t, g_t) -> _State:
    """Digest the objective at the proposed point. The search wants a weak Wolfe point (enough
    decrease and a slope that flattened): it lengthens a step that is too short, so the curvature
    pair s'y > 0 stays informative, and shortens one that is too long."""
    fresh = state.n_trials < 0
    t, t_lo, d, slope = state.t, state.t_lo, state.d, state.slope
    trials = state.n_trials + 1
    out_of_trials = trials >= st.max_linesearch
    armijo = jnp.isfinite(f_t) & (f_t <= state.f + 1e-4 * t * slope)
    flat_enough = jnp.dot(g_t, d) >= st.curvature * slope
    take_t = armijo & (flat_enough | state.shrinking | out_of_trials)
    take_lo = ~armijo & (t_lo > 0)  # overshot after lengthening: keep the last good trial
    accept = take_t | take_lo
    t_acc = jnp.where(take_t, t, t_lo)
    f_acc = jnp.where(take_t, f_t, state.f_lo)
    g_acc = jnp.where(take_t, g_t, state.g_lo)

    # Next trial if nothing was accepted: 4x longer if f still fell steeply, else the minimiser of
    # the quadratic through f(0), f'(0), f(t), kept within [0.1t, 0.5t].
    curvature = f_t - state.f - t * slope
    safe = jnp.isfinite(curvature) & (curvature > 0)
    t_quad = jnp.clip(jnp.where(safe, -slope * t * t / (2.0 * jnp.where(safe, curvature, 1.0)), 0.5 * t), 0.1 * t, 0.5 * t)
    t_next = jnp.where(armijo, 4.0 * t, t_quad)

    s, y = t_acc * d, g_acc - state.g
    sy = jnp.dot(s, y)
    add_pair = accept & (sy > 1e-10 * jnp.dot(y, y))

    def push(hist, row):
        return jnp.where(add_pair, jnp.roll(hist, -1, axis=0).at[-1].set(row), hist)

    small_decrease = (state.f - f_acc) <= st.ftol * jnp.maximum(jnp.maximum(jnp.abs(state.f), jnp.abs(f_acc)), 1.0)
    small_gradient = jnp.max(jnp.abs(g_acc)) <= st.gtol
    converged = accept & (small_decrease | small_gradient)
    n_iter = state.n_iter + accept
    # A failed search first drops the memory and retries along the gradient, as L-BFGS-B does.
    failed = ~accept & out_of_trials
    give_up = failed & (state.rho[-1] == 0)
    rho = jnp.where(failed, 0.0, push(state.rho, 1.0 / jnp.where(sy > 0, sy, 1.0)))
    searched = state._replace(
        x=jnp.where(accept, state.x + s, state.x), f=jnp.where(accept, f_acc, state.f),
        g=jnp.where(accept, g_acc, state.g), s_hist=push(state.s_hist, s), y_hist=push(state.y_hist, y), rho=rho,
        t=t_next, t_lo=jnp.where(armijo, t, t_lo), f_lo=jnp.where(armijo, f_t, state.f_lo),
        g_lo=jnp.where(armijo, g_t, state.g_lo), shrinking=state.shrinking | ~armijo,
        n_trials=jnp.where(accept | failed, 0, trials), n_iter=n_iter,
        done=give_up | converged | (n_iter >= st.max_iter), converged=converged)
    flat_start = jnp.max(jnp.abs(g_t)) <= st.gtol
    first = state._replace(f=f_t, g=g_t, n_trials=jnp.zeros_like(trials), done=~jnp.isfinite(f_t) | flat_start,
                           converged=jnp.isfinite(f_t) & flat_start)
    return _where(fresh, first, searched)


def _step(value_and_grad: ValueAndGrad, st: Settings, state: _State, per_start, shared) -> _State:
    """One batched objective evaluation for every start in the batch."""
    x_t, prepared = jax.vmap(_propose)(state)
    f_t, g_t = value_and_grad(x_t, per_start, shared)
    new = jax.vmap(partial(_update, st))(prepared, f_t, g_t)
    return jax.tree.map(lambda old, upd: jnp.where(_expand(state.done, old), old, upd), state, new)


def _expand(mask, like):
    """mask (B,) broadcast against a (B, ...) field."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def batched(value_and_grad_one):
    """Turn f(x, per_start_i, shared) -> (value, grad) for one start into the batched form
    minimize_batch calls. Define the result at module level: it is a static jit argument."""
    return jax.vmap(value_and_grad_one, in_axes=(0, 0, None))


def _layout(n_params: int, memory: int) -> dict[str, tuple[int, ...]]:
    """Shape of each state field for one start. The pool keeps all fields of a start in one row
    of a float64 matrix, so moving starts between batches is one gather, not eighteen."""
    vec, hist = (n_params,), (memory, n_params)
    shapes = dict(x=vec, f=(), g=vec, s_hist=hist, y_hist=hist, rho=(memory,), d=vec, slope=(), t=(),
                  t_lo=(), f_lo=(), g_lo=vec, shrinking=(), n_trials=(), n_iter=(), done=(), converged=())
    assert tuple(shapes) == _State._fields
    return shapes


_DTYPES = dict(shrinking=np.bool_, done=np.bool_, converged=np.bool_, n_trials=np.int32, n_iter=np.int32)


def _columns(shapes) -> dict[str, int]:
    """First column of each field in a packed row."""
    widths = [int(np.prod(s)) for s in shapes.values()]
    return dict(zip(shapes, np.cumsum([0] + widths[:-1]).tolist()))


def _unpack(rows, shapes) -> _State:
    fields = {}
    for (name, shape), col in zip(shapes.items(), _columns(shapes).values()):
        block = rows[:, col:col + int(np.prod(shape))].reshape(rows.shape[0], *shape)
        fields[name] = block.astype(_DTYPES.get(name, rows.dtype))
    return _State(**fields)


def _pack(state: _State, dtype=jnp.float64):
    return jnp.concatenate([v.reshape(v.shape[0], -1).astype(dtype) for v in state], axis=1)


@partial(jax.jit, static_argnames=("value_and_grad", "settings", "n_params"))
def _advance(value_and_grad, settings, n_params, rows, per_start, shared):
    """`settings.chunk` steps of every start in a batch (rows: packed states)."""
    state = _unpack(rows, _layout(n_params, settings.memory))
    state = jax.lax.fori_loop(0, settings.chunk, lambda _, s: _step(value_and_grad, settings, s, per_start, shared), state)
    return _pack(state)


# Two batch sizes: the bulk moves in batches of 256 starts, stragglers in batches of 32. Each
# size is one compilation (~1-2 s), which matters more than padding waste at this scale.
BATCH_SIZES = (256, 32)


def _batch_sizes(n_rows: int) -> list[int]:
    big, small = BATCH_SIZES
    n_big, rest = divmod(n_rows, big)
    if rest > big - small:  # nearly full: one more big batch beats many small ones
        return [big] * (n_big + 1)
    return [big] * n_big + [small] * -(-rest // small)


def pad_points(arrays: tuple[np.ndarray, ...], weights: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Pad per-point data to a power of two (>= 16) with zero-weight copies of the first point, so
    data sets of similar size share compiled executables."""
    n = len(arrays[0])
    size = max(16, 1 << (n - 1).bit_length())
    pad = size - n
    arrays = tuple(np.concatenate([a, np.full(pad, a[0])]) for a in arrays)
    weights = np.concatenate([weights, np.zeros((weights.shape[0], pad))], axis=1)
    return arrays, weights


def _initial_rows(x0: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> np.ndarray:
    rows = np.zeros((len(x0), sum(int(np.prod(s)) for s in shapes.values())))
    column = _columns(shapes)
    rows[:, :x0.shape[1]] = x0
    rows[:, column["f"]] = np.inf
    rows[:, column["n_trials"]] = -1  # not evaluated yet
    return rows


def minimize_batch(value_and_grad: ValueAndGrad, x0, per_start=None, shared=None,
                   settings: Settings = Settings()) -> MultiStartResult:
    """Minimise f(x; per_start[i], shared) from every row of `x0` (B, P).

    `value_and_grad(X, per_start, shared) -> (f, grad)` works on a whole batch (wrap a one-start
    function with `batched`) and must be defined at module level: it is a static jit argument,
    compiled once per batch size. `per_start` has a leading axis B (e.g. bootstrap weights);
    `shared` goes unchanged to every start (the data).
    """
    x0 = np.asarray(x0, dtype=np.float64)
    n_starts, n_params = x0.shape
    shapes = _layout(n_params, settings.memory)
    pool = _initial_rows(x0, shapes)
    per_start = np.asarray(np.zeros(n_starts) if per_start is None else per_start, dtype=np.float64)
    done_col = _columns(shapes)["done"]
    with jax.enable_x64(True):
        shared = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, dtype=np.float64)), shared)
        while True:
            active = np.flatnonzero(pool[:, done_col] == 0)
            if active.size == 0:
                break
            launched, begin = [], 0
            for size in _batch_sizes(active.size):
                rows = active[begin:begin + size]
                begin += size
                # Padding repeats a row but is marked done, so it never moves and is never written back.
                padded = np.concatenate([rows, np.full(size - rows.size, rows[0])])
                batch = pool[padded]
                batch[rows.size:, done_col] = 1
                # Dispatch every batch before reading any back, so the device never waits on the host.
                launched.append((rows, _advance(value_and_grad, settings, n_params, batch, per_start[padded], shared)))
            for rows, out in launched:
                pool[rows] = np.asarray(out)[:rows.size]

    final = {k: np.asarray(v) for k, v in _unpack(pool, shapes)._asdict().items()}
    f = np.where(np.isfinite(final["f"]), final["f"], np.inf)
    return MultiStartResult(final["x"], f, final["n_iter"], final["converged"])
