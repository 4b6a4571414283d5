"""The train/test-time exchange rate: recovered from synthetic accuracy with a known rate, refused with
its reason where it is undefined, and `scaling fit testtime` from a CSV of k and per-sample FLOPs."""
import json

import numpy as np
import pytest

from scaling.cli.main import main
from scaling.errors import UserError
from scaling.laws import Points, fit, render_table
from scaling.laws.synthetic_allocation import TESTTIME
from scaling.laws.synthetic_allocation import testtime_exchange_rate as exchange_rate  # not collected as tests
from scaling.laws.synthetic_allocation import testtime_plane as plane
from scaling.laws.synthetic_allocation import testtime_sampled as sampled


def _points(rows, y="accuracy") -> Points:
    return Points("synthetic", C=rows["train_flops"], x=rows["k"] * rows["sample_flops"], y=rows[y],
                  budget=rows["train_flops"])


def _write_csv(path, rows) -> str:
    names = list(rows)
    lines = [",".join(names)] + [",".join(f"{rows[n][i]:.6g}" for n in names) for i in range(len(rows[names[0]]))]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_noise_free_plane_gives_the_exact_exchange_rate():
    result = fit("testtime", _points(plane()))
    assert result.params["exchange_rate"] == pytest.approx(exchange_rate(), rel=1e-6)
    assert result.params["slope"] == pytest.approx(-(TESTTIME["b"] - TESTTIME["c"] / 2) / TESTTIME["c"], abs=1e-6)


# 2.2x and 32x test-time compute per 10x training; the second needs half-decade training steps for the
# models' accuracy ranges to overlap within k <= 64.
@pytest.mark.parametrize("params,train", [(TESTTIME, (1e18, 1e19, 1e20, 1e21)),
                                          ({"a": -15.0, "b": 0.8, "c": 0.4}, (1e18, 3e18, 1e19, 3e19, 1e20))])
def test_noisy_accuracy_recovers_the_rate_inside_its_interval(params, train):
    truth = exchange_rate(params)
    for seed in range(3):
        rows = plane(train=train, noise=0.01, params=params, seed=seed)
        result = fit("testtime", _points(rows), bootstrap=300, seed=seed)
        lo, hi = result.ci["exchange_rate"]
        assert lo <= truth <= hi
        # Within 0.15 decade of test compute per decade of training (a factor 1.4 on the rate).
        assert result.params["slope"] == pytest.approx(-np.log10(truth), abs=0.15)


def test_majority_vote_has_a_rate_and_pass_at_k_is_refused_with_its_reason():
    # Nine models a quarter decade apart; majority vote saturates in k, so with five models leaving one out
    # moves the frontier so far that its interval reaches slope 0: refused.
    rows = sampled(train=tuple(10 ** np.arange(18, 20.01, 0.25)), n_problems=1000, seed=1)
    majority = fit("testtime", _points(rows, "majority"), bootstrap=200)
    lo, hi = majority.ci["exchange_rate"]
    assert 1 < lo < majority.params["exchange_rate"] < hi < 10 * lo
    with pytest.raises(UserError, match=r"undefined: the frontier slope's 95% interval \[-3.19, 0.361\] reaches 0"):
        fit("testtime", _points(sampled(), "majority"), bootstrap=200)
    # pass@k rises so fast with k that sampling a smaller model more is always cheaper here.
    with pytest.raises(UserError, match="undefined: at equal accuracy more training compute needs as much or more"):
        fit("testtime", _points(sampled(), "pass_at_k"))


def test_the_interval_is_as_wide_as_the_models_scatter_about_the_frontier():
    # Noise-free curves in k, each model shifted by its own luck (logit offset, sd 0.1): resampling k values
    # would give a zero-width interval here; the models' scatter about the lines is the frontier's error.
    params, train = {"a": -15.0, "b": 0.8, "c": 0.4}, (1e18, 3e18, 1e19, 3e19, 1e20, 3e20)
    rows = plane(train=train, params=params)
    offset = dict(zip(train, np.random.default_rng(7).normal(0, 0.1, len(train))))
    rows["accuracy"] = 1 / (1 + np.exp(-(np.log(rows["accuracy"] / (1 - rows["accuracy"]))
                                         + np.vectorize(offset.get)(rows["train_flops"]))))
    result = fit("testtime", _points(rows), bootstrap=100)
    lo, hi = result.ci["exchange_rate"]
    assert lo <= exchange_rate(params) <= hi and hi / lo > 3
    assert any("leave-one-model-out jackknife over the 6 models" in n for n in result.notes)
    # Only the two nearest models share an accuracy: without either there is no frontier, so no interval.
    with pytest.raises(UserError, match="rests on single models: without 1e18, 1e19 no accuracy is reached by two"):
        fit("testtime", _points(plane(train=(1e18, 1e19, 1e21))), bootstrap=100)
    assert fit("testtime", _points(plane(train=(1e18, 1e19, 1e21)))).params["exchange_rate"] > 1  # no interval asked


def test_undefined_when_test_time_compute_does_not_help():
    rows = plane(params={"a": -9.0, "b": 0.5, "c": 0.0}, noise=0.002)
    with pytest.raises(UserError, match="undefined: .* model"):
        fit("testtime", _points(rows))


def test_undefined_when_no_accuracy_is_reached_by_two_models():
    # Two models three decades apart: their accuracy ranges do not overlap over k = 1..8.
    rows = plane(train=(1e17, 1e20), ks=(1, 2, 4, 8))
    with pytest.raises(UserError, match="no accuracy is reached by two models"):
        fit("testtime", _points(rows))


def test_models_with_too_few_k_are_left_out_by_name():
    rows = plane()
    keep = ~((rows["train_flops"] == 1e21) & (rows["k"] > 2))
    result = fit("testtime", _points({k: v[keep] for k, v in rows.items()}))
    assert "1e21 (2 test-time budgets)" in result.warnings[0]
    assert len(result.extra["models"]) == 3


def test_cli_fit_testtime_json_from_k_and_sample_flops(tmp_path, capsys):
    csv = _write_csv(tmp_path / "tt.csv", plane(noise=0.005))
    code = main(["fit", "testtime", csv, "--c", "train_flops", "--k", "k", "--sample-flops", "sample_flops",
                 "--y", "accuracy", "--bootstrap", "100", "--json", "-"])
    out, _ = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert {"law", "params", "ci", "n_points", "notes", "warnings", "models", "levels"} <= set(result)
    assert result["law"] == "testtime" and result["n_points"] == 28
    assert set(result["ci"]) == {"slope", "exchange_rate"}
    assert any("test-time compute = 'k' × 'sample_flops'" in n for n in result["notes"])
    assert main(["fit", "testtime", csv]) == 0  # defaults: k × sample_flops when there is no test_flops column
    assert "replaces 10x training compute" in capsys.readouterr().out


def test_cli_testtime_bad_input_is_one_line_exit_2(tmp_path, capsys):
    rows = plane()
    del rows["sample_flops"]
    csv = _write_csv(tmp_path / "no_sample.csv", rows)
    assert main(["fit", "testtime", csv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--sample-flops" in err
    assert main(["fit", "testtime", csv, "--holdout-largest", "--x", "k"]) == 2
    assert "--holdout-largest" in capsys.readouterr().err


def test_render_table_names_the_rate():
    result = fit("testtime", _points(plane(noise=0.005)), bootstrap=50)
    assert "replaces 10x training compute" in render_table(result)
    assert np.isfinite(result.params["slope"])
