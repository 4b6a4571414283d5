"""One run as two JAX processes on this machine, the way it is started on two hosts: the same `scaling train`
command in each, with JAX_COORDINATOR_ADDRESS (localhost), JAX_NUM_PROCESSES=2 and JAX_PROCESS_ID, 4 CPU devices
per process and gloo collectives between them; the mesh (fsdp 8) splits the parameters and the batch over both.

The loss curve equal to the single-process 8-device run's is what shows each process fed its own rows: a
process feeding the whole batch would make a global batch twice as long (the step would not run), two feeding
the same rows would train on other data.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from scaling.config.run import run_config_from_dict
from scaling.train import run_training

STEPS = 8
CONFIG = {
    "model": {"name": "tiny", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 64, "dtype": "float32"},
    "data": {"source": "synthetic-math", "math": {"min_digits": 1, "max_digits": 2, "min_steps": 1, "max_steps": 1}},
    "mesh": {"fsdp": 8},
    "optimizer": {"lr": 1e-2, "warmup": 4},
    "train": {"tokens": 16 * 64 * STEPS, "seq_len": 64, "batch_size": 16, "log_every": 2, "eval_every": STEPS,
              "checkpoint_every": 4, "eval_batches": 2, "progress": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(config: Path, out: Path, tag: str) -> list[subprocess.Popen]:
    """Both processes of one job; their output goes to files (gloo is chatty, and a full pipe would block)."""
    port = _free_port()
    procs = []
    for index in range(2):
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
               "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(index)}
        log = open(out.parent / f"{tag}.process{index}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "scaling", "train", str(config), "--out", str(out),
                                       "--quiet"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
        log.close()
    return procs


def _finish(procs: list[subprocess.Popen], out: Path, tag: str, timeout: float = 300) -> tuple[list[int], list[str]]:
    """Wait for both processes; their outputs (the last line of each is its JSON summary or error)."""
    deadline = time.time() + timeout
    try:
        codes = [p.wait(timeout=max(1.0, deadline - time.time())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs = [(out.parent / f"{tag}.process{i}.log").read_text() for i in range(2)]
    return codes, outputs


def _last_line(output: str) -> str:
    return [line for line in output.splitlines() if not line.startswith("[Gloo]")][-1]


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory):
    """The reference: the same config in this one process over its 8 simulated devices."""
    out = tmp_path_factory.mktemp("single") / "run"
    summary = run_training(run_config_from_dict(CONFIG), out)
    return summary, _metrics(out), out


def test_two_processes_train_like_one_resume_after_kill_and_only_process_0_writes(tmp_path, single_process_run):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"

    # kill -9 of the whole job once its first checkpoint (saved by both processes: each holds half of
    # every parameter) is complete
    job = _launch(config, out, "killed")
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "checkpoints" / "4").is_dir() and all(p.poll() is None for p in job):
        time.sleep(0.05)
    for p in job:
        p.send_signal(signal.SIGKILL)
    codes, outputs = _finish(job, out, "killed")
    assert (out / "checkpoints" / "4").is_dir(), outputs
    assert _metrics(out)[-1]["step"] < STEPS  # killed mid-run

    # process 0 refuses a run directory that holds another run; the other process stops with the same line
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**CONFIG, "train": {**CONFIG["train"], "seed": 1}}))
    codes, outputs = _finish(_launch(other, out, "refused"), out, "refused")
    assert codes == [2, 2], outputs
    assert _last_line(outputs[0]) == _last_line(outputs[1])
    assert "holds a different run (config differs at train.seed)" in _last_line(outputs[0])

    # the same command again resumes from the checkpoint and ends as the uninterrupted run
    codes, outputs = _finish(_launch(config, out, "resumed"), out, "resumed")
    assert codes == [0, 0], outputs
    summary, reference, _ = single_process_run
    printed = [json.loads(_last_line(o)) for o in outputs]
    assert printed[0]["loss"] == printed[1]["loss"] and printed[0]["status"] == printed[1]["status"] == "done"
    assert printed[0]["loss"] == pytest.approx(summary["loss"], rel=1e-4)
    assert printed[0]["eval_loss"] == pytest.approx(summary["eval_loss"], rel=1e-4)

    rows = _metrics(out)  # written by process 0 alone: each step once, as the single-process run logged it
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    np.testing.assert_allclose([r["loss"] for r in rows], [r["loss"] for r in reference], rtol=1e-4)
    np.testing.assert_allclose([r["eval_loss"] for r in rows if "eval_loss" in r],
                               [r["eval_loss"] for r in reference if "eval_loss" in r], rtol=1e-4)
    written = json.loads((out / "summary.json").read_text())
    assert written["step"] == STEPS and written["device"] == "8x cpu (cpu, 2 processes)"
    assert any((out / "tensorboard").glob("events.out.tfevents.*"))
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4, 8]
    assert {p.name for p in (out / "checkpoints" / "8" / "data_iter").iterdir()} >= {"process_0-of-2.json",
                                                                                   "process_1-of-2.json"}


def test_a_checkpoint_saved_by_two_processes_resumes_in_one(tmp_path, single_process_run):
    """Grain names its iterator files by process index and count; the data position they hold is the same
    for any count, so a run saved by 2 processes resumes from its checkpoint in 1 (not from step 0)."""
    summary, reference, single = single_process_run
    out = tmp_path / "run"
    shutil.copytree(single, out)
    shutil.rmtree(out / "checkpoints" / str(STEPS))
    (out / "summary.json").unlink()
    data_iter = out / "checkpoints" / "4" / "data_iter"
    for index in range(2):  # as 2 processes leave it
        shutil.copy(data_iter / "process_0-of-1.json", data_iter / f"process_{index}-of-2.json")
    (data_iter / "process_0-of-1.json").unlink()

    resumed = run_training(run_config_from_dict(CONFIG), out)
    assert not (out / "checkpoints-unreadable").exists()
    rows = _metrics(out)
    assert [r["time"] for r in rows if r["step"] <= 4] == [r["time"] for r in reference if r["step"] <= 4]
    assert [r["loss"] for r in rows] == [r["loss"] for r in reference]
    assert resumed["eval_loss"] == summary["eval_loss"]


@pytest.mark.parametrize("env, needle", [
    ({"JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES: not set, but JAX_COORDINATOR_ADDRESS is"),
    ({"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES: 'two' is not an integer >= 1"),
    ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID: 2 is not below JAX_NUM_PROCESSES=2"),
], ids=["count-missing", "count-not-a-number", "index-too-large"])
def test_an_incomplete_multi_process_environment_exits_2_naming_the_variable(tmp_path, monkeypatch, capsys, env,
                                                                             needle):
    from scaling.cli.main import main

    for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", f"127.0.0.1:{_free_port()}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "tiny-math", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
