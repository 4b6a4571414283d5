"""The pretraining trainer: it learns, it resumes exactly after SIGKILL, it is mesh-invariant, it fails cleanly."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from scaling.cli.main import main
from scaling.config.run import run_config_from_dict
from scaling.train import run_training

TINY_MODEL = {"name": "tiny", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 64}
MATH = {"source": "synthetic-math", "math": {"min_digits": 1, "max_digits": 2, "min_steps": 1, "max_steps": 1}}


def tiny_config(**train):
    return {
        "model": dict(TINY_MODEL),
        "data": dict(MATH),
        "mesh": {"devices": 1},
        "optimizer": {"lr": 1e-2, "warmup": 10},
        "train": {"tokens": 16 * 64 * 60, "seq_len": 64, "batch_size": 16, "log_every": 5, "eval_every": 20,
                  "checkpoint_every": 20, "eval_batches": 2, "progress": False, **train},
    }


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def unigram_entropy_nats(cfg: dict) -> float:
    from scaling.data import build_train_iterator, get_tokenizer

    rc = run_config_from_dict(cfg)
    it = build_train_iterator(rc.data, seq_len=64, batch_size=64, seed=0, tokenizer=get_tokenizer(rc.data))
    counts = Counter(np.concatenate([next(it)["targets"].ravel() for _ in range(4)]).tolist())
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()
    return float(-(p * np.log(p)).sum())


def test_tiny_model_on_synthetic_math_learns_well_below_unigram_entropy(tmp_path):
    cfg = tiny_config(tokens=16 * 64 * 300, eval_every=100, checkpoint_every=300)  # TensorBoard is on by default
    summary = run_training(run_config_from_dict(cfg), tmp_path / "run")
    assert any((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    entropy = unigram_entropy_nats(cfg)
    assert entropy > 2.0  # digits, operators, spaces, newlines: a real distribution to beat
    assert summary["status"] == "done" and summary["step"] == 300
    assert summary["loss"] < 0.5 * entropy, (summary["loss"], entropy)
    assert summary["eval_loss"] < 0.5 * entropy
    run_dir = tmp_path / "run"
    assert {"config.yaml", "metrics.jsonl", "summary.json", "checkpoints"} <= {p.name for p in run_dir.iterdir()}
    record = metrics(run_dir)[-1]
    for key in ("step", "tokens", "flops_6n", "flops_full", "loss", "lr", "grad_norm", "tokens_per_s", "eval_loss", "eval_bpb"):
        assert key in record
    assert summary["flops_full"] > summary["flops_6n"] > 0


def _train_subprocess(config: Path, out: Path, devices: int = 1, extra: tuple = ()) -> subprocess.Popen:
    patience = "--xla_cpu_collective_call_terminate_timeout_seconds=1800"  # as in conftest: a loaded box is slow
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {patience}"}
    return subprocess.Popen([sys.executable, "-m", "scaling", "train", str(config), "--out", str(out), "--quiet",
                             *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_runs_of_one_shape_share_one_compiled_step_whatever_their_schedule():
    """The learning rate is an argument of the compiled step, not a constant in it: a sweep's runs of
    one model size (other budgets, other schedules) compile once and hit the persistent cache."""
    from scaling.model import build_model
    from scaling.parallel import make_mesh
    from scaling.train.optim import make_optimizer
    from scaling.train.step import compile_steps, init_train_state

    programs = []
    for optimizer, total_steps in (({"lr": 1e-2, "warmup": 10}, 60), ({"lr": 3e-3, "warmup": 0.1, "schedule": "wsd"}, 500)):
        cfg = run_config_from_dict({**tiny_config(), "optimizer": optimizer})
        mesh = make_mesh(cfg.mesh)
        tx, schedule = make_optimizer(cfg.optimizer, total_steps)
        graphdef, state, shardings = init_train_state(build_model(cfg.model, mesh), tx, mesh)
        step = compile_steps(cfg.model, graphdef, shardings, tx, mesh).train_step
        batch = {"inputs": np.zeros((16, 64), np.int32), "targets": np.zeros((16, 64), np.int32),
                 "mask": np.ones((16, 64), np.float32)}
        programs.append(step.lower(state, batch, np.float32(schedule(0))).as_text())
    assert programs[0] == programs[1]


def test_several_steps_per_call_train_the_same_run_as_one_step_per_call(tmp_path):
    """Steps taken K to a call (a loop on the device; the CPU default) give the numbers of one step per call:
    calls end wherever something is due (log every 7, evaluate and checkpoint at 20, the end at 30) and the last
    call is short, so one program serves every chunk length."""
    rows, summaries = {}, {}
    for per_call in (1, 4):
        cfg = tiny_config(tokens=16 * 64 * 30, log_every=7, eval_every=20, checkpoint_every=20, steps_per_call=per_call)
        summaries[per_call] = run_training(run_config_from_dict(cfg), tmp_path / f"k{per_call}")
        rows[per_call] = metrics(tmp_path / f"k{per_call}")
    assert [r["step"] for r in rows[4]] == [r["step"] for r in rows[1]] == [7, 14, 20, 21, 28, 30]
    for key in ("loss", "grad_norm", "lr"):
        np.testing.assert_allclose([r[key] for r in rows[4]], [r[key] for r in rows[1]], rtol=1e-6)
    assert summaries[4]["eval_loss"] == pytest.approx(summaries[1]["eval_loss"], rel=1e-6)
    assert summaries[4]["step"] == 30 and sorted(p.name for p in (tmp_path / "k4" / "checkpoints").iterdir()
                                                 if p.name.isdigit()) == ["20", "30"]


def test_schedules_warm_up_then_hold_or_decay_to_the_final_rate():
    from scaling.config.run import OptimizerConfig
    from scaling.train.optim import lr_schedule

    def at(steps, **opt):
        schedule = lr_schedule(OptimizerConfig(lr=1.0, final_lr_fraction=0.1, **opt), 100)
        return [schedule(s) for s in steps]

    assert at([0, 9, 10, 99], warmup=10, schedule="constant") == [0.1, 1.0, 1.0, 1.0]
    cosine = at([10, 55, 100], warmup=10, schedule="cosine")
    assert cosine[0] == 1.0 and cosine[1] == pytest.approx(0.55) and cosine[2] == pytest.approx(0.1)
    wsd = at([50, 79, 80, 90, 100], warmup=0, schedule="wsd", decay_fraction=0.2, decay_shape="linear")
    assert wsd[:3] == [1.0, 1.0, 1.0] and wsd[3] == pytest.approx(0.55) and wsd[4] == pytest.approx(0.1)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted run, the reference for the kill-and-resume tests below."""
    root = tmp_path_factory.mktemp("straight")
    config = write_config(root / "run.yaml", tiny_config(tokens=16 * 64 * 80, checkpoint_every=10, log_every=5))
    proc = _train_subprocess(config, root / "straight")
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    return config, root / "straight"


def _kill_after_checkpoint(config: Path, out: Path, step: int) -> float:
    """Start a run, SIGKILL it once a checkpoint at `step` or later exists; returns the time of the kill."""
    victim = _train_subprocess(config, out)
    ckpts = out / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpts.is_dir() and any(p.name.isdigit() and int(p.name) >= step
                                                                 for p in ckpts.iterdir())):
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.time()
    partial = metrics(out)
    assert partial and partial[-1]["step"] < 80  # really killed mid-run
    return killed_at


def test_resume_after_sigkill_matches_uninterrupted_run(straight, tmp_path):
    config, straight_dir = straight
    _kill_after_checkpoint(config, tmp_path / "killed", 30)
    resumed = _train_subprocess(config, tmp_path / "killed")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()

    a, b = metrics(straight_dir), metrics(tmp_path / "killed")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("loss", "grad_norm", "lr", "tokens", "flops_6n"):
            assert ra[key] == rb[key], (ra["step"], key)
        if "eval_loss" in ra:
            assert ra["eval_loss"] == rb["eval_loss"]
    sa = json.loads((straight_dir / "summary.json").read_text())
    sb = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert sa["loss"] == sb["loss"] and sa["eval_loss"] == sb["eval_loss"]


def test_resume_with_tensorboard_off_and_another_mesh_is_the_same_run(straight, tmp_path):
    """How a run is run (TensorBoard, checkpoint cadence, the mesh) is not its identity: turning TensorBoard
    off and moving from 1 device to 2 between a SIGKILL and the rerun resumes the same run from its checkpoint."""
    from scaling.sweep.plan import run_id_of

    config, straight_dir = straight
    out = tmp_path / "killed"
    killed_at = _kill_after_checkpoint(config, out, 30)
    # Checkpoint cadence is operational too: the resumed part saves only at its end.
    changed = ["--set", "mesh.devices=2", "--set", "train.tensorboard=false", "--set", "train.checkpoint_every=1000"]
    resumed = _train_subprocess(config, out, devices=2, extra=changed)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()

    recorded = yaml.safe_load((out / "config.yaml").read_text())
    assert recorded["mesh"]["devices"] == 2 and recorded["train"]["tensorboard"] is False  # recorded, not hashed
    assert recorded["train"]["checkpoint_every"] == 1000
    assert run_id_of(run_config_from_dict(recorded)) == run_id_of(run_config_from_dict(yaml.safe_load(config.read_text())))
    rows = metrics(out)
    assert rows[0]["time"] < killed_at < rows[-1]["time"]  # rows up to the checkpoint kept: resumed, not restarted
    assert any((out / "tensorboard").glob("events.out.tfevents.*"))  # written before the kill: on by default
    a, b = json.loads((straight_dir / "summary.json").read_text()), json.loads((out / "summary.json").read_text())
    # bfloat16, and 50 steps reduced in another order on 2 devices: the same curve up to rounding.
    assert b["step"] == a["step"] and b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-3)


# The second mesh also takes 4 steps per call (2 at a time, as logs fall every 2 steps): batches stacked along a
# leading axis keep the batch's sharding on the others.
@pytest.mark.parametrize("mesh,per_call", [({"fsdp": 8}, "auto"), ({"data": 2, "tensor": 2, "fsdp": 2}, 4)],
                         ids=["fsdp8", "data2-tensor2-fsdp2-4-per-call"])
def test_training_on_8_devices_gives_the_same_loss_curve_as_one(tmp_path, mesh, per_call):
    base = tiny_config(tokens=16 * 64 * 20, log_every=2, eval_every=20, checkpoint_every=20)
    base["model"]["dtype"] = "float32"
    one = run_training(run_config_from_dict(base), tmp_path / "one")
    sharded_cfg = {**base, "mesh": mesh, "train": {**base["train"], "steps_per_call": per_call}}
    eight = run_training(run_config_from_dict(sharded_cfg), tmp_path / "eight")
    la = [r["loss"] for r in metrics(tmp_path / "one")]
    lb = [r["loss"] for r in metrics(tmp_path / "eight")]
    np.testing.assert_allclose(lb, la, rtol=2e-4)
    assert eight["eval_loss"] == pytest.approx(one["eval_loss"], rel=2e-4)


def test_corrupted_latest_checkpoint_is_skipped_for_the_previous_one(tmp_path):
    cfg = run_config_from_dict(tiny_config(tokens=16 * 64 * 40, checkpoint_every=20))
    run_training(cfg, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    # Damage the newest checkpoint's array data and pretend the run never finished.
    newest = ckpts / "40"
    for f in (newest / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\0garbage")
    (tmp_path / "run" / "summary.json").unlink()
    with pytest.warns(UserWarning, match="step 40.*unreadable"):
        summary = run_training(cfg, tmp_path / "run")
    assert summary["status"] == "done" and summary["step"] == 40


def test_explosion_stops_the_run_as_diverged_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # Warm up towards an absurd learning rate without clipping: early steps are fine, later ones blow up.
    cfg = tiny_config(tokens=16 * 64 * 100, checkpoint_every=5, log_every=5)
    cfg["optimizer"] = {"lr": 1.0, "warmup": 60, "schedule": "constant", "grad_clip": None, "b1": 0.0, "b2": 0.0,
                        "weight_decay": 0.0}
    config = write_config(tmp_path / "run.yaml", cfg)
    code = main(["train", str(config), "--out", str(tmp_path / "run")])
    assert code == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "step" in summary["reason"]
    steps = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) < int(summary["reason"].split("at step ")[1])
    assert "diverged" in capsys.readouterr().err


def test_wsd_fork_from_trunk_reproduces_the_trunk(tmp_path):
    trunk_cfg = tiny_config(tokens=16 * 64 * 40, checkpoint_every=40, keep_steps=[30])
    trunk_cfg["optimizer"] |= {"schedule": "wsd", "decay_fraction": 0.25}
    trunk = run_training(run_config_from_dict(trunk_cfg), tmp_path / "trunk")
    fork_cfg = {**trunk_cfg, "train": {**trunk_cfg["train"], "keep_steps": [],
                                       "fork_from": {"run_dir": str(tmp_path / "trunk"), "step": 30}}}
    fork = run_training(run_config_from_dict(fork_cfg), tmp_path / "fork")
    assert fork["loss"] == trunk["loss"] and fork["eval_loss"] == trunk["eval_loss"]
    assert metrics(tmp_path / "fork")[0]["step"] == 35  # the branch starts where it forked


BAD_INPUTS = [
    ({"data": {"source": "files", "paths": ["/nonexistent/corpus.txt"]}}, "corpus.txt"),
    ({"train": {"tokens": 10}}, "smaller than one step"),
    ({"optimizer": {"lr": 5.0}}, "lr"),
    ({"model": {**TINY_MODEL, "V": 100}}, "model.V"),
]


@pytest.mark.parametrize("change,needle", BAD_INPUTS, ids=["missing-data", "budget", "lr", "vocab"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, change, needle):
    cfg = tiny_config()
    for key, value in change.items():
        cfg[key] = value if key == "model" else {**cfg.get(key, {}), **value}
    config = write_config(tmp_path / "run.yaml", cfg)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_empty_corpus_and_a_run_dir_holding_another_config_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cfg = tiny_config()
    cfg["data"] = {"source": "files", "paths": [str(empty)]}
    assert main(["train", str(write_config(tmp_path / "a.yaml", cfg)), "--out", str(tmp_path / "a")]) == 2
    assert "empty" in capsys.readouterr().err.lower()

    run_dir = tmp_path / "b"
    run_dir.mkdir()
    first = tiny_config()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(run_config_from_dict(first).model_dump(mode="json")))
    before = (run_dir / "config.yaml").read_bytes()
    second = tiny_config(seed=7)
    assert main(["train", str(write_config(tmp_path / "b.yaml", second)), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "different run" in err and "train.seed" in err
    assert (run_dir / "config.yaml").read_bytes() == before


def _wandb_records(run_dir: Path) -> tuple[dict, list[dict]]:
    """The run header and history rows of an offline W&B run: its .wandb file is a LevelDB-style log
    (7-byte file header, 32 KiB blocks, records cut into chunks) of protobuf Records."""
    import struct

    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, pos, pending, header, history = path.read_bytes(), 7, b"", {}, []
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending, pos = pending + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4) and pending:  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record.FromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "run":
                header = {"project": record.run.project, "group": record.run.run_group, "id": record.run.run_id}
            elif record.WhichOneof("record_type") == "history":
                history.append({item.nested_key[0]: json.loads(item.value_json) for item in record.history.item})
    return header, history


def test_wandb_offline_logs_every_record_grouped_under_its_sweep(tmp_path):
    pytest.importorskip("wandb", reason="the optional 'wandb' extra (the dev extra installs it)")
    from scaling.config.identity import run_id
    from scaling.sweep.registry import Registry

    sweep_dir = tmp_path / "my-sweep"
    sweep_dir.mkdir()
    Registry(sweep_dir / "registry.sqlite").init()  # a run directory inside a sweep: SWEEP/runs/NAME
    cfg = tiny_config(tokens=16 * 64 * 20, wandb={"project": "lab", "mode": "offline"})
    run_training(run_config_from_dict(cfg), sweep_dir / "runs" / "tiny-a")

    header, history = _wandb_records(sweep_dir / "runs" / "tiny-a")
    resolved = yaml.safe_load((sweep_dir / "runs" / "tiny-a" / "config.yaml").read_text())
    assert header == {"project": "lab", "group": "my-sweep", "id": run_id(resolved)}
    logged = metrics(sweep_dir / "runs" / "tiny-a")
    assert [h["_step"] for h in history] == [r["step"] for r in logged]
    assert [h.get("loss") for h in history] == [r.get("loss") for r in logged]
    assert history[-1]["eval_loss"] == logged[-1]["eval_loss"]


def test_param_dtype_bfloat16_stores_and_updates_parameters_in_bfloat16(tmp_path):
    from scaling.rl.checkpoints import load_policy

    cfg = tiny_config(tokens=16 * 64 * 20, log_every=2, eval_every=20, checkpoint_every=20)
    cfg["model"] = {**cfg["model"], "param_dtype": "bfloat16"}
    assert run_training(run_config_from_dict(cfg), tmp_path / "run")["status"] == "done"
    losses = [r["loss"] for r in metrics(tmp_path / "run")]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.5  # it still learns
    params, _ = load_policy(tmp_path / "run").states  # as trained and checkpointed
    assert {str(x.dtype) for x in jax.tree.leaves(params)} == {"bfloat16"}
