"""`scaling sweep status` (the grid as a table) and `scaling sweep export` (CSV for fits elsewhere)."""
from __future__ import annotations

import csv
import socket
from pathlib import Path

from scaling.errors import UserError
from scaling.sweep.progress import format_seconds
from scaling.sweep.registry import CURVE_NAMES, RUN_NAMES, Registry


def open_registry(sweep_dir: str | Path) -> Registry:
    path = Path(sweep_dir) / "registry.sqlite"
    if not path.is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no registry.sqlite)")
    return Registry(path)


PRETRAIN_COLUMNS = ("run", "status", "N", "D", "C", "D/N", "FLOPs", "loss", "eval loss", "wall")
# An RL run: N total params of its init model, that model's pretraining FLOPs, the RL budget and RL FLOPs
# spent (full convention), tokens generated, and held-out greedy pass@1 at the end.
RL_COLUMNS = ("run", "status", "N", "init FLOPs", "RL budget", "RL FLOPs", "tokens gen.", "greedy pass@1", "wall")


def shown_status(row: dict) -> str:
    """'running' rows whose trainer is gone (the submitter was killed) read 'interrupted'."""
    if row["status"] == "running" and row.get("host") == socket.gethostname() and row.get("pid"):
        if not Path(f"/proc/{row['pid']}").exists():
            return "interrupted"
    return row["status"]


def print_status(sweep_dir: str | Path) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = open_registry(sweep_dir).runs()
    counts: dict[str, int] = {}
    for row in rows:
        counts[shown_status(row)] = counts.get(shown_status(row), 0) + 1
    title = f"{sweep_dir}: {len(rows)} runs, " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    table = Table(title=title, title_justify="left")
    if any(row.get("split_share") is not None for row in rows):
        return print_split_status(sweep_dir, rows, title)
    rl = any(row.get("kind") == "rlvr" for row in rows)  # a sweep file has one kind
    columns = RL_COLUMNS if rl else PRETRAIN_COLUMNS
    for col in columns:
        table.add_column(col, justify="left" if col in ("run", "status") else "right")
    for row in sorted(rows, key=lambda r: (r["budget"] or r["flops"] or 0, r["n_params_active_nonembedding"] or 0)):
        n = row["n_params_active_nonembedding"] or row["n_params_nonembedding"] or 0
        budget = row["budget"] if row["budget"] is not None else row["flops"]
        status = shown_status(row)
        if row.get("role") == "branch":
            status += f" (fork @{row['fork_step']})"
        wall = format_seconds(row["wall_s"]) if row["wall_s"] else ""
        if rl:
            table.add_row(row["name"] or row["run_id"], status, f"{row['n_params'] or 0:,}", _g(row["init_flops"]),
                          _g(budget), _g(row["flops"]), f"{row['tokens'] or 0:,}", _f(row["accuracy"]), wall)
        else:
            table.add_row(row["name"] or row["run_id"], status, f"{n:,}", f"{row['tokens']:,}", _g(budget),
                          f"{row['tokens'] / n:.1f}" if n else "", _g(row["flops"]), _f(row["loss"]),
                          _f(row["eval_loss"]), wall)
    Console(width=max(160, Console().width)).print(table)
    failed = [r for r in rows if r["status"] == "failed" and r.get("error")]
    for row in failed[:5]:
        print(f"failed {row['name']}: {row['error']}")


# One row per pipeline (C, f): its pretraining run and its RL run (eval-only at f = 0), FLOPs as run (as
# planned until the run is done), the realized RL share, and the RL run's held-out greedy pass@1.
SPLIT_COLUMNS = ("C", "f", "model", "pretraining", "RL run", "pretrain FLOPs", "RL FLOPs", "share run", "pass@1",
                 "wall")


def print_split_status(sweep_dir, rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    by_id = {row["run_id"]: row for row in rows}
    table = Table(title=title, title_justify="left")
    for col in SPLIT_COLUMNS:
        table.add_column(col, justify="left" if col in ("model", "pretraining", "RL run") else "right")
    for row in sorted((r for r in rows if r.get("split_share") is not None),
                      key=lambda r: (r["split_budget"], r["split_share"], r["seed"] or 0)):
        pre = by_id.get(row["fork_of"]) or {}
        pre_flops = pre.get("flops_full") if pre.get("status") == "done" else row["init_flops"]
        share = row["flops_full"] / (pre_flops + row["flops_full"]) if row["status"] == "done" and pre_flops else None
        walls = [r["wall_s"] for r in (pre, row) if r.get("wall_s")]
        table.add_row(_g(row["split_budget"]), f"{row['split_share']:g}", row["model"] or "",
                      f"{pre.get('name') or row['fork_of']} ({shown_status(pre) if pre else 'missing'})",
                      f"{'eval only' if row['split_share'] == 0 else row['name']} ({shown_status(row)})",
                      _g(pre_flops), _g(row["flops_full"]), f"{share:.3f}" if share is not None else "",
                      _f(row["accuracy"]), format_seconds(sum(walls)) if walls else "")
    Console(width=max(160, Console().width)).print(table)
    ends = [r for r in rows if r.get("split_share") is not None]
    print(f"{len(ends)} pipelines: {len({r['fork_of'] for r in ends})} pretraining runs (one shared by pipelines is "
          f"trained once) + {len(ends)} RL/eval-only runs; wall: the pipeline's pretraining + RL")
    for row in [r for r in rows if r["status"] == "failed" and r.get("error")][:5]:
        print(f"failed {row['name']}: {row['error']}")


def _g(x) -> str:
    return f"{x:.3g}" if x is not None else ""


def _f(x) -> str:
    return f"{x:.4f}" if x is not None else ""


def export_csv(sweep_dir: str | Path, csv_path: str | Path, curves_path: str | Path | None = None) -> tuple[int, int]:
    """One CSV row per run (the registry's columns, minus config_json); optionally the eval curves."""
    registry = open_registry(sweep_dir)
    columns = [c for c in RUN_NAMES if c != "config_json"]
    rows = registry.runs()
    _write_csv(Path(csv_path), columns, rows)
    n_points = 0
    if curves_path is not None:
        points = registry.curves()
        _write_csv(Path(curves_path), CURVE_NAMES, points)
        n_points = len(points)
    return len(rows), n_points


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
