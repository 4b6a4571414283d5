"""`scaling demo --seed S`: every seed of the pipeline follows S, in a folder of its own. Checked on the
plans of the bundled sweeps (nothing is trained)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.demo import DemoSweeps, _sweep_file_for, default_out
from scaling.errors import UserError
from scaling.sweep.expand import expand, load_sweep


def plan_of(path: Path):
    return expand(load_sweep(path), path)


@pytest.mark.parametrize("name", ["isoflop", "math"])
def test_seed_sets_every_pretraining_run_seed_and_changes_every_run_id(tmp_path, name):
    template = getattr(DemoSweeps.bundled(), name)
    seed0 = plan_of(_sweep_file_for(template, tmp_path / "s0", 0)).runs
    seed1 = plan_of(_sweep_file_for(template, tmp_path / "s1", 1)).runs
    assert {r.config.train.seed for r in seed0} == {0} and {r.config.train.seed for r in seed1} == {1}
    # Same grid, other runs: init and data order (grain's shuffle mixes train.seed) both follow the seed.
    assert [(r.model, r.budget) for r in seed0] == [(r.model, r.budget) for r in seed1]
    assert not {r.run_id for r in seed0} & {r.run_id for r in seed1}
    # Seed 0 is the bundled sweep as written: its runs are the ones `scaling sweep submit` of it plans.
    assert [r.run_id for r in seed0] == [r.run_id for r in plan_of(template).runs]


def test_seed_sets_the_rl_seed_and_points_the_rl_sweep_at_the_demo_math_sweep(tmp_path):
    path = _sweep_file_for(DemoSweeps.bundled().rlvr, tmp_path, 3, init_sweep=tmp_path / "math")
    spec = yaml.safe_load(path.read_text())
    assert spec["seeds"] == [3] and spec["init"]["sweep"] == str(tmp_path / "math")
    assert Path(spec["base"]).is_absolute() and Path(spec["base"]).is_file()


def test_another_seed_gets_another_default_folder_and_never_reuses_one_of_another_seed(tmp_path, capsys):
    assert default_out(0) == Path("runs/demo") and default_out(1) == Path("runs/demo-seed1")
    _sweep_file_for(DemoSweeps.bundled().isoflop, tmp_path, 0)
    with pytest.raises(UserError, match="seeds \\[0\\], not --seed 1"):
        _sweep_file_for(DemoSweeps.bundled().isoflop, tmp_path, 1)
    code = main(["demo", "--out", str(tmp_path), "--seed", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "runs/demo-seed1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps"]  # nothing ran


def test_a_negative_seed_exits_2_with_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "o"), "--seed", "-1"]) == 2
    assert "--seed -1" in capsys.readouterr().err and not (tmp_path / "o").exists()
