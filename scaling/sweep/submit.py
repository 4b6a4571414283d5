"""`scaling sweep submit`: expand a sweep file, claim the sweep directory, run what is not done yet.

Resume is the default: runs recorded 'done' (or 'diverged', a result too) are skipped, interrupted
ones ('pending', or 'running' left by a killed submitter: we hold the directory's lock, so no one
else is running them) are started again and the trainer resumes them from their checkpoints, and
'failed' ones are retried only with `retry_failed`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from scaling.config.identity import ID_SCHEME
from scaling.errors import RunFailed, UserError
from scaling.sweep.executors import make_executor
from scaling.sweep.executors.task import RunTask
from scaling.sweep.expand import expand, load_sweep, resolved_spec
from scaling.sweep.kinds import get_kind
from scaling.sweep.plan import Plan, PlannedRun
from scaling.sweep.progress import Progress
from scaling.sweep.registry import Registry
from scaling.sweep.scheduler import run_all
from scaling.sweep.sweepdir import claimed, write_atomic


def plan_sweep(path: str | Path, overrides: list[str] | None = None) -> tuple[Plan, dict]:
    spec = load_sweep(path, overrides)
    return expand(spec, path), resolved_spec(spec, path)


def submit(path: str | Path, out: str | Path, executor: str = "local", max_parallel: int = 1,
           address: str | None = None, retry_failed: bool = False, dry_run: bool = False, probe: bool = True,
           gpus_per_run: float = 0.0, live: bool | None = None, overrides: list[str] | None = None,
           process_per_run: bool = False) -> int:
    plan, resolved = plan_sweep(path, overrides)  # every bad-input error happens here, before anything is written
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for note in plan.notes:
        print(note)
    if dry_run:
        from scaling.sweep.dryrun import print_plan

        print_plan(plan, probe=probe, max_parallel=max_parallel)
        return 0
    sweep_dir = Path(out).resolve()
    with claimed(sweep_dir, resolved, str(path)):
        registry = Registry(sweep_dir / "registry.sqlite")
        registry.init()
        _refuse_foreign_rows(registry, plan, sweep_dir)
        for run in plan.runs:
            _write_run_config(sweep_dir, run)
        registry.add_planned(r.registry_row() for r in plan.runs)
        rows = {row["run_id"]: row for row in registry.runs()}
        statuses = {r.run_id: rows[r.run_id]["status"] for r in plan.runs}
        rerun = ("pending", "running", "failed") if retry_failed else ("pending", "running")
        todo = [r for r in plan.runs if statuses[r.run_id] in rerun]
        skipped_failed = sum(s == "failed" for s in statuses.values()) if not retry_failed else 0
        for run in todo:
            statuses[run.run_id] = "pending"
        print(f"{len(plan.runs)} runs in {sweep_dir}: {len(plan.runs) - len(todo) - skipped_failed} already "
              f"finished, {len(todo)} to run" + (f", {skipped_failed} failed (--retry-failed reruns them)"
                                                   if skipped_failed else ""), flush=True)
        if todo:
            ex = make_executor(executor, max_parallel, address=address, gpus_per_run=gpus_per_run,
                               process_per_run=process_per_run, log_dir=sweep_dir / "logs")
            progress = Progress(plan.runs, statuses, ex.capacity, live=live)
            try:
                run_all(todo, statuses, ex, registry, lambda r: _task(sweep_dir, r), progress)
            finally:
                progress.close()
            print(f"sweep: {progress.line().rsplit(', ETA', 1)[0]}")
    interrupted = [r.name for r in plan.runs if statuses[r.run_id] in ("pending", "running")]
    if interrupted:  # e.g. a lost Ray node: not a result yet, and an unattended caller must see it (exit 1)
        print(f"scaling sweep: {len(interrupted)} of {len(plan.runs)} runs were interrupted (first: {interrupted[0]}); "
              "submit again to resume them from their checkpoints", file=sys.stderr)
    failed = [r.name for r in plan.runs if statuses[r.run_id] == "failed"]
    if failed:
        raise RunFailed(f"{len(failed)} of {len(plan.runs)} runs failed (first: {failed[0]}); see "
                        f"{sweep_dir}/logs/ and `scaling sweep status {sweep_dir}`")
    return 1 if interrupted else 0


def _refuse_foreign_rows(registry: Registry, plan: Plan, sweep_dir: Path) -> None:
    """Same sweep file but runs under other ids: the resolved run configs changed (a config default
    or field was added since), so continuing would train a second copy of the grid beside the first."""
    planned = {r.run_id for r in plan.runs}
    foreign = [row["name"] for row in registry.runs() if row["run_id"] not in planned]
    if foreign and registry.id_scheme() < ID_SCHEME:
        raise UserError(f"--out {sweep_dir}: its registry was written by an earlier version of scaling, whose run "
                        "ids also hashed operational settings (progress, cadence, mesh); its runs and fits stay "
                        "readable, but to train more submit to a new --out")
    if foreign:
        raise UserError(f"--out {sweep_dir}: its registry holds {len(foreign)} runs this sweep no longer expands to "
                        f"(e.g. {foreign[0]}): the resolved run configs changed since it was submitted (a config "
                        "default or field of this version of the code?); submit to a new --out")


def _write_run_config(sweep_dir: Path, run: PlannedRun) -> None:
    """The resolved config the trainer reads; rewritten only if missing (same id ⇒ same content)."""
    path = sweep_dir / "configs" / f"{run.name}.yaml"
    if not path.is_file():
        header = f"# {run.name}: resolved {run.kind} run config of this sweep (run id {run.run_id})\n"
        write_atomic(path, header + yaml.safe_dump(run.config.model_dump(mode="json"), sort_keys=False))


def _task(sweep_dir: Path, run: PlannedRun) -> RunTask:
    # Each run is launched by its own kind's command: a split sweep holds pretrain and rlvr runs.
    return RunTask(run_id=run.run_id, name=run.name, command=get_kind(run.kind).command, sweep_dir=str(sweep_dir),
                   config_path=f"configs/{run.name}.yaml", run_dir=run.run_dir, log_path=f"logs/{run.name}.log",
                   flop_convention=run.flop_convention, shape_key=run.shape_key)

