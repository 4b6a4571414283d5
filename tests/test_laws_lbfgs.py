"""The batched multi-start L-BFGS: same minima as scipy, starts that finish early stay put."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from scaling.laws.lbfgs import _batch_sizes, batched, minimize_batch, pad_points


def _rosenbrock(x, scale, shared):
    return scale * jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


_rosenbrock_vg = batched(jax.value_and_grad(_rosenbrock))


def test_every_start_reaches_the_rosenbrock_minimum_like_scipy():
    rng = np.random.default_rng(0)
    starts = rng.uniform(-2, 2, size=(300, 4))
    res = minimize_batch(_rosenbrock_vg, starts, np.ones(300))
    reference = minimize(lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2), starts[0],
                         method="L-BFGS-B")
    assert res.converged.mean() > 0.95
    best = res.x[res.best()]
    np.testing.assert_allclose(best, np.ones(4), atol=1e-3)
    assert res.f[0] == pytest.approx(reference.fun, abs=1e-6)
    np.testing.assert_allclose(res.x[0], reference.x, atol=1e-2)


def test_per_start_data_and_padding_rows_do_not_mix():
    # Scaled copies of one problem: the minimiser is the same, iteration counts differ.
    scales = np.array([1.0, 1e-3, 10.0] * 12)
    starts = np.tile([-1.2, 1.0, 0.5], (len(scales), 1))
    res = minimize_batch(_rosenbrock_vg, starts, scales)
    good = res.converged & (res.f < 1e-6 * scales)
    np.testing.assert_allclose(res.x[good], 1.0, atol=1e-2)
    assert good[scales >= 1].all()


def test_batches_cover_every_row_with_little_padding():
    for n in (1, 31, 33, 255, 256, 257, 4500):
        sizes = _batch_sizes(n)
        assert sum(sizes) >= n and sum(sizes) - n < 256


def test_points_are_padded_with_zero_weight():
    (x,), w = pad_points((np.arange(20.0),), np.ones((3, 20)))
    assert len(x) == 32 and w.shape == (3, 32) and w[:, 20:].sum() == 0
