"""Bad sweep files and bad sweep directories: exit code 2, one line naming the field, nothing written."""
from __future__ import annotations

import pytest
import yaml

from scaling.cli.main import main
from scaling.sweep.expand import load_sweep, resolved_spec
from scaling.sweep.sweepdir import claimed

MODELS = [{"name": f"t{i}", "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64} for i, d in enumerate([16, 32, 48])]
BASE = {"train": {"seq_len": 32, "batch_size": 4}, "optimizer": {"warmup": 2}}
GOOD = {"design": "grid", "base": BASE, "models": MODELS, "tokens": [1280]}

BAD = {
    "unknown_model": ({**GOOD, "models": ["dense-100k", "no-such-model"]}, "models[1]: unknown model 'no-such-model'"),
    "empty_models": ({**GOOD, "models": []}, "models: empty grid"),
    "empty_budgets": ({**GOOD, "tokens": None, "budgets": []}, "budgets: empty grid"),
    "budget_below_one_step": ({**GOOD, "tokens": None, "budgets": [1e3]}, "fewer than one step"),
    "isoflop_too_few_models": ({**GOOD, "design": "isoflop", "tokens": None, "budgets": [1e9, 1e10],
                                "tokens_per_param": [10, 20]}, "budgets: 1e9 FLOPs has only"),
    "unknown_key": ({**GOOD, "budgetz": [1e9]}, "budgetz: unknown key"),
    "unknown_key_in_base": ({**GOOD, "base": {**BASE, "trian": {}}}, "trian: unknown key"),
    "bad_set_value": ({**GOOD, "set": {"optimizer.lr": -1}}, "models[0] (t0): optimizer: lr=-1.0 is out of range"),
    "unknown_design": ({**GOOD, "design": "spiral"}, "design"),
    "unknown_kind": ({**GOOD, "kind": "distill"}, "kind: unknown sweep kind 'distill'"),
    "bad_rule": ({**GOOD, "rules": {"optimizer.lr": "open('/etc/passwd')"}}, "rules.optimizer.lr"),
    "negative_budget": ({**GOOD, "tokens": None, "budgets": [-1e9]}, "budgets: "),
    "isoflop_without_range": ({**GOOD, "design": "isoflop", "tokens": None, "budgets": [1e9]}, "tokens_per_param"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweep_file_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    data, expected = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    out = tmp_path / "sweep"
    assert main(["sweep", "submit", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_a_sweep_dir_holding_a_different_sweep_is_refused_and_left_alone(tmp_path, capsys):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(GOOD))
    second.write_text(yaml.safe_dump({**GOOD, "tokens": [2560]}))
    out = tmp_path / "sweep"
    with claimed(out, resolved_spec(load_sweep(first), first), str(first)):
        pass
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["sweep", "submit", str(second), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different sweep (tokens differs)" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_directory_that_is_not_a_sweep_dir_is_refused(tmp_path, capsys):
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["sweep", "submit", str(path), "--out", str(tmp_path / "mine")]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "tokens": [1280, 2560]}))
    assert main(["sweep", "submit", str(path), "--out", str(tmp_path / "sweep"), "--dry-run", "--no-probe"]) == 0
    printed = capsys.readouterr().out
    assert "6 runs" in printed and "t2-D2.56e3-" in printed
    assert not (tmp_path / "sweep").exists()


def test_a_registry_from_before_operational_settings_left_run_ids_is_refused_with_why(tmp_path, capsys):
    import sqlite3

    from scaling.sweep.registry import Registry

    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    out = tmp_path / "sweep"
    with claimed(out, resolved_spec(load_sweep(path), path), str(path)):
        pass
    registry = Registry(out / "registry.sqlite")
    registry.init()
    registry.add_planned([{"run_id": "0123456789ab", "name": "t0-D1.28e3-0123456789ab", "status": "done"}])
    with sqlite3.connect(out / "registry.sqlite") as conn:  # as the earlier version left it
        conn.execute("PRAGMA user_version = 0")
    files = lambda: {p.name: p.read_bytes() for p in out.iterdir() if not p.name.endswith(("-shm", "-wal"))}  # noqa: E731
    before, rows = files(), registry.runs()  # (SQLite's shared-memory index is its own business)
    assert main(["sweep", "submit", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "written by an earlier version of scaling" in err, err
    assert files() == before and registry.runs() == rows


def test_run_ids_hash_what_changes_results_not_how_a_run_is_run():
    from scaling.config.run import run_config_from_dict
    from scaling.sweep.plan import run_id_of

    base = {"model": MODELS[0], "train": {"tokens": 1280, **BASE["train"]}}
    same = run_id_of(run_config_from_dict(base))

    def with_(section, **fields):
        return run_id_of(run_config_from_dict({**base, section: {**base.get(section, {}), **fields}}))

    for section, fields in [("train", {"tensorboard": False}), ("train", {"progress": False}),
                            ("train", {"log_every": 3, "checkpoint_every": 7, "keep_checkpoints": 5}),
                            ("mesh", {"data": 2, "fsdp": 4}), ("data", {"cache_dir": "/elsewhere"})]:
        assert with_(section, **fields) == same, (section, fields)
    for section, fields in [("train", {"seed": 1}), ("optimizer", {"lr": 1e-3}), ("train", {"tokens": 2560}),
                            ("train", {"eval_batches": 3}), ("data", {"shuffle_seed": 1})]:
        assert with_(section, **fields) != same, (section, fields)
