"""Loss laws the data cannot support are refused with the reason (laws.support), in `scaling compare`'s
loss law and the demo's summary, instead of being printed as results."""
from __future__ import annotations

import numpy as np

from scaling.compare.analysis import loss_law
from scaling.demo import summary_lines
from scaling.laws import Points, fit
from scaling.laws.results import FitResult
from scaling.laws.support import unsupported
from scaling.laws.synthetic import isoflop_runs


def test_a_power_law_without_a_floor_drives_e_to_its_bound_and_is_refused():
    # Loss falling as a pure power of compute: nothing tells E apart from 0, and the fit puts it there.
    x = np.logspace(10, 12, 8)
    power = Points("no-floor", x=x, y=3.0 * (x / 1e10) ** -0.2, labels={"x": "flops", "y": "eval_loss"})
    result = fit("power", power, bootstrap=0)
    assert result.params["E"] < 1e-3  # what used to be printed (as E = 1e-305 on the demo's points)
    assert "E = " in unsupported(result) and "bound" in unsupported(result)
    law, tried = loss_law(None, power, bootstrap=0, seed=0, missing="no losses")
    assert not law.ok and "power: refused, E = " in law.reason and tried[-1].startswith("power: refused")


def test_an_exponent_interval_spanning_orders_of_magnitude_or_zero_is_refused():
    base = dict(law="power", n_points=6, observed=np.array([2.0, 2.5]))
    wide = FitResult(params={"E": 1.5, "A": 1.0, "alpha": 0.3}, ci={"alpha": (-88.0, 12.6)}, **base)
    assert "alpha" in unsupported(wide) and "[-88, 12.6]" in unsupported(wide)
    decades = FitResult(params={"E": 1.5, "A": 1.0, "alpha": 0.3}, ci={"alpha": (0.02, 0.9)}, **base)
    assert "spans more than a decade" in unsupported(decades)
    tight = FitResult(params={"E": 1.5, "A": 1.0, "alpha": 0.3}, ci={"alpha": (0.2, 0.45)}, **base)
    assert unsupported(tight) is None


def test_a_chinchilla_fit_of_clean_isoflop_data_is_supported_and_quoted():
    runs = isoflop_runs(budgets=(1e18, 1e19, 1e20), runs_per_budget=6)
    pts = Points("synthetic", N=runs["n_params"], D=runs["tokens"], C=runs["flops"], loss=runs["eval_loss"],
                 budget=runs["budget"])
    chin = fit("chinchilla", pts, bootstrap=20)
    assert unsupported(chin) is None
    law, tried = loss_law(pts, None, bootstrap=0, seed=0)
    assert law.ok and law.law == "isoflop"


def test_the_demo_summary_says_refused_instead_of_quoting_an_unsupported_chinchilla_fit():
    class NoComparison:
        slopes, gains = {}, []

    bad = FitResult("chinchilla", {"E": 1e-305, "A": 5.0, "B": 9.0, "alpha": 0.3, "beta": 0.3}, 17,
                    observed=np.array([2.1, 2.4]))
    lines = summary_lines({"chinchilla": bad}, NoComparison())
    assert lines[1].startswith("Chinchilla (stdlib-code): refused (E = 1e-305 is at its bound 0")
    assert "1e-305 [" not in " ".join(lines)
