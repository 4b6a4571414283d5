"""The RL loop end to end on a tiny model: resume, bad input, and the eval command."""
import json
from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.config.base import validate
from scaling.config.rl import RLConfig
from scaling.config.run import run_config_from_dict
from scaling.rl import loop as rl_loop
from scaling.rl.loop import run_rl
from scaling.train import run_training

TASK = {"name": "arithmetic", "params": {"min_digits": 1, "max_digits": 1, "min_steps": 1, "max_steps": 1,
                                         "operations": ["+", "-"]}}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pre") / "run"
    # max_seq_len 128 (RoPE only; it trains on 64): long enough for reasoning-gym's prompts below.
    cfg = {"model": {"name": "tiny", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 128},
           "data": {"source": "synthetic-math", "math": TASK["params"]},
           "mesh": {"devices": 1}, "optimizer": {"lr": 1e-2, "warmup": 10},
           "train": {"tokens": 16 * 64 * 40, "seq_len": 64, "batch_size": 16, "eval_every": 40,
                     "checkpoint_every": 40, "eval_batches": 1, "progress": False}}
    run_training(run_config_from_dict(cfg), run_dir)
    return run_dir


def rl_config(**changes) -> dict:
    cfg = {"task": TASK, "sampling": {"max_new": 10}, "grpo": {"group_size": 4, "prompts_per_step": 4,
                                                                 "max_prompt_tokens": 16},
           "budget": {"steps": 6}, "eval": {"every": 3, "problems": 16, "pass_k": 2, "pass_k_problems": 4},
           "mesh": {"devices": 1}, "checkpoint_every": 2, "log_every": 1, "progress": False}
    for key, value in changes.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_rl_run_logs_accuracy_against_rl_flops_and_resumes_exactly(pretrained, tmp_path, monkeypatch):
    cfg = validate(RLConfig, rl_config())
    straight = run_rl(cfg, pretrained, tmp_path / "straight")
    assert straight["status"] == "done" and straight["steps"] == 6
    history = straight["eval_history"]
    assert [h["step"] for h in history] == [0, 3, 6]
    assert history[0]["rl_flops"] == 0 and history[-1]["rl_flops"] == straight["rl_flops"] > 0
    b = straight["flops_breakdown"]
    assert b["total"] == pytest.approx(b["rollout"] + b["update"])
    assert "pass@2" in history[-1] and "maj@2" in history[-1]

    # Crash inside step 5 (after the step-4 checkpoint), then run the same command again.
    real = rl_loop.make_policy_fns

    def crashing(*args, **kwargs):
        fns = real(*args, **kwargs)
        calls = {"n": 0}
        update = fns.update

        def update_then_crash(state, batch, lr):
            calls["n"] += 1
            if calls["n"] == 5:
                raise RuntimeError("simulated crash")
            return update(state, batch, lr)

        fns.update = update_then_crash
        return fns

    monkeypatch.setattr(rl_loop, "make_policy_fns", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_rl(cfg, pretrained, tmp_path / "resumed")
    monkeypatch.setattr(rl_loop, "make_policy_fns", real)
    resumed = run_rl(cfg, pretrained, tmp_path / "resumed")
    a, r = metrics(tmp_path / "straight"), metrics(tmp_path / "resumed")
    assert [x["step"] for x in a] == [x["step"] for x in r]
    for x, y in zip(a, r):
        for key in ("reward", "pg_loss", "rl_flops", "accuracy", "tokens_generated"):
            assert x.get(key) == y.get(key), (x["step"], key)
    assert resumed["accuracy"] == straight["accuracy"] and resumed["rl_flops"] == straight["rl_flops"]


def test_several_updates_per_rollout_batch_still_count_rl_steps(pretrained, tmp_path):
    """grpo.epochs optimizer updates per RL step: steps, eval points and checkpoints count RL steps."""
    cfg = validate(RLConfig, rl_config(grpo={"epochs": 2}, budget={"steps": 2}, eval={"every": 2, "pass_k": 1}))
    summary = run_rl(cfg, pretrained, tmp_path / "rl")
    assert summary["steps"] == 2 and [h["step"] for h in summary["eval_history"]] == [0, 2]
    assert sorted(int(p.name) for p in (tmp_path / "rl/checkpoints").iterdir() if p.name.isdigit()) == [2]
    assert summary["flops_breakdown"]["old_policy"] > 0


def test_a_token_cap_shorter_than_the_tasks_answers_is_warned_about():
    from scaling.config.data import DataConfig
    from scaling.data import get_tokenizer
    from scaling.rl.validate import cut_off_answers_warning
    from scaling.rl.tasks import get_task

    task = get_task("arithmetic", min_digits=1, max_digits=1, min_steps=3, max_steps=3, operations=["+", "-"])
    tokenizer = get_tokenizer(DataConfig(source="synthetic-math"))
    # Byte tokens: the longest worked answer, " 0-9=-9; -9-9=-18; -18-9=-27. #### -27", is 38.
    warning = cut_off_answers_warning(task, tokenizer, max_new=32)
    assert warning is not None and "max_new=32" in warning and "longest is 38" in warning and "\n" not in warning
    assert cut_off_answers_warning(task, tokenizer, max_new=38) is None


def test_eval_command_reports_pass_and_majority_at_k(pretrained, capsys):
    code = main(["eval", str(pretrained), "--task", "arithmetic", "--param", "max_digits=1", "--param", "max_steps=1",
                 "--problems", "4", "--k", "4", "--caps", "4,8", "--max-new", "8", "--prompt-tokens", "16", "--json", "-"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert {"pass@1", "pass@2", "pass@4", "maj@4", "greedy@len4", "greedy@len8", "pass@1 (greedy)"} <= set(m)
    assert m["pass@1"] <= m["pass@2"] <= m["pass@4"]


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("change,needle", [
    ({"task": {"name": "sudoku-deluxe"}}, "unknown task 'sudoku-deluxe'"),
    ({"grpo": {"group_size": 1}}, "group_size"),
], ids=["unknown-task", "group-of-one"])
def test_bad_rl_config_exits_2(pretrained, tmp_path, capsys, change, needle):
    config = _write(tmp_path / "rl.yaml", rl_config(**change))
    assert main(["rl", str(config), "--init", str(pretrained), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_init_without_checkpoint_and_vocab_mismatch_exit_2(pretrained, tmp_path, capsys):
    config = _write(tmp_path / "rl.yaml", rl_config())
    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "config.yaml").write_text((pretrained / "config.yaml").read_text())
    assert main(["rl", str(config), "--init", str(empty), "--out", str(tmp_path / "o1")]) == 2
    assert "no checkpoint" in capsys.readouterr().err

    # A model whose vocabulary is smaller than the tokenizer's: refuse before training.
    small = tmp_path / "small-vocab"
    small.mkdir()
    raw = yaml.safe_load((pretrained / "config.yaml").read_text())
    raw["model"]["V"] = 200
    (small / "config.yaml").write_text(yaml.safe_dump(raw))
    (small / "checkpoints").symlink_to(pretrained / "checkpoints")
    assert main(["rl", str(config), "--init", str(small), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "vocabulary" in err and "\n" not in err.strip()
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_the_bundled_reasoning_gym_recipe_runs_grpo_steps(pretrained, tmp_path):
    pytest.importorskip("reasoning_gym", reason="the optional 'tasks' extra (the dev extra installs it)")
    from scaling.bundled import locate
    from scaling.config.base import load_config

    few = ["budget.steps=2", "grpo.prompts_per_step=4", "grpo.group_size=4", "eval.every=2", "eval.problems=16",
           "eval.pass_k=2", "eval.pass_k_problems=4", "log_every=1", "progress=false"]
    cfg = load_config(RLConfig, locate("reasoning-gym-cpu", "rl"), few)
    summary = run_rl(cfg, pretrained, tmp_path / "rg")
    assert summary["status"] == "done" and summary["steps"] == 2
    assert [h["step"] for h in summary["eval_history"]] == [0, 2] and summary["rl_flops"] > 0
    rows = [r for r in metrics(tmp_path / "rg") if "reward" in r]
    assert len(rows) == 2 and all(0 <= r["reward"] <= 1 for r in rows)
