"""Faults met on resume (issue #20): unreadable checkpoints, an RL run killed before its first checkpoint,
two writers on one run directory, an --init run whose checkpoint does not match its config."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.config.base import validate
from scaling.config.rl import RLConfig
from scaling.config.run import run_config_from_dict
from scaling.rl.checkpoints import load_policy
from scaling.rl.loop import run_rl
from scaling.train import run_training

# The shapes of tests/test_train.py and tests/test_rl.py: the compilation cache already holds them.
MODEL = {"name": "tiny", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 64}
MATH = {"min_digits": 1, "max_digits": 1, "min_steps": 1, "max_steps": 1, "operations": ["+", "-"]}


def tiny_config(**train) -> dict:
    return {"model": dict(MODEL), "data": {"source": "synthetic-math", "math": MATH}, "mesh": {"devices": 1},
            "optimizer": {"lr": 1e-2, "warmup": 10},
            "train": {"tokens": 16 * 64 * 40, "seq_len": 64, "batch_size": 16, "log_every": 5, "eval_every": 20,
                      "checkpoint_every": 20, "eval_batches": 1, "progress": False, **train}}


def rl_config(**changes) -> dict:
    cfg = {"task": {"name": "arithmetic", "params": MATH}, "sampling": {"max_new": 10},
           "grpo": {"group_size": 4, "prompts_per_step": 4, "max_prompt_tokens": 16}, "budget": {"steps": 2},
           "eval": {"every": 1, "problems": 16, "pass_k": 1}, "mesh": {"devices": 1}, "checkpoint_every": 100,
           "log_every": 1, "progress": False}
    return {**cfg, **changes}


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted run: checkpoints at steps 20 and 40."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    summary = run_training(run_config_from_dict(tiny_config()), run_dir)
    assert checkpoint_steps(run_dir) == [20, 40]
    return run_dir, summary


def unfinished_copy(straight_dir: Path, to: Path, damage_steps: list[int]) -> Path:
    """The run as a crash leaves it (no summary), with the checkpoints of `damage_steps` unreadable
    (their OCDBT manifest gone, as after a crash mid-write)."""
    shutil.copytree(straight_dir, to)
    (to / "summary.json").unlink()
    for step in damage_steps:
        (to / "checkpoints" / str(step) / "state" / "manifest.ocdbt").unlink()
    return to


def test_resume_with_every_checkpoint_unreadable_starts_over_and_matches_the_uninterrupted_run(straight, tmp_path,
                                                                                                 capfd):
    straight_dir, expected = straight
    run_dir = unfinished_copy(straight_dir, tmp_path / "run", damage_steps=[20, 40])
    with pytest.warns(UserWarning) as caught:
        summary = run_training(run_config_from_dict(tiny_config()), run_dir)
    said = " ".join(str(w.message) for w in caught)
    assert "step 40" in said and "step 20" in said and "starting over from step 0" in said
    # The failed restores must not have moved the data iterator: the rerun is the uninterrupted run.
    assert summary["loss"] == expected["loss"] and summary["eval_loss"] == expected["eval_loss"]
    assert [(r["step"], r["loss"]) for r in metrics(run_dir)] == [(r["step"], r["loss"]) for r in metrics(straight_dir)]
    # The damaged checkpoints are kept aside, and the new ones (same steps) were really written and read back.
    assert sorted(p.name for p in (run_dir / "checkpoints-unreadable").iterdir()) == ["20", "40"]
    assert checkpoint_steps(run_dir) == [20, 40] and load_policy(run_dir).step == 40
    err = capfd.readouterr().err
    assert "Event loop is closed" not in err and "Traceback" not in err


def test_falling_back_from_a_damaged_newest_checkpoint_is_exact_and_quiet(straight, tmp_path, capfd):
    straight_dir, expected = straight
    run_dir = unfinished_copy(straight_dir, tmp_path / "run", damage_steps=[40])
    with pytest.warns(UserWarning, match="step 40.*unreadable"):
        summary = run_training(run_config_from_dict(tiny_config()), run_dir)
    assert summary["loss"] == expected["loss"] and summary["step"] == 40
    assert [r["step"] for r in metrics(run_dir)] == [r["step"] for r in metrics(straight_dir)]
    err = capfd.readouterr().err
    assert "Event loop is closed" not in err and "Traceback" not in err  # was ~210 lines


def test_rl_killed_between_its_first_evaluation_and_first_checkpoint_logs_no_row_twice(straight, tmp_path):
    init_dir = straight[0]
    cfg = validate(RLConfig, rl_config())
    run_rl(cfg, init_dir, tmp_path / "straight")
    expected = metrics(tmp_path / "straight")
    assert [r["step"] for r in expected] == [0, 1, 2]
    # What a SIGKILL after the step-0 evaluation leaves: the run's config and the step-0 row, no checkpoint.
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(tmp_path / "straight" / "config.yaml", killed / "config.yaml")
    (killed / "metrics.jsonl").write_text((tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    run_rl(cfg, init_dir, killed)
    resumed = metrics(killed)
    assert [r["step"] for r in resumed] == [0, 1, 2]
    assert [r.get("accuracy") for r in resumed] == [r.get("accuracy") for r in expected]


def test_an_init_run_whose_checkpoint_does_not_match_its_config_is_one_line(straight, tmp_path, capfd):
    # Someone edited the run's config after training: a vocabulary the checkpoint does not have.
    run_dir = tmp_path / "edited"
    run_dir.mkdir()
    raw = yaml.safe_load((straight[0] / "config.yaml").read_text())
    raw["model"]["V"] = 512
    (run_dir / "config.yaml").write_text(yaml.safe_dump(raw))
    (run_dir / "checkpoints").symlink_to(straight[0] / "checkpoints")
    config = tmp_path / "rl.yaml"
    config.write_text(yaml.safe_dump(rl_config()))
    assert main(["rl", str(config), "--init", str(run_dir), "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err.strip()  # fd-level: absl warnings and Orbax's own reports count too
    assert "does not match the model of its config.yaml (" in err and "embed" in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_rl_into_its_own_init_run_is_refused_before_loading_anything(straight, tmp_path, capfd):
    config = tmp_path / "rl.yaml"
    config.write_text(yaml.safe_dump(rl_config()))
    before = {p: p.read_bytes() for p in straight[0].rglob("*") if p.is_file()}
    assert main(["rl", str(config), "--init", str(straight[0]), "--out", str(straight[0])]) == 2
    err = capfd.readouterr().err.strip()
    assert "is the --init run" in err and "\n" not in err  # no absl warnings before it
    assert {p: p.read_bytes() for p in straight[0].rglob("*") if p.is_file()} == before


def test_a_second_trainer_on_a_run_directory_in_use_is_refused(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tokens=16 * 64 * 100_000, checkpoint_every=1000)))
    run_dir = tmp_path / "run"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    first = subprocess.Popen([sys.executable, "-m", "scaling", "train", str(config), "--out", str(run_dir), "--quiet"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (run_dir / "metrics.jsonl").exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        assert main(["train", str(config), "--out", str(run_dir), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "another process is writing this run directory (pid " in err and "\n" not in err
        assert str(first.pid) in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
