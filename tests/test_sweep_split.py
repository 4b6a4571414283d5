"""`kind: split` sweeps: pretraining with (1 - f)·C then RL with f·C, planned, run, killed, resumed and fitted.

Planning tests train nothing. One tiny sweep (the D=32 math model of tiny_sweeps, 2 budgets x shares
{0, 0.5}: 3 pretraining runs, one of them shared, 2 RL runs and 2 eval-only runs) runs once per module
through `scaling sweep submit`, with its submitter SIGKILLed while the first RL run trains.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scaling import laws
from scaling.cli.main import main
from scaling.bundled import BUNDLED
from scaling.rl.compute import step_flops
from scaling.sweep.expand import expand, spec_from_dict
from scaling.sweep.registry import Registry

from tiny_sweeps import wait_for, PRETRAIN, RL_BASE, TINY, write

STEP_FLOPS = 147456 * 1024  # math32: full-convention FLOPs per token x 1024 tokens per step (16 x 64)


def split_spec(**fields) -> dict:
    return {"name": "split", "kind": "split", "base": PRETRAIN["base"], "models": TINY[:1],
            "total_budgets": [2 * STEP_FLOPS, 4 * STEP_FLOPS], "rl_shares": [0, 0.5], "rl": {"base": RL_BASE},
            **fields}


def rl_runs(plan):
    return [r for r in plan.runs if r.kind == "rlvr"]


def test_every_budget_and_share_is_one_pretraining_run_and_one_rl_run_after_it():
    budgets, shares = [4 * STEP_FLOPS, 8 * STEP_FLOPS], [0, 0.25, 0.5]
    plan = expand(spec_from_dict(split_spec(total_budgets=budgets, rl_shares=shares)))
    pre = {r.run_id: r for r in plan.runs if r.kind == "pretrain"}
    ends = rl_runs(plan)
    assert sorted((r.total_budget, r.share) for r in ends) == sorted((c, f) for c in budgets for f in shares)
    for run in ends:
        base = pre[run.depends_on]
        assert base.budget == pytest.approx((1 - run.share) * run.total_budget)
        assert base.flops_full == pytest.approx(base.budget)  # these budgets are whole steps
        assert run.config.init_run == base.run_dir and run.init_flops == base.flops_full
        assert run.registry_row()["split_budget"] == run.total_budget
        if run.share == 0:  # scored by the RL recipe's own evaluation, no update
            assert run.config.budget.steps == 0 and run.config.budget.flops is None and run.flops == 0
        else:
            assert run.config.budget.flops == run.share * run.total_budget and run.config.budget.steps is None
    # (8 steps, f=0.5) pretrains 4 steps, as (4 steps, f=0) does: one run, planned once.
    shared = [r for r in ends if (r.total_budget, r.share) in ((budgets[0], 0), (budgets[1], 0.5))]
    assert shared[0].depends_on == shared[1].depends_on
    assert len(pre) == len({(1 - f) * c for c in budgets for f in shares}) == 5
    assert len({r.run_id for r in plan.runs}) == len(plan.runs) == 5 + 6
    assert plan.runs[: len(pre)] == list(pre.values())  # pretraining is listed (and queued) first


def test_pretraining_budgets_that_round_to_the_same_steps_are_one_run_whose_directory_rl_starts_from():
    # (1 - 0.25)·2 steps rounds to 2 steps: the pretraining run of (2 steps, f=0.25) is (2 steps, f=0)'s.
    plan = expand(spec_from_dict(split_spec(rl_shares=[0, 0.25, 0.5])))
    pre = {r.run_id: r for r in plan.runs if r.kind == "pretrain"}
    assert len(pre) == 4  # 1, 2, 3 and 4 steps
    for run in rl_runs(plan):
        assert run.config.init_run == pre[run.depends_on].run_dir


def test_the_size_rule_picks_the_ladder_model_with_tokens_per_param_nearest_the_ratio():
    ratio = 0.5
    plan = expand(spec_from_dict(split_spec(models=TINY, tokens_per_param=ratio, rl_shares=[0, 0.5],
                                            total_budgets=[2e8, 3e9])))
    pre = [r for r in plan.runs if r.kind == "pretrain"]
    ladder = {p.model: p.counts for p in pre}
    assert len(ladder) == 2  # small budgets pick math32, large ones math48
    for run in pre:
        off = {m: abs(math.log(run.budget / c.train_flops_per_token("full") / c.n_active_nonembedding / ratio))
               for m, c in ladder.items()}
        assert run.model == min(off, key=off.get)


def test_rl_steps_are_the_rl_flops_over_a_full_length_step():
    plan = expand(spec_from_dict(split_spec(rl_shares=[0.5], total_budgets=[4 * STEP_FLOPS])))
    (run,) = rl_runs(plan)
    g = run.config.grpo
    n = g.prompts_per_step * g.group_size
    full_step = step_flops(run.counts, g, np.full(n, g.max_prompt_tokens), np.full(n, run.config.sampling.max_new))
    assert (run.steps - 1) * full_step["total"] < 2 * STEP_FLOPS <= run.steps * full_step["total"]


@pytest.mark.parametrize("fields, message", [
    ({"rl_shares": [0, 1]}, "rl_shares"),
    ({"rl_shares": [0, -0.1]}, "rl_shares"),
    ({"models": TINY}, "tokens_per_param"),
    ({"sweep": {"optimizer.lr": [1e-3, 1e-2]}}, "sweep"),
    ({"rl": {"base": RL_BASE, "set": {"budget.steps": 3}}}, "rl.set"),
    ({"rl_shares": [0, 0.001]}, "less than one RL step"),
    ({"rl": {"base": "no/such/rl.yaml"}}, "rl.base"),
])
def test_bad_split_sweeps_are_refused_with_the_field_named(tmp_path, capsys, fields, message):
    sweep = write(tmp_path / "bad.yaml", split_spec(**fields))
    assert main(["sweep", "submit", str(sweep), "--dry-run", "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", ["split-cpu.yaml", "split-gpu.yaml"])
def test_bundled_split_sweeps_plan(name, capsys):
    assert main(["sweep", "submit", str(BUNDLED / "sweeps" / name), "--dry-run", "--no-probe"]) == 0
    assert "pipelines" in capsys.readouterr().out


def test_fit_split_refuses_a_sweep_directory_that_records_no_split(tmp_path, capsys):
    registry = Registry(tmp_path / "registry.sqlite")
    registry.init()  # a pretraining or RL sweep's registry: no row carries a pipeline's share
    assert main(["fit", "split", str(tmp_path)]) == 2
    assert "not a split sweep" in capsys.readouterr().err


# ---- one tiny split sweep, end to end ----------------------------------------------------------------

def env() -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def submit_command(sweep: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out), "--max-parallel", "2"]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """The submitter is SIGKILLed once an RL run is training, then submitted again to the end."""
    root = tmp_path_factory.mktemp("split")
    sweep, out = write(root / "split.yaml", split_spec()), root / "out"
    started = time.time()
    submitter = subprocess.Popen(submit_command(sweep, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=env())
    registry = Registry(out / "registry.sqlite")

    def rl_training():
        try:
            rows = registry.runs() if (out / "registry.sqlite").exists() else []
        except Exception:  # the registry is being created
            return None
        return [r for r in rows if r["kind"] == "rlvr" and r["status"] == "running" and r["pid"]]

    try:
        wait_for(rl_training, 300, "an RL run to start")
        done_before = {r["run_id"]: (out / r["run_dir"] / "metrics.jsonl").read_bytes()
                       for r in registry.runs() if r["status"] == "done"}
        os.kill(submitter.pid, signal.SIGKILL)
        submitter.wait(10)
    finally:
        if submitter.poll() is None:
            submitter.kill()
    victims = [r for r in registry.runs() if r["status"] == "running"]  # left behind, as after a crash
    wait_for(lambda: all(not Path(f"/proc/{v['pid']}").exists() or
                          Path(f"/proc/{v['pid']}/stat").read_text().split()[2] == "Z" for v in victims),
              60, "the orphaned trainers to exit")
    proc = subprocess.run(submit_command(sweep, out), capture_output=True, text=True, env=env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, done_before, {v["run_id"] for v in victims}, time.time() - started


def test_split_sweep_resumes_after_sigkill_and_trains_each_run_once(killed_and_resumed):
    out, done_before, victims, wall = killed_and_resumed
    rows = {r["run_id"]: r for r in Registry(out / "registry.sqlite").runs()}
    assert len(rows) == 3 + 4 and all(r["status"] == "done" for r in rows.values()), rows
    assert done_before and any(rows[v]["kind"] == "rlvr" for v in victims)
    for run_id, metrics in done_before.items():  # finished before the kill: not run again
        assert rows[run_id]["attempts"] == 1
        assert (out / rows[run_id]["run_dir"] / "metrics.jsonl").read_bytes() == metrics
    assert all(rows[v]["attempts"] == 2 for v in victims)
    ends = [r for r in rows.values() if r["split_share"] is not None]
    for row in ends:
        base = rows[row["fork_of"]]
        assert base["kind"] == "pretrain" and base["started_at"] and row["started_at"] >= base["finished_at"]
        assert row["init_flops"] == pytest.approx(base["flops_full"])
    # The shared pretraining run (2 steps) serves (C, 0) and (2C, 0.5), trained once.
    assert len({r["fork_of"] for r in ends}) == 3
    print(f"split sweep: 7 runs, killed once, in {wall:.0f} s")


def test_rl_flops_reach_the_share_of_the_budget_within_one_rl_step(killed_and_resumed):
    out = killed_and_resumed[0]
    for row in Registry(out / "registry.sqlite").runs():
        if row["split_share"] is None:
            continue
        planned = row["split_share"] * row["split_budget"]
        summary = json.loads((out / row["run_dir"] / "summary.json").read_text())
        if planned == 0:  # the eval-only run: the pretrained model's score, no RL FLOPs
            assert row["steps"] == 0 and row["flops"] == 0 and row["accuracy"] == summary["initial_accuracy"]
            continue
        cumulative = [json.loads(line).get("rl_flops") for line in (out / row["run_dir"] / "metrics.jsonl").open()]
        cumulative = [0.0] + [c for c in cumulative if c]
        largest_step = max(b - a for a, b in zip(cumulative, cumulative[1:]))
        assert planned <= row["flops_full"] < planned + largest_step
        assert row["flops_full"] == summary["rl_flops"] and row["steps"] == summary["steps"] >= 2


def test_fit_split_reads_the_sweep_as_run(killed_and_resumed, capsys):
    out = killed_and_resumed[0]
    pts = laws.load_points(out, "split")
    ends = sorted((r for r in Registry(out / "registry.sqlite").runs() if r["split_share"] is not None),
                  key=lambda r: (r["split_budget"], r["split_share"]))
    assert list(pts.budget) == [r["split_budget"] for r in ends]
    assert list(pts.C) == pytest.approx([r["init_flops"] + r["flops_full"] for r in ends])
    assert list(pts.x) == pytest.approx([r["flops_full"] / (r["init_flops"] + r["flops_full"]) for r in ends])
    assert list(pts.y) == [r["accuracy"] for r in ends]
    # Two shares per budget: the law reads both budgets and refuses, naming why for each.
    assert main(["fit", "split", str(out), "--method", "share"]) == 2
    err = capsys.readouterr().err
    assert err.count("2 shares on the curve") == 2, err
    assert main(["sweep", "status", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "4 pipelines: 3 pretraining runs" in shown and shown.count("eval only (done)") == 2


def test_split_report_draws_both_refused_budgets_and_measures_test_time_on_every_model(killed_and_resumed, tmp_path,
                                                                                       capsys):
    out = killed_and_resumed[0]
    report_dir = tmp_path / "report"
    command = ["compare", str(out), "--out", str(report_dir), "--bootstrap", "20", "--test-time-k", "4",
               "--test-time-problems", "4"]
    assert main(command) == 0
    assert capsys.readouterr().err.count("test-time: sampling 4 per problem") == 5
    report = json.loads((report_dir / "compare.json").read_text())
    rows = {r["run_id"]: r for r in Registry(out / "registry.sqlite").runs()}
    ends = [r for r in rows.values() if r["split_share"] is not None]
    drawn = [p for b in report["budgets"] for p in b["points"]]
    assert sorted(p["run_id"] for p in drawn) == sorted(r["run_id"] for r in ends)
    for b in report["budgets"]:  # two shares per budget (one on the logit curve): drawn anyway, with the reason
        assert b["optimum"] is None and "share on the curve" in b["reason"] and len(b["points"]) == 2
    assert (report_dir / "iso_compute.svg").read_text().count("share on the curve") == 2
    models = report["test_time"]["models"]
    # Every pretraining run (3) and every RL run with f > 0 (2); f = 0 pipelines are their bases.
    assert sorted(m["run_id"] for m in models) == sorted(
        r["run_id"] for r in rows.values() if r["kind"] == "pretrain" or (r["split_share"] or 0) > 0)
    for m in models:
        row = rows[m["run_id"]]
        assert m["train_flops"] == pytest.approx(row["flops_full"] + (row["init_flops"] or 0))
        assert m["k"] == [1, 2, 4] and m["maj@k"][0] == m["pass@k"][0]  # one sample: a vote is that sample
        assert all(a <= b for a, b in zip(m["pass@k"], m["pass@k"][1:]))
        assert m["sample_flops"] > 0 and m["generated_tokens_mean"] <= 8  # RL_BASE's sampling.max_new
    assert set(report["test_time"]["exchange_rate"]) == {"maj@k", "pass@k"}
    # A second report samples nothing: every model's curve is in DIR/testtime_eval.jsonl.
    assert main(command) == 0
    assert "sampling" not in capsys.readouterr().err
