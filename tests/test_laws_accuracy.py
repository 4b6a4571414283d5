"""Accuracy laws: log-linear (and its error-rate form) and the ScaleRL sigmoid."""
import numpy as np
import pytest

from scaling.errors import UserError
from scaling.laws import Points, fit
from scaling.laws.synthetic import sigmoid_curve

SIGMOID = {"R0": 0.12, "A": 0.78, "B": 0.9, "C_mid": 3e18}


def _sigmoid_points(seed, n=40, noise=0.01):
    x = np.logspace(17, 20.5, n)
    return Points("synthetic", x=x, y=sigmoid_curve(SIGMOID, x, noise, seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loglinear_recovers_gain_per_decade(seed):
    rng = np.random.default_rng(seed)
    x = np.logspace(18, 21, 30)
    y = -2.0 + 0.13 * np.log10(x) + rng.normal(0, 0.01, 30)
    result = fit("loglinear", Points("synthetic", x=x, y=y))
    assert result.params["b"] == pytest.approx(0.13, abs=0.01)
    assert result.params["a"] + result.params["b"] * 19.5 == pytest.approx(-2.0 + 0.13 * 19.5, abs=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_rate_form_recovers_a_power_law_in_the_error(seed):
    rng = np.random.default_rng(seed)
    x = np.logspace(18, 21, 30)
    y = 1 - np.exp(5.0 - 0.2 * np.log(x) + rng.normal(0, 0.01, 30))
    result = fit("loglinear", Points("synthetic", x=x, y=y), bootstrap=200)
    assert result.extra["error_rate"]["k"] == pytest.approx(0.2, abs=0.01)
    lo, hi = result.ci["error_rate.k"]
    assert lo <= 0.2 <= hi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_recovers_the_scalerl_curve(seed):
    result = fit("sigmoid", _sigmoid_points(seed))
    p = result.params
    assert p["A"] == pytest.approx(SIGMOID["A"], abs=0.03)
    assert p["R0"] == pytest.approx(SIGMOID["R0"], abs=0.03)
    assert p["B"] == pytest.approx(SIGMOID["B"], rel=0.2)
    assert p["C_mid"] == pytest.approx(SIGMOID["C_mid"], rel=0.3)
    assert p["R0"] <= p["A"] <= 1


def test_sigmoid_bootstrap_covers_the_truth_and_holdout_reports_an_error():
    result = fit("sigmoid", _sigmoid_points(0), bootstrap=100, holdout_largest=True)
    for name, value in SIGMOID.items():
        lo, hi = result.ci[name]
        assert lo <= value <= hi, name
    assert result.extra["holdout"]["mean_abs_error"] < 0.05


def test_sigmoid_asymptote_stays_below_one_even_when_data_climb_steeply():
    x = np.logspace(17, 19, 20)
    y = np.clip(0.1 + 0.45 * (np.log10(x) - 17), 0, 1)  # still climbing at the last point
    result = fit("sigmoid", Points("steep", x=x, y=y))
    assert result.params["A"] <= 1.0


def test_accuracies_outside_0_1_are_a_user_error():
    x = np.logspace(17, 19, 10)
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        fit("sigmoid", Points("pct", x=x, y=np.linspace(10, 80, 10)))
