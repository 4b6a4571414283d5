"""Launch a sweep's runs on an executor, respecting dependencies (a wsd_forks branch needs its trunk, a
split sweep's RL run its pretraining run)."""
from __future__ import annotations

from typing import Callable

from scaling.sweep.executors.task import RunTask
from scaling.sweep.plan import PlannedRun
from scaling.sweep.progress import Progress
from scaling.sweep.registry import Registry


def run_all(runs: list[PlannedRun], statuses: dict[str, str], executor, registry: Registry,
            make_task: Callable[[PlannedRun], RunTask], progress: Progress) -> dict[str, str]:
    """Run `runs` (the ones not already finished); `statuses` holds every run's current status and is
    updated in place. Runs others wait for go first, then the biggest runs, so the slowest work starts earliest;
    among those, runs that can reuse an idle worker's compiled steps go before runs that cannot."""
    needed = {r.depends_on for r in runs}
    waiting = sorted(runs, key=lambda r: (r.run_id not in needed, -r.flops_to_train))
    queued = {r.run_id for r in waiting}
    # A persistent worker keeps the steps it compiled: of the ready runs, start first the one whose shape an
    # idle worker has compiled, then one no worker has (a fresh worker compiles it once), each in priority order.
    affinity = getattr(executor, "affinity", lambda shape_key: 0)
    in_flight: dict[object, PlannedRun] = {}
    interrupted = True  # until the loop ends normally
    try:
        while waiting or in_flight:
            while len(in_flight) < executor.capacity:
                ready = []
                for run in list(waiting):
                    blocker = _blocked_by(run, statuses, queued)
                    if blocker == "wait":
                        continue
                    if blocker:
                        waiting.remove(run)
                        queued.discard(run.run_id)
                        registry.update(run.run_id, status="failed", error=blocker)
                        statuses[run.run_id] = "failed"
                        progress.finished(run, "failed", registry.run(run.run_id))
                        continue
                    ready.append(run)
                if not ready:
                    break
                run = min(ready, key=lambda r: (r.run_id not in needed, affinity(r.shape_key)))  # first of equals
                waiting.remove(run)
                queued.discard(run.run_id)
                in_flight[executor.submit(make_task(run))] = run
                statuses[run.run_id] = "running"
                progress.started(run)
            for handle, status in executor.wait(list(in_flight), timeout=1.0) if in_flight else []:
                run = in_flight.pop(handle)
                row = registry.run(run.run_id)
                if row and row["status"] == "running":  # the worker died before it could record the outcome
                    registry.update(run.run_id, status="failed", error="the executor lost this run (worker crashed)")
                    row = registry.run(run.run_id)
                statuses[run.run_id] = row["status"] if row else status
                progress.finished(run, statuses[run.run_id], row)
            progress.refresh()
        interrupted = False
    finally:
        executor.close(interrupted=interrupted)
    return statuses


def _blocked_by(run: PlannedRun, statuses: dict[str, str], queued: set[str]) -> str | None:
    """None: ready. 'wait': the run it needs is queued or running. Otherwise why it can never run."""
    if not run.depends_on:
        return None
    trunk = statuses.get(run.depends_on)
    if trunk == "done":
        return None
    if run.depends_on in queued or trunk == "running":
        return "wait"
    return f"the run it starts from, {run.depends_on}, ended {trunk or 'missing'}"
