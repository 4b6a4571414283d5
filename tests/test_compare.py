"""`scaling compare`: pretraining compute vs RL compute on one task.

The analysis is checked on synthetic points whose answers are known by hand; then one tiny
pretraining sweep (2 sizes x 2 budgets, the models of test_sweep_rlvr, so compiled shapes are
shared) and an rlvr sweep from it go through the whole command, twice (the second from the cache).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from scaling.compare.analysis import (BELOW, BEYOND, IN_RANGE, UNDEFINED, CurvePoint, LawFit, PretrainPoint, RLRun,
                                      compare, equivalent, invert_sigmoid, loss_law)
from scaling.laws import Points
from scaling.laws.results import FitResult
from scaling.laws.synthetic import isoflop_runs

# -- the analysis, on numbers known by hand ------------------------------------------------------


def line_points(slope=0.1, decades=(10, 11, 12, 13)) -> list[PretrainPoint]:
    """accuracy = 0.1 + slope·log10(C/1e10) exactly."""
    return [PretrainPoint(f"p{d}", f"pre-1e{d}", 10.0**d, 0.1 + slope * (d - 10)) for d in decades]


def rl_run(run_id, init_decade, points, initial=None) -> RLRun:
    return RLRun(run_id, f"rl-{run_id}", f"p{init_decade}", 10.0**init_decade,
                 [CurvePoint(i + 1, c, a) for i, (c, a) in enumerate(points)], initial_accuracy=initial)


def test_pretraining_slope_is_accuracy_per_decade_and_rl_gain_is_equivalent_compute_over_spent():
    # From the 1e11 model (accuracy 0.2), 1e10 RL FLOPs reach 0.3: the pretraining line gets there at
    # 1e12, ten times the starting model's compute, while the RL run spent 1.1e11 in all.
    rl = [rl_run("a", 11, [(1e9, 0.22), (1e10, 0.3)], initial=0.2)]
    cmp = compare(line_points(), rl, bootstrap=50)
    slope = cmp.slopes["pretrain"]
    assert slope.value == pytest.approx(0.1) and slope.ci == pytest.approx((0.1, 0.1))
    assert slope.runs == ["p10", "p11", "p12", "p13"]
    final = next(g for g in cmp.gains if g.final and g.law == "loglinear")
    assert final.status == IN_RANGE and final.step == 2 and final.spent == pytest.approx(1.1e11)
    assert final.c_eq == pytest.approx(1e12) and final.gain == pytest.approx(10 / 1.1)
    assert final.ci == pytest.approx((10 / 1.1, 10 / 1.1))  # an exact line: every replicate agrees
    first = next(g for g in cmp.gains if g.step == 1)
    assert first.gain == pytest.approx(10**11.2 / 1.01e11) and not first.final
    # The RL axis: 0.08 accuracy for the decade of RL FLOPs between its two evaluations.
    assert cmp.rl_fits["p11"]["loglinear"].reason  # two points cannot carry an interval: said, not fitted
    assert cmp.slopes["rl:p11"].value is None and "too few" in cmp.slopes["rl:p11"].reason


def test_rl_slope_per_decade_pools_the_runs_of_one_starting_model():
    rl = [rl_run("a", 11, [(1e8, 0.2), (1e9, 0.25)]), rl_run("b", 11, [(1e10, 0.3), (1e11, 0.35)]),
          rl_run("c", 12, [(1e8, 0.3), (1e9, 0.3), (1e10, 0.3)])]
    cmp = compare(line_points(), rl, bootstrap=0)
    assert cmp.slopes["rl:p11"].value == pytest.approx(0.05) and cmp.slopes["rl:p11"].runs == ["a", "b"]
    assert cmp.slopes["rl:p11"].n_points == 4
    assert cmp.slopes["rl:p12"].value == pytest.approx(0.0, abs=1e-12)


def test_accuracy_outside_the_pretraining_points_is_flagged_as_extrapolated():
    rl = [rl_run("up", 13, [(1e12, 0.6)]), rl_run("down", 10, [(1e9, 0.05)])]
    gains = {g.run_id: g for g in compare(line_points(), rl, bootstrap=0).gains if g.law == "loglinear"}
    assert gains["up"].status == BEYOND and gains["up"].c_eq == pytest.approx(1e15)
    assert "outside" in gains["up"].reason and gains["up"].gain == pytest.approx(1e15 / 1.1e13)
    assert gains["down"].status == BELOW and gains["down"].c_eq == pytest.approx(10**9.5)


@pytest.mark.parametrize("case", ["flat", "falling", "too_few"])
def test_degenerate_pretraining_axis_gives_undefined_gains_with_a_reason(case):
    pre = {"flat": line_points(slope=0.0), "falling": line_points(slope=-0.05),
           "too_few": line_points(decades=(10, 11))}[case]
    cmp = compare(pre, [rl_run("a", 10, [(1e9, 0.3), (1e10, 0.4)])], bootstrap=20)
    gains = [g for g in cmp.gains if g.law == "loglinear"]
    assert gains and all(g.status == UNDEFINED and g.gain is None for g in gains)
    expected = {"flat": "pretraining slope not > 0", "falling": "pretraining slope not > 0",
                "too_few": "no pretraining loglinear fit"}[case]
    assert all(expected in g.reason for g in gains), gains[0].reason
    if case == "flat":
        assert any("flat" in w for w in cmp.warnings)
        assert "nothing to bend" in cmp.pretrain_fits["sigmoid"].reason


def test_gain_interval_is_unbounded_when_some_replicates_never_reach_the_accuracy():
    result = FitResult("loglinear", {"a": -0.9, "b": 0.1}, 4,
                       samples={"a": np.array([-0.9, -0.9, 0.3, -0.9]), "b": np.array([0.1, 0.1, 0.0, 0.1])})
    g = equivalent(LawFit("loglinear", result), 0.3, 1e11, (1e10, 1e13))
    assert g.gain == pytest.approx(10.0) and g.ci[0] == pytest.approx(10.0) and math.isinf(g.ci[1])


def test_sigmoid_inversion_and_its_asymptote():
    params = {"R0": 0.0, "A": 0.8, "B": 1.0, "C_mid": 1e12}
    assert float(invert_sigmoid(0, 0.8, 1.0, 1e12, 0.4)) == pytest.approx(1e12)  # half way: C_mid
    law = LawFit("sigmoid", FitResult("sigmoid", params, 5))
    assert equivalent(law, 0.4, 1e11, (1e10, 1e13)).gain == pytest.approx(10.0)
    above = equivalent(law, 0.85, 1e11, (1e10, 1e13))
    assert above.status == UNDEFINED and "asymptote" in above.reason


def test_loss_law_prefers_isoflop_then_falls_back_and_says_why():
    runs = isoflop_runs(budgets=(1e18, 1e19), runs_per_budget=5)
    pts = Points("synthetic", N=runs["n_params"], D=runs["tokens"], C=runs["flops"], loss=runs["eval_loss"],
                 budget=runs["budget"])
    law, tried = loss_law(pts, None, bootstrap=0, seed=0)
    assert law.law == "isoflop" and law.ok and not tried
    few = pts.subset(np.arange(len(pts.loss)) % 5 < 2)  # two runs per budget: no parabola, no Chinchilla
    law, tried = loss_law(few, None, bootstrap=0, seed=0, missing="no eval losses")
    assert not law.ok and "isoflop" in law.reason and "chinchilla" in law.reason and "power: no eval losses" in law.reason


# -- end to end: two tiny sweeps through `scaling compare` ---------------------------------------


import scaling.cli.main as cli_main  # noqa: E402
import scaling.compare.collect as collect_module  # noqa: E402
from scaling.sweep.registry import Registry  # noqa: E402

FIGURES = ("accuracy_vs_total_compute", "rl_accuracy_vs_rl_compute", "pretraining_loss_law")


@pytest.fixture(scope="module")
def sweeps(tiny_demo) -> tuple[Path, Path]:
    """The demo's math sweep (2 sizes x 2 token budgets) and its GRPO sweep from the best model of
    each budget: trained once per session by the `tiny_demo` fixture."""
    out = tiny_demo[0] / "out"
    return out / "math", out / "rlvr"


def test_compare_puts_both_sweeps_on_one_axis_and_a_second_run_reads_the_cache(sweeps, tmp_path, monkeypatch,
                                                                                capsys):
    pre, rl = sweeps
    out = tmp_path / "cmp"
    evaluated = []
    real = collect_module.evaluate_on_rl_task
    monkeypatch.setattr(collect_module, "evaluate_on_rl_task", lambda d, *a: evaluated.append(d) or real(d, *a))
    assert cli_main.main(["compare", str(pre), str(rl), "--out", str(out), "--bootstrap", "50"]) == 0
    assert len(evaluated) == 4  # every done pretraining run, once
    assert "accuracy per decade of pretraining compute" in capsys.readouterr().out
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.svg").stat().st_size > 0
    report = (out / "report.md").read_text()
    for heading in ("## Pretraining accuracy law", "## RL accuracy law", "## Compute-equivalent gain of RL",
                    "## Pretraining loss law", "A decade more pretraining compute", "A decade more RL compute"):
        assert heading in report, heading
    assert "full convention" in report and "6n convention" in report

    # The numbers are the registries' numbers.
    result = json.loads((out / "compare.json").read_text())
    pre_rows = {r["run_id"]: r for r in Registry(pre / "registry.sqlite").runs()}
    rl_rows = {r["run_id"]: r for r in Registry(rl / "registry.sqlite").runs()}
    assert {p["run_id"]: p["flops"] for p in result["pretrain"]["points"]} == {
        k: r["flops_full"] for k, r in pre_rows.items()}
    assert {r["run_id"] for r in result["rl"]["runs"]} == set(rl_rows) and len(rl_rows) == 2
    for run in result["rl"]["runs"]:
        row = rl_rows[run["run_id"]]
        assert run["final_accuracy"] == row["accuracy"] and run["rl_flops"] == row["flops"]
        assert run["init_flops"] == row["init_flops"] == pre_rows[run["init_run_id"]]["flops_full"]
        assert run["total_flops"] == pytest.approx(row["init_flops"] + row["flops"])
        assert f"`{run['run_id']}`" in report
    finals = [g for g in result["compute_equivalent_gain"] if g["final"] and g["law"] == "loglinear"]
    assert {g["run_id"] for g in finals} == set(rl_rows)
    # Each gain is where the pretraining log-linear law reaches the RL run's accuracy, and its status
    # says whether that lies inside the FLOPs the pretraining points span.
    fitted = result["pretrain"]["fits"]["loglinear"]
    lo, hi = result["pretrain"]["fitted_range"]
    for g in finals:
        if g["status"] == "undefined":
            assert g["gain"] is None and g["c_eq"] is None and g["reason"]
            continue
        a, b = fitted["params"]["a"], fitted["params"]["b"]
        assert b > 0 and g["c_eq"] == pytest.approx(10 ** ((g["accuracy"] - a) / b), rel=1e-6)
        assert g["gain"] == pytest.approx(g["c_eq"] / g["spent"], rel=1e-9)
        expected = "ok" if lo <= g["c_eq"] <= hi else "beyond the fitted range" if g["c_eq"] > hi else \
            "below the fitted range"
        assert g["status"] == expected and (g["reason"] is None) == (expected == "ok")
    # Same evaluation as the RL loop: each RL run's step-0 accuracy is what compare measured for its start.
    assert result["checks"] and all(c["equal"] for c in result["checks"])
    # The loss law: the first of isoflop, chinchilla, power the sweep supports; 2 sizes x 2 budgets are
    # too few models per budget for an isoFLOP minimum, so the report says why before the one it fits.
    law = result["loss_law"]
    assert law["not_used"][0].startswith("isoflop")
    if law.get("fitted") is False:
        assert law["law"] == "none" and all(name in law["reason"] for name in ("isoflop", "chinchilla", "power"))
    else:
        assert law["law"] in ("chinchilla", "power") and law["n_points"] == 4

    # Again: nothing is evaluated, and the same numbers come out.
    monkeypatch.setattr(collect_module, "evaluate_on_rl_task", lambda *a: pytest.fail("evaluated again"))
    assert cli_main.main(["compare", str(pre), str(rl), "--out", str(out), "--bootstrap", "50"]) == 0
    assert json.loads((out / "compare.json").read_text()) == result
    assert "0 evaluated now, 4 from" in (out / "report.md").read_text()

    # --metric pass@1 reads the same evaluations' sampled pass@1 (the mean over the RL runs' 2 samples
    # per problem) on both axes, and says so; greedy stays in the points' extras.
    assert result["metric"] == "greedy pass@1"
    assert cli_main.main(["compare", str(pre), str(rl), "--out", str(out), "--bootstrap", "0",
                          "--metric", "pass@1"]) == 0
    sampled = json.loads((out / "compare.json").read_text())
    assert sampled["metric"] == "sampled pass@1" and "mean of 2 samples" in sampled["metric_label"]
    greedy_points = {p["run_id"]: p for p in result["pretrain"]["points"]}
    for p in sampled["pretrain"]["points"]:
        assert p["accuracy"] == p["extra"]["pass@1"] and p["extra"]["greedy_pass@1"] == greedy_points[p["run_id"]][
            "accuracy"]
    for run in sampled["rl"]["runs"]:
        history = json.loads((rl / run["extra"]["run_dir"] / "summary.json").read_text())["eval_history"]
        assert [c["accuracy"] for c in run["curve"]] == [e["pass@1"] for e in history if e["step"] > 0]
    assert "sampled pass@1" in (out / "report.md").read_text()


def fake_sweep(root: Path, kind: str, status: str = "done") -> Path:
    root.mkdir()
    registry = Registry(root / "registry.sqlite")
    registry.init()
    registry.add_planned([{"run_id": "abc", "name": "abc", "kind": kind, "status": status, "run_dir": "runs/abc"}])
    return root


BAD = {
    "no_registry": (lambda t: (t / "plain").mkdir() or t / "plain", lambda t: fake_sweep(t / "rl", "rlvr"),
                    "PRETRAIN_SWEEP", "not a sweep directory (no registry.sqlite)"),
    "rl_sweep_is_pretraining": (lambda t: fake_sweep(t / "pre", "pretrain"), lambda t: fake_sweep(t / "rl", "pretrain"),
                                "RL_SWEEP", "expected kind rlvr"),
    "pretrain_sweep_is_rl": (lambda t: fake_sweep(t / "pre", "rlvr"), lambda t: fake_sweep(t / "rl", "rlvr"),
                             "PRETRAIN_SWEEP", "expected kind pretrain"),
    "no_done_runs": (lambda t: fake_sweep(t / "pre", "pretrain", "failed"), lambda t: fake_sweep(t / "rl", "rlvr"),
                     "PRETRAIN_SWEEP", "no finished runs"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweeps_exit_2_with_one_line_and_leave_the_output_folder_alone(case, tmp_path, monkeypatch, capsys):
    make_pre, make_rl, names, expected = BAD[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("an earlier report\n")
    argv = ["compare", str(make_pre(tmp_path)), str(make_rl(tmp_path)), "--out", str(out)]
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and names in err and expected in err, err
    assert [p.name for p in out.iterdir()] == ["report.md"] and (out / "report.md").read_text() == "an earlier report\n"
