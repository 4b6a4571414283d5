"""Sweeps end to end with the real trainer: parallel local runs, a Ray cluster, SIGKILL and resume.

The runs are the tiniest the trainer takes (D=32, L=1, seq_len 32, a few steps) on one simulated
device, so trainer start-up and compilation dominate; the local-executor sweep is shared between
the parallel test and the Ray comparison.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.sweep.registry import Registry
from tiny_sweeps import wait_for

TINY = [{"name": f"tiny{d}", "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64} for d in (32, 48)]
BASE = {"data": {"source": "stdlib-code"},
        "train": {"seq_len": 32, "batch_size": 4, "log_every": 1, "eval_every": 1000, "eval_batches": 1,
                  "checkpoint_every": 2, "progress": False},
        "optimizer": {"lr": 0.003, "warmup": 1}}


def write_sweep(path: Path, tokens: list[int], models=TINY, **fields) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "design": "grid", "base": BASE, "models": models,
                                    "tokens": tokens, **fields}))
    return path


@pytest.fixture(autouse=True)
def one_device(monkeypatch):
    # The trainer subprocesses inherit this: one CPU device compiles faster than the suite's eight.
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """4 runs (2 sizes x 2 token counts), 2 at a time, on the local executor. The bigger model's two runs
    are the two biggest (tiny48 at 384 tokens outweighs tiny32 at 512), as in a sweep of nearby budgets."""
    root = tmp_path_factory.mktemp("local")
    sweep = write_sweep(root / "tiny.yaml", [384, 512])
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(root / "out"),
                           "--max-parallel", "2"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Each finished run's line shows the number the fits use, the held-out loss.
    assert proc.stdout.count("eval loss ") == 4, proc.stdout
    return sweep, root / "out", time.time() - started


def rows_by_id(sweep_dir: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in Registry(sweep_dir / "registry.sqlite").runs()}


def test_k_parallel_local_runs_each_record_one_row(local_sweep):
    _, out, _ = local_sweep
    rows = rows_by_id(out)
    assert len(rows) == 4
    for row in rows.values():
        assert row["status"] == "done" and row["attempts"] == 1 and row["loss"] is not None
        summary = json.loads((out / row["run_dir"] / "summary.json").read_text())
        assert summary["status"] == "done" and summary["tokens"] == row["tokens"]
    curves = Registry(out / "registry.sqlite").curves()
    assert {c["run_id"] for c in curves} == set(rows)


def test_each_slot_trains_its_runs_in_one_worker_process(local_sweep):
    _, out, _ = local_sweep
    headers = [line for log in sorted(out.glob("logs/tiny*.log")) for line in log.read_text().splitlines()
               if line.startswith("=== ")]
    workers = {line.split("(worker ")[1].split(")")[0] for line in headers}
    assert len(headers) == 4 and len(workers) == 2, headers  # 4 runs, 2 slots: start-up paid twice, not 4 times


def test_each_worker_starts_on_its_own_model_and_finishes_its_runs_before_another(local_sweep):
    _, out, _ = local_sweep
    runs_by_worker: dict[str, list[tuple[float, str]]] = {}
    for log in out.glob("logs/tiny*.log"):
        header = next(line for line in log.read_text().splitlines() if line.startswith("=== "))
        worker = header.split("(worker ")[1].split(")")[0]
        run_dir = out / "runs" / log.stem
        first_step = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["time"]
        runs_by_worker.setdefault(worker, []).append((first_step, log.stem.split("-")[0]))
    models = [[model for _, model in sorted(runs)] for runs in runs_by_worker.values()]
    # Biggest first alone would start both workers on tiny48 (its runs are the two biggest), each compiling it;
    # with shape affinity the second worker starts on the model the first one is not compiling...
    assert len(models) == 2 and models[0][0] != models[1][0], models
    # ...and a worker moves on to another model only once no run of its own is left to start.
    for sequence in models:
        assert sequence == sorted(sequence, key=sequence.index), models


def test_resubmitting_a_finished_sweep_trains_nothing(local_sweep, capsys):
    sweep, out, _ = local_sweep
    before = {p: p.read_bytes() for p in out.glob("runs/*/metrics.jsonl")}
    assert main(["sweep", "submit", str(sweep), "--out", str(out)]) == 0
    assert "4 already finished, 0 to run" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in out.glob("runs/*/metrics.jsonl")} == before


def test_ray_executor_on_a_local_cluster_matches_the_local_executor(local_sweep, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor is the optional 'ray' extra; the dev extra, and so "
                                               "CI, installs it")
    sweep, local_out, _ = local_sweep
    out = tmp_path / "ray"
    try:
        assert main(["sweep", "submit", str(sweep), "--out", str(out), "--executor", "ray",
                     "--max-parallel", "2"]) == 0
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    local, remote = rows_by_id(local_out), rows_by_id(out)
    assert set(local) == set(remote)
    for run_id, row in remote.items():
        for key in ("status", "model", "tokens", "steps", "flops", "flops_6n", "flops_full", "n_params", "budget"):
            assert row[key] == local[run_id][key], key
        assert row["loss"] == pytest.approx(local[run_id]["loss"], rel=1e-4)
        assert row["eval_loss"] == pytest.approx(local[run_id]["eval_loss"], rel=1e-4)


def test_sigkill_of_the_submitter_loses_nothing_and_trains_no_run_twice(tmp_path):
    # Longest runs go first: the second 320-step run is still training when the first one is done.
    sweep = write_sweep(tmp_path / "kill.yaml", [256, 40960], set={"train.checkpoint_every": 40,
                                                                   "train.log_every": 20})
    out = tmp_path / "out"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    submitter = subprocess.Popen([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    registry = Registry(out / "registry.sqlite")

    def one_done_one_checkpointed():
        if not (out / "registry.sqlite").exists():
            return None
        try:
            rows = registry.runs()
        except Exception:
            return None
        running = [r for r in rows if r["status"] == "running" and r["pid"]]
        done = [r for r in rows if r["status"] == "done"]
        # A finalized (renamed) checkpoint: one still being written would not be restored.
        checkpoints = (out / running[0]["run_dir"] / "checkpoints").glob("*") if running else []
        if done and any(p.name.isdigit() for p in checkpoints):
            return running[0]
        return None

    try:
        victim = wait_for(one_done_one_checkpointed, 300, "a finished run and a checkpointed running one")
        finished_before = {r["run_id"]: (out / r["run_dir"] / "metrics.jsonl").read_bytes()
                           for r in registry.runs() if r["status"] == "done"}
        # Lines up to the first checkpoint (step 40) survive a resume verbatim, timings included;
        # a run retrained from step 0 would rewrite them with new timings.
        victim_metrics = out / victim["run_dir"] / "metrics.jsonl"
        victim_head = [line for line in victim_metrics.read_text().splitlines() if json.loads(line)["step"] <= 40]
        os.kill(submitter.pid, signal.SIGKILL)
        submitter.wait(10)
        # Its trainer must not live on as an orphan: it gets SIGTERM when the submitter dies.
        wait_for(lambda: not Path(f"/proc/{victim['pid']}").exists() or
                  Path(f"/proc/{victim['pid']}/stat").read_text().split()[2] == "Z", 60, "the orphaned trainer to exit")
    finally:
        if submitter.poll() is None:
            submitter.kill()
    assert registry.run(victim["run_id"])["status"] == "running"  # left behind, as after a crash

    proc = subprocess.run([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = registry.runs()
    assert len(rows) == len({r["run_id"] for r in rows}) == 4
    assert all(r["status"] == "done" for r in rows)
    for row in rows:
        if row["run_id"] in finished_before:  # not run again
            assert (out / row["run_dir"] / "metrics.jsonl").read_bytes() == finished_before[row["run_id"]]
            assert row["attempts"] == 1
    assert victim_head and victim_metrics.read_text().splitlines()[:len(victim_head)] == victim_head
    assert registry.run(victim["run_id"])["attempts"] == 2  # resumed once, not restarted


def test_sigkill_of_a_worker_fails_only_its_run_which_a_retry_resumes(tmp_path):
    sweep = write_sweep(tmp_path / "kill.yaml", [256, 40960], models=TINY[:1],
                        set={"train.checkpoint_every": 40, "train.log_every": 20})
    out = tmp_path / "out"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    submitter = subprocess.Popen([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    registry = Registry(out / "registry.sqlite")

    def checkpointed_running_run():
        try:
            running = [r for r in registry.runs() if r["status"] == "running" and r["pid"]]
        except Exception:  # the registry is not created yet
            return None
        if running and any(p.name.isdigit() for p in (out / running[0]["run_dir"] / "checkpoints").glob("*")):
            return running[0]
        return None

    try:
        victim = wait_for(checkpointed_running_run, 300, "a checkpointed running run")  # the long run goes first
        os.kill(victim["pid"], signal.SIGKILL)
        output, _ = submitter.communicate(timeout=300)
    finally:
        if submitter.poll() is None:
            submitter.kill()
    assert submitter.returncode == 1 and "1 of 2 runs failed" in output, output
    rows = {r["run_id"]: r for r in registry.runs()}
    assert rows[victim["run_id"]]["status"] == "failed" and "exit -9" in rows[victim["run_id"]]["error"]
    other = next(r for r in rows.values() if r["run_id"] != victim["run_id"])
    assert other["status"] == "done"  # trained by a fresh worker after the killed one
    proc = subprocess.run([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out),
                           "--retry-failed"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resumed = registry.run(victim["run_id"])
    assert resumed["status"] == "done" and resumed["attempts"] == 2
    lines = (out / resumed["run_dir"] / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines]
    assert logged == sorted(set(logged))  # resumed from its checkpoint: no step logged twice


def test_dry_run_estimates_wall_time_from_a_throughput_probe(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "probe.yaml", [256, 512], models=TINY[:1])
    assert main(["sweep", "submit", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "estimated wall time" in out and "?" not in out.split("est. wall")[1].split("N: active")[0]
    assert not (tmp_path / "out").exists()
