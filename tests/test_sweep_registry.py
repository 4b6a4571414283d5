"""The results registry under many concurrent writers, and what status/export read back from it."""
from __future__ import annotations

import csv
import multiprocessing as mp
import sqlite3

from scaling.cli.main import main
from scaling.sweep.registry import CURVE_NAMES, RUN_NAMES, Registry

CONTRACT_RUN_COLUMNS = [
    "run_id", "kind", "status", "model", "run_dir", "config_json", "n_params", "n_params_nonembedding",
    "n_params_active", "tokens", "flops", "flops_6n", "flops_full", "flop_convention", "budget", "loss", "eval_loss",
    "eval_bpb", "accuracy", "init_flops", "wall_s", "device", "error", "attempts", "updated_at"]
CONTRACT_CURVE_COLUMNS = ["run_id", "step", "tokens", "flops", "eval_loss", "accuracy"]


def _row(run_id: str, i: int) -> dict:
    return {"run_id": run_id, "name": f"m-C1e9-{run_id}", "kind": "pretrain", "status": "pending", "model": "m",
            "run_dir": f"runs/{run_id}", "config_json": "{}", "n_params": 1000 + i, "n_params_nonembedding": 900,
            "n_params_active": 1000, "n_params_active_nonembedding": 900, "tokens": 128 * i, "flops": 6e2 * i,
            "flops_6n": 6e2 * i, "flops_full": 7e2 * i, "flop_convention": "6n", "budget": 1e9, "attempts": 0}


def _writer(path: str, worker: int, n_runs: int) -> None:
    """What one executor task does for each of its runs: plan, start, beat, finish with a curve."""
    registry = Registry(path)
    for i in range(n_runs):
        run_id = f"w{worker:02d}r{i:03d}"
        registry.add_planned([_row(run_id, i)])
        registry.mark_running(run_id, pid=1000 + worker, host="test")
        registry.heartbeat(run_id)
        curve = [{"step": s, "tokens": 128 * s, "flops": 600.0 * s, "eval_loss": 5.0 / s} for s in (1, 2, 3)]
        registry.finish(run_id, {"status": "done", "loss": 1.0 + i, "eval_loss": 1.5, "wall_s": 0.1}, curve)


def test_many_processes_writing_one_registry_lose_no_rows(tmp_path):
    path = tmp_path / "registry.sqlite"
    Registry(path).init()
    workers, per_worker = 8, 25
    ctx = mp.get_context("spawn")  # no fork of a process that may hold JAX threads
    procs = [ctx.Process(target=_writer, args=(str(path), w, per_worker)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    registry = Registry(path)
    rows = registry.runs()
    assert len(rows) == len({r["run_id"] for r in rows}) == workers * per_worker
    assert all(r["status"] == "done" and r["attempts"] == 1 and r["loss"] is not None for r in rows)
    assert len(registry.curves()) == workers * per_worker * 3
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_registry_schema_holds_the_contract_columns(tmp_path):
    Registry(tmp_path / "r.sqlite").init()
    with sqlite3.connect(tmp_path / "r.sqlite") as conn:
        runs = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        curves = [r[1] for r in conn.execute("PRAGMA table_info(curves)")]
        pk = [r[1] for r in conn.execute("PRAGMA table_info(curves)") if r[5]]
    assert runs[:len(CONTRACT_RUN_COLUMNS)] == CONTRACT_RUN_COLUMNS and runs == RUN_NAMES
    assert curves[:len(CONTRACT_CURVE_COLUMNS)] == CONTRACT_CURVE_COLUMNS and pk == ["run_id", "step"]


def test_replanning_keeps_a_finished_run(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    registry.init()
    registry.add_planned([_row("a", 1)])
    registry.finish("a", {"status": "done", "loss": 2.0}, [])
    registry.add_planned([_row("a", 1)])
    assert [(r["run_id"], r["status"], r["loss"]) for r in registry.runs()] == [("a", "done", 2.0)]


def test_export_writes_the_registry_columns_and_curves(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    Registry(sweep / "registry.sqlite").init()
    _writer(str(sweep / "registry.sqlite"), 0, 3)
    out, curves = tmp_path / "runs.csv", tmp_path / "curves.csv"
    assert main(["sweep", "export", str(sweep), "--csv", str(out), "--curves", str(curves)]) == 0
    with open(out) as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [c for c in RUN_NAMES if c != "config_json"]
    assert [float(r["loss"]) for r in rows] == [1.0, 2.0, 3.0]
    with open(curves) as f:
        reader = csv.DictReader(f)
        points = list(reader)
    assert reader.fieldnames == CURVE_NAMES and len(points) == 9
    assert main(["sweep", "status", str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert "3 done" in printed and "m-C1e9-w00r000" in printed


def test_status_of_a_directory_without_registry_is_one_line_exit_2(tmp_path, capsys):
    assert main(["sweep", "status", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
