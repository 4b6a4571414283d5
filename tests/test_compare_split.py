"""The split sweep's report without a model: `scaling compare SPLIT.csv` on synthetic pipelines (a budget
the law refuses among ones it fits), the exchange rate from synthetic test-time curves with a known
rate (and its refusal), and pass@k / maj@k on samples checked by hand. The report of a real split
sweep, with test-time sampling, is in test_sweep_split.py (it reuses that module's tiny sweep)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from scaling.cli.main import main
from scaling.compare.split.analysis import exchange_rate
from scaling.laws.synthetic_allocation import split_runs
from scaling.laws.synthetic_allocation import testtime_exchange_rate as known_rate  # not collected as a test
from scaling.laws.synthetic_allocation import testtime_plane as plane
from scaling.rl.evaluate import doubling_ks, majority_at_k, pass_at_k_mean


def test_pass_and_majority_at_k_on_samples_checked_by_hand():
    # Problem 1: right answer "4", drawn 4, 5, 5, 5. Problem 2: right answer "7", drawn 7, none, none, 3.
    answers = ["4", "5", "5", "5", "7", None, None, "3"]
    correct = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], bool)
    # pass@k = 1 - C(n-c, k)/C(n, k) with n = 4, c = 1: 1/4, 1 - 3/6, 1.
    assert [pass_at_k_mean(correct, k) for k in (1, 2, 4)] == [0.25, 0.5, 1.0]
    # maj@1: each sample alone. maj@2 over blocks (4,5) (5,5) | (7,·) (·,3): a tie goes to the first drawn,
    # a missing answer abstains: (1 + 0 + 1 + 0) / 4. maj@4: 5 wins | 7 and 3 tie, 7 drawn first.
    assert majority_at_k(answers, correct, 1) == 0.25
    assert majority_at_k(answers, correct, 2) == 0.5
    assert majority_at_k(answers, correct, 4) == 0.5
    assert majority_at_k(answers, correct, 2, blocks=1) == 1.0  # the RL evaluation's first-k vote
    assert doubling_ks(16) == [1, 2, 4, 8, 16] and doubling_ks(12) == [1, 2, 4, 8, 12]


def _models(rows: dict, metric_noise: str = "accuracy") -> list[dict]:
    """Synthetic test-time rows as the report's model records (one per training compute)."""
    out = []
    for train in np.unique(rows["train_flops"]):
        m = rows["train_flops"] == train
        acc = rows[metric_noise][m].tolist()
        out.append({"run_id": f"m{train:.0e}", "name": "synthetic", "role": "pretrained", "train_flops": float(train),
                    "sample_flops": float(rows["sample_flops"][m][0]), "k": rows["k"][m].astype(int).tolist(),
                    "maj@k": acc, "pass@k": acc})
    return out


def test_the_reports_exchange_rate_recovers_a_known_rate_inside_its_interval():
    truth = known_rate()
    rate = exchange_rate(_models(plane(noise=0.01, seed=1)), "maj@k", bootstrap=300, seed=1)
    assert rate.reason is None
    lo, hi = rate.result.ci["exchange_rate"]
    assert lo <= truth <= hi
    assert np.log10(rate.result.params["exchange_rate"]) == pytest.approx(np.log10(truth), abs=0.15)


def test_the_exchange_rate_is_refused_with_its_reason_when_sampling_does_not_help():
    flat = _models(plane(params={"a": -9.0, "b": 0.5, "c": 0.0}))  # accuracy independent of k
    rate = exchange_rate(flat, "maj@k", bootstrap=0)
    assert rate.result is None and "does not rise with test-time compute" in rate.reason
    zeros = [{**m, "maj@k": [0.0] * len(m["k"])} for m in flat]
    assert "score 0 or 1 at every k" in exchange_rate(zeros, "maj@k").reason
    assert "not measured" in exchange_rate([], "maj@k", not_measured="a CSV").reason


def _write_split_csv(path) -> tuple[str, dict]:
    """Two budgets of the synthetic surface (interior optima) and one where RL only costs accuracy."""
    rows = split_runs(budgets=(1e18, 1e19), repeats=2, noise=0.005)
    shares = np.array([0, 0.05, 0.1, 0.2, 0.35, 0.5])
    lines = ["total_flops,rl_share,accuracy"]
    lines += [f"{c:g},{f:g},{y:.5f}" for c, f, y in zip(rows["total_flops"], rows["rl_share"], rows["accuracy"])]
    lines += [f"1e17,{f:g},{0.2 - 0.3 * f:.5f}" for f in shares]
    path.write_text("\n".join(lines) + "\n")
    return str(path), rows


def test_report_of_split_pipelines_draws_every_budget_and_gives_refused_ones_their_reason(tmp_path, capsys):
    csv, rows = _write_split_csv(tmp_path / "split.csv")
    out = tmp_path / "report"
    assert main(["compare", csv, "--out", str(out), "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"report.md", "compare.json", "iso_compute.png", "iso_compute.svg",
                                              "best_share.png", "best_share.svg"}
    report = json.loads((out / "compare.json").read_text())
    budgets = {b["C"]: b for b in report["budgets"]}
    assert sorted(budgets) == [1e17, 1e18, 1e19]
    for C in (1e18, 1e19):  # every pipeline of the budget is a point of its curve
        m = rows["total_flops"] == C
        assert sorted((p["share"], p["accuracy"]) for p in budgets[C]["points"]) == pytest.approx(
            sorted(zip(rows["rl_share"][m], np.round(rows["accuracy"][m], 5))))
        lo, hi = budgets[C]["optimum"]["ci"]["share_opt"]
        assert lo <= budgets[C]["optimum"]["share_opt"] <= hi and budgets[C]["reason"] is None
    refused = budgets[1e17]
    assert refused["optimum"] is None and refused["reason"] and len(refused["points"]) == 6
    assert refused["best_share_tried"]["share"] == 0
    assert report["best_share_trend"]["fitted"] and "slope" in report["best_share_trend"]["ci"]
    assert not report["test_time"]["exchange_rate"]["maj@k"]["defined"]
    short = refused["reason"].split(" (")[0]
    assert short in (out / "iso_compute.svg").read_text()  # the legend says why it has no star
    assert refused["reason"] in (out / "report.md").read_text()
    assert f"C = 1e17: best RL share no optimum ({refused['reason']})" in printed
