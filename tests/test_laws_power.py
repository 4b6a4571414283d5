"""Power law y = E + A x^-α: recovery, fixed E, bootstrap coverage, holdout, bad input."""
import numpy as np
import pytest

from scaling.errors import UserError
from scaling.laws import Points, fit

TRUTH = {"E": 1.8, "A": 2.0e3, "alpha": 0.15}


def _points(seed, n=30, noise=0.003):
    rng = np.random.default_rng(seed)
    x = np.logspace(17, 21, n)
    y = (TRUTH["E"] + TRUTH["A"] * x ** -TRUTH["alpha"]) * np.exp(rng.normal(0, noise, n))
    return Points("synthetic", x=x, y=y, labels={"x": "flops", "y": "eval_loss"})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_a_saturating_power_law(seed):
    result = fit("power", _points(seed))
    assert result.params["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.1)
    assert result.params["E"] == pytest.approx(TRUTH["E"], rel=0.03)
    assert result.r2 > 0.99


def test_fixed_zero_floor_is_a_straight_line_in_log_log():
    x = np.logspace(10, 14, 20)
    result = fit("power", Points("pure", x=x, y=7.0 * x ** -0.3), fixed={"E": 0})
    assert result.params == pytest.approx({"E": 0, "A": 7.0, "alpha": 0.3}, rel=1e-4)


def test_bootstrap_covers_the_truth_and_holdout_predicts_the_largest_x():
    result = fit("power", _points(0), bootstrap=200, holdout_largest=True)
    for name, value in TRUTH.items():
        lo, hi = result.ci[name]
        assert lo <= value <= hi, name
    holdout = result.extra["holdout"]
    assert holdout["x"] == pytest.approx(1e21) and holdout["mean_rel_error"] < 0.02


def test_too_few_points_and_bad_fixes_are_user_errors():
    with pytest.raises(UserError, match="too few"):
        fit("power", Points("tiny", x=np.array([1.0, 2.0, 3.0]), y=np.array([3.0, 2.0, 1.5])))
    with pytest.raises(UserError, match="can fix only E"):
        fit("power", _points(0), fixed={"alpha": 0.1})
