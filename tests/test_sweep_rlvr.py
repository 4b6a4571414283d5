"""`kind: rlvr` sweeps: GRPO runs started from a pretraining sweep, through submit, the registry and fits.

One tiny pretraining sweep (two sizes, D=32/48, L=1, synthetic math) is trained once per module and
every RL test starts from it. Expansion tests of the selectors use a hand-written registry and fake
run directories, so they train nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.sweep.expand import expand, load_sweep
from scaling.sweep.registry import Registry

from tiny_sweeps import MATH, PRETRAIN, RL_BASE, write


def env() -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def submit(sweep: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out), *extra],
                          capture_output=True, text=True, env=env())


@pytest.fixture(autouse=True)
def one_device(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")


@pytest.fixture(scope="module")
def pretrain_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pre")
    proc = submit(write(root / "pre.yaml", PRETRAIN), root / "out", "--max-parallel", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root / "out"


@pytest.fixture(scope="module")
def rl_sweep(pretrain_sweep, tmp_path_factory):
    """Both pretrained sizes x one RL FLOP budget: 3-5 GRPO steps, an evaluation after each."""
    root = tmp_path_factory.mktemp("rl")
    sweep = write(root / "rl.yaml", {"name": "rl", "kind": "rlvr", "base": RL_BASE,
                                     "init": {"sweep": str(pretrain_sweep), "select": "all"},
                                     "budgets": [1.2e8], "seeds": [0]})
    started = time.time()
    proc = submit(sweep, root / "out", "--max-parallel", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sweep, root / "out", time.time() - started


def test_rlvr_sweep_records_accuracy_rows_and_curves_against_rl_flops(pretrain_sweep, rl_sweep):
    _, out, _ = rl_sweep
    registry = Registry(out / "registry.sqlite")
    rows = registry.runs()
    pre = {r["n_params"]: r for r in Registry(pretrain_sweep / "registry.sqlite").runs()}
    assert len(rows) == 2 and {r["n_params"] for r in rows} == set(pre)
    for row in rows:
        assert row["kind"] == "rlvr" and row["status"] == "done", row["error"]
        assert 0.0 <= row["accuracy"] <= 1.0 and row["budget"] == 1.2e8
        assert row["flop_convention"] == "full" and row["flops"] == row["flops_full"] >= 1.2e8
        assert row["init_flops"] == pytest.approx(pre[row["n_params"]]["flops_full"])
        assert row["model"] == pre[row["n_params"]]["model"]
        summary = json.loads((out / row["run_dir"] / "summary.json").read_text())
        assert summary["accuracy"] == row["accuracy"] and summary["rl_flops"] == row["flops"]
        points = [c for c in registry.curves() if c["run_id"] == row["run_id"]]
        flops = [c["flops"] for c in points]
        assert len(points) >= 3 and all(0 < a < b for a, b in zip(flops, flops[1:])) and flops[-1] == row["flops"]
        assert all(c["accuracy"] is not None for c in points)


def test_resubmitting_an_rlvr_sweep_trains_nothing(rl_sweep, capsys):
    sweep, out, _ = rl_sweep
    assert main(["sweep", "submit", str(sweep), "--out", str(out)]) == 0
    assert "2 already finished, 0 to run" in capsys.readouterr().out


def test_status_of_an_rlvr_sweep_shows_rl_compute_and_accuracy(rl_sweep, capsys):
    _, out, _ = rl_sweep
    assert main(["sweep", "status", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "greedy pass@1" in shown and "RL FLOPs" in shown and "eval loss" not in shown
    for row in Registry(out / "registry.sqlite").runs():
        line = next(line for line in shown.splitlines() if row["name"] in line)
        assert f"{row['accuracy']:.4f}" in line and f"{row['init_flops']:.3g}" in line


def test_compare_of_rl_runs_that_draw_no_samples_refuses_sampled_pass_at_1(pretrain_sweep, rl_sweep, tmp_path,
                                                                          capsys):
    _, out, _ = rl_sweep  # eval.pass_k = 1: greedy answers only
    code = main(["compare", str(pretrain_sweep), str(out), "--out", str(tmp_path / "cmp"), "--metric", "pass@1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "eval.pass_k" in err and "--metric greedy" in err
    assert not (tmp_path / "cmp").exists() or not any((tmp_path / "cmp").iterdir())  # refused before writing


# -- expansion, on fake pretraining runs --------------------------------------------------------

def fake_pretrain_sweep(root: Path) -> Path:
    """A registry of 5 done runs at 2 budgets (plus a failed one) whose run dirs hold a config and a checkpoint."""
    sweep_dir = root / "pre"
    sweep_dir.mkdir()
    registry = Registry(sweep_dir / "registry.sqlite")
    registry.init()
    rows = []
    for i, (model, budget, eval_loss, status) in enumerate([
            ("math32", 1e10, 2.0, "done"), ("math48", 1e10, 1.5, "done"), ("math64", 1e10, 1.8, "done"),
            ("math32", 1e11, 1.0, "done"), ("math48", 1e11, 1.1, "done"), ("math64", 1e11, 0.9, "failed")]):
        d = int(model[4:])
        run_dir = f"runs/{model}-C{budget:.0e}-{i:012x}"
        cfg = {"model": {"name": model, "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64},
               "data": {"source": "synthetic-math", "math": MATH}, "train": {"seq_len": 64, "tokens": 1024}}
        (sweep_dir / run_dir / "checkpoints" / "3").mkdir(parents=True)
        (sweep_dir / run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        (sweep_dir / run_dir / "summary.json").write_text(json.dumps({"status": status, "flops_full": budget * 1.2}))
        rows.append({"run_id": f"{i:012x}", "name": Path(run_dir).name, "kind": "pretrain", "status": status,
                     "model": model, "run_dir": run_dir, "budget": budget, "flops": budget, "eval_loss": eval_loss})
    registry.add_planned(rows)
    return sweep_dir


def rl_file(path: Path, init: dict, **fields) -> Path:
    budget = {} if "steps" in fields else {"budgets": [1e9, 3e9]}
    return write(path, {"kind": "rlvr", "base": RL_BASE, "init": init, **budget, **fields})


def plan_of(path: Path):
    return expand(load_sweep(path), path)


def test_compute_optimal_picks_the_lowest_eval_loss_per_budget_and_all_picks_every_done_run(tmp_path):
    sweep_dir = fake_pretrain_sweep(tmp_path)
    optimal = plan_of(rl_file(tmp_path / "opt.yaml", {"sweep": str(sweep_dir), "select": "compute_optimal"}))
    assert sorted({Path(r.config.init_run).name for r in optimal.runs}) == ["math32-C1e+11-000000000003",
                                                                             "math48-C1e+10-000000000001"]
    assert len(optimal.runs) == 2 * 2
    everything = plan_of(rl_file(tmp_path / "all.yaml", {"sweep": str(sweep_dir), "select": "all"}, seeds=[0, 1]))
    assert len({r.config.init_run for r in everything.runs}) == 5 and len(everything.runs) == 5 * 2 * 2
    run = next(r for r in everything.runs if r.model == "math48" and r.budget == 3e9 and r.seed == 1)
    row = run.registry_row()
    assert row["kind"] == "rlvr" and row["budget"] == 3e9 and row["flops"] == 3e9 and row["flop_convention"] == "full"
    assert row["n_params"] == run.counts.n_params > 0 and row["init_flops"] == pytest.approx(1.2e10)
    assert run.config.budget.flops == 3e9 and run.config.seed == 1 and run.name.startswith("math48-C1e+10-rlC3e9-")


def test_min_budget_keeps_only_the_starting_models_of_large_enough_budgets(tmp_path, capsys):
    sweep_dir = fake_pretrain_sweep(tmp_path)
    init = {"sweep": str(sweep_dir), "select": "compute_optimal", "min_budget": 5e10}
    plan = plan_of(rl_file(tmp_path / "min.yaml", init))
    assert {Path(r.config.init_run).name for r in plan.runs} == {"math32-C1e+11-000000000003"}
    everything = plan_of(rl_file(tmp_path / "all.yaml", {**init, "select": "all"}))
    assert {r.model for r in everything.runs} == {"math32", "math48"} and len(everything.runs) == 2 * 2
    assert main(["sweep", "submit", str(rl_file(tmp_path / "none.yaml", {**init, "min_budget": 1e12})),
                 "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    assert "init.min_budget" in capsys.readouterr().err


def test_a_token_cap_that_cuts_off_the_tasks_answers_is_warned_about_once_at_submit(tmp_path):
    sweep_dir = fake_pretrain_sweep(tmp_path)
    init = {"sweep": str(sweep_dir), "select": "all"}
    assert not [w for w in plan_of(rl_file(tmp_path / "ok.yaml", init)).warnings if "max_new" in w]
    capped = plan_of(rl_file(tmp_path / "capped.yaml", init, set={"sampling.max_new": 4}))
    cut = [w for w in capped.warnings if "max_new" in w]
    assert len(cut) == 1 and "sampling.max_new=4 cuts off" in cut[0], capped.warnings


def test_same_file_gives_same_ids_and_relative_init_paths_resolve_from_cwd_then_the_sweep_file(tmp_path,
                                                                                                monkeypatch):
    sweep_dir = fake_pretrain_sweep(tmp_path)
    run_dir = next(sweep_dir.glob("runs/math32-C1e+10-*"))
    (tmp_path / "sweeps").mkdir()
    # Relative to the sweep file (the cwd is elsewhere).
    monkeypatch.chdir(tmp_path / "sweeps")
    by_file = rl_file(tmp_path / "sweeps" / "a.yaml", {"runs": [f"../pre/runs/{run_dir.name}"]}, steps=[3])
    monkeypatch.chdir(tmp_path.parent)
    first, again = plan_of(by_file), plan_of(by_file)
    assert [r.run_id for r in first.runs] == [r.run_id for r in again.runs] and len(first.runs) == 1
    assert first.runs[0].config.init_run == str(run_dir.resolve()) and first.runs[0].config.budget.steps == 3
    # Relative to the cwd, which wins when both exist: the same resolved config, so the same id.
    monkeypatch.chdir(tmp_path)
    by_cwd = rl_file(tmp_path / "sweeps" / "b.yaml", {"runs": [f"pre/runs/{run_dir.name}"]}, steps=[3])
    assert [r.run_id for r in plan_of(by_cwd).runs] == [r.run_id for r in first.runs]


BAD = {
    "missing_init_sweep": ({"init": {"sweep": "no/such/sweep"}}, "init.sweep: no such directory 'no/such/sweep'"),
    "init_sweep_without_done_runs": ({"init": {"sweep": "EMPTY"}}, "has no finished pretraining runs"),
    "run_dir_without_checkpoint": ({"init": {"runs": ["NOCKPT"]}}, "has no checkpoint to start from"),
    "unknown_selector": ({"init": {"sweep": "EMPTY", "select": "best"}}, "init.select: unknown selector 'best'"),
    "empty_budgets": ({"budgets": []}, "budgets: empty grid"),
    "both_budgets_and_steps": ({"steps": [3]}, "budgets: give exactly one"),
    "budget_in_set": ({"set": {"budget.flops": 1e9}}, "set.budget.flops: set by the sweep itself"),
    "bad_base_value": ({"set": {"grpo.group_size": 1}}, "group_size"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rlvr_sweep_file_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    changes, expected = BAD[case]
    empty = tmp_path / "empty-sweep"
    empty.mkdir()
    Registry(empty / "registry.sqlite").init()
    no_ckpt = tmp_path / "no-ckpt-run"
    no_ckpt.mkdir()
    (no_ckpt / "config.yaml").write_text(yaml.safe_dump({"model": "dense-100k"}))
    good_run = next(fake_pretrain_sweep(tmp_path).glob("runs/math32-*"))
    data = {"kind": "rlvr", "base": RL_BASE, "init": {"runs": [str(good_run)]}, "budgets": [1e9], **changes}
    text = yaml.safe_dump(data).replace("EMPTY", str(empty)).replace("NOCKPT", str(no_ckpt))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", "submit", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not out.exists()


# -- last: the fit command (built alongside) on the RL sweep's accuracy curves -----------------

def test_loglinear_fit_reads_the_rlvr_sweep(rl_sweep, capsys):
    _, out, _ = rl_sweep
    assert main(["fit", "loglinear", str(out), "--json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    params = result.get("params", result)
    assert {"a", "b"} <= set(params), result


def test_dry_run_of_an_rlvr_sweep_prints_the_plan_and_writes_nothing(rl_sweep, tmp_path, capsys):
    sweep, _, _ = rl_sweep
    out = tmp_path / "never"
    assert main(["sweep", "submit", str(sweep), "--out", str(out), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert not out.exists()
