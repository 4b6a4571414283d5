"""Read a pretraining sweep and an RLVR sweep into the points `analysis` compares.

The RL runs measured accuracy with their own evaluator (greedy pass@1 on the task's held-out
problems, sampled pass@k when eval.pass_k > 1); every pretrained model is put through exactly that
evaluation here (same problems, prompt length, generation length, batch and sampling key as an RL
run's step-0 evaluation), so both axes share one metric. Those evaluations are cached, one JSON line
each, in OUT/pretrain_eval.jsonl keyed by run id, checkpoint step and settings: a second compare
evaluates nothing. Every bad-input check happens before anything is evaluated or written.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from scaling.compare.analysis import CurvePoint, PretrainPoint, RLRun
from scaling.config.rl import EvalSettings
from scaling.errors import UserError

CACHE_FILE = "pretrain_eval.jsonl"
# --metric: the key of the evaluation's metrics it reads. Greedy pass@1 is one answer per problem;
# sampled pass@1 is the mean over eval.pass_k samples per problem (DeepSeek-R1's pass@1), whose
# variance is lower, so small changes (an RL run's first steps) stand out of the noise.
METRICS = {"greedy": "accuracy", "pass@1": "pass@1"}
METRIC_NAMES = {"greedy": "greedy pass@1", "pass@1": "sampled pass@1"}


def metric_label(metric: str, s: EvalSettings) -> str:
    """What the accuracy axes measure, for the report and the figures' axes."""
    if metric == "greedy":
        return f"greedy pass@1, {s.eval.problems} held-out problems{_tiers(s)}"
    return (f"sampled pass@1: mean of {s.eval.pass_k} samples at temperature {s.sampling.temperature:g}, "
            f"{min(s.eval.pass_k_problems, s.eval.problems)} held-out problems{_tiers(s)}")


def _tiers(s: EvalSettings) -> str:
    """How the arithmetic task's held-out score averages (an equal share of each step count): say so."""
    if s.task.name != "arithmetic":  # building other tasks (reasoning-gym datasets) costs more than a label
        return ""
    from scaling.rl.tasks import get_task

    note = get_task(s.task.name, **s.task.params).eval_set_note
    return f" ({note})" if note else ""


# Part of every cached evaluation's key: bump it when a task's held-out problem set changes, so that
# reports made before do not mix old and new scores (2: arithmetic problems stratified by step count).
EVAL_SET_VERSION = 2


def cache_key(settings: EvalSettings, run_id: str, step: int) -> str:
    text = json.dumps({"run_id": run_id, "step": step, "eval_set": EVAL_SET_VERSION, **settings.to_json()},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Collected:
    pretrain_dir: Path
    rl_dir: Path
    settings: EvalSettings
    pretrain: list[PretrainPoint]
    rl: list[RLRun]
    loss_convention: str  # FLOP convention of the pretraining sweep's `flops` column (its loss law)
    metric: str = "greedy"  # a key of METRICS
    evaluated: int = 0  # pretrained models evaluated now (the rest came from the cache)
    checks: list[dict] = field(default_factory=list)  # RL step-0 accuracy vs our evaluation of its init
    warnings: list[str] = field(default_factory=list)

    @property
    def metric_name(self) -> str:
        return METRIC_NAMES[self.metric]

    @property
    def metric_axis(self) -> str:
        """The metric in few words, for a figure's axis."""
        s = self.settings
        if self.metric == "greedy":
            return f"greedy pass@1, {s.eval.problems} problems"
        return f"sampled pass@1, {s.eval.pass_k} samples x {min(s.eval.pass_k_problems, s.eval.problems)} problems"

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric, self.settings)


def done_rows(sweep_dir: str | Path, kind: str, what: str) -> tuple[Path, list[dict], list[dict]]:
    """(resolved dir, done runs, curves) of a sweep of the given kind; UserError naming `what` otherwise."""
    from scaling.sweep.registry import Registry

    path = Path(sweep_dir)
    db = path / "registry.sqlite"
    if not db.is_file():
        raise UserError(f"{what} {sweep_dir}: not a sweep directory (no registry.sqlite)")
    try:
        registry = Registry(db)
        rows, curves = registry.runs(), registry.curves()
    except sqlite3.Error as e:
        raise UserError(f"{what} {sweep_dir}: cannot read registry.sqlite ({e})") from None
    kinds = {row.get("kind") or "pretrain" for row in rows}
    spec = path / "sweep.yaml"
    if not rows and spec.is_file():
        try:
            kinds = {(yaml.safe_load(spec.read_text()) or {}).get("kind") or "pretrain"}
        except (yaml.YAMLError, AttributeError):
            raise UserError(f"{what} {sweep_dir}: sweep.yaml is unreadable") from None
    if kinds - {kind}:
        raise UserError(f"{what} {sweep_dir}: a {'/'.join(sorted(kinds - {kind}))} sweep; expected kind {kind}")
    done = [row for row in rows if row["status"] == "done"]
    if not done:
        raise UserError(f"{what} {sweep_dir}: no finished runs (see `scaling sweep status {sweep_dir}`)")
    return path.resolve(), done, curves


def _rl_config(sweep_dir: Path, row: dict):
    from scaling.config.base import validate
    from scaling.config.rl import RLConfig

    path = sweep_dir / row["run_dir"] / "config.yaml"
    if not path.is_file():
        raise UserError(f"RL_SWEEP {sweep_dir}: run {row['name']} has no config.yaml ({path})")
    return validate(RLConfig, yaml.safe_load(path.read_text()) or {}, source=str(path))


def _checkpoint_step(run_dir: Path) -> int | None:
    steps = [int(p.name) for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
    return max(steps) if steps else None


class HeldOutOnce:
    """A task whose held-out problems are drawn once per size: drawing them (rejection against the
    training stream) costs more than evaluating a tiny model, and every model gets the same ones."""

    def __init__(self, task):
        self._task, self._drawn = task, {}

    def __getattr__(self, name):
        return getattr(self._task, name)

    def eval_problems(self, n: int):
        if n not in self._drawn:
            self._drawn[n] = self._task.eval_problems(n)
        return self._drawn[n]


def make_task(s: EvalSettings) -> HeldOutOnce:
    from scaling.rl.tasks import get_task

    return HeldOutOnce(get_task(s.task.name, **s.task.params))


def evaluate_on_rl_task(run_dir: Path, s: EvalSettings, task=None) -> dict[str, float]:
    """The RL loop's step-0 evaluation, applied to a pretrained model's newest checkpoint
    (`task`: the RL task, built from `s` when not given)."""
    from scaling.rl.evaluate import evaluate_policy, load_policy_for_task

    task = task or make_task(s)
    policy = load_policy_for_task(run_dir, task, s.prompt_tokens)
    return evaluate_policy(policy.graphdef, policy.states, policy.tokenizer, task, task.eval_problems(s.eval.problems),
                           s, step=0)


def append_cache(path: Path, record: dict) -> None:
    """One evaluation's record, appended as soon as it is done: an interrupted report keeps its work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_cache(path: Path) -> dict[str, dict]:
    """key -> record; the last line for a key wins, and a torn last line (killed mid-write) is skipped."""
    out = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                out[record["key"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return out


def collect(pretrain_sweep: str | Path, rl_sweep: str | Path, out_dir: str | Path, reevaluate: bool = False,
            metric: str = "greedy", log: Callable[[str], Any] = lambda _: None) -> Collected:
    if metric not in METRICS:
        raise UserError(f"--metric {metric}: known metrics are {', '.join(METRICS)}")
    pre_dir, pre_rows, _ = done_rows(pretrain_sweep, "pretrain", "PRETRAIN_SWEEP")
    rl_dir, rl_rows, rl_curves = done_rows(rl_sweep, "rlvr", "RL_SWEEP")
    for row in pre_rows:
        if _checkpoint_step(pre_dir / row["run_dir"]) is None:
            raise UserError(f"PRETRAIN_SWEEP {pretrain_sweep}: run {row['name']} has no checkpoint to evaluate")
        if row.get("flops_full") is None:
            raise UserError(f"PRETRAIN_SWEEP {pretrain_sweep}: run {row['name']} records no full-convention FLOPs")
    warnings: list[str] = []
    configs = {row["run_id"]: _rl_config(rl_dir, row) for row in rl_rows}
    tasks = {(c.task.name, json.dumps(c.task.params, sort_keys=True)) for c in configs.values()}
    if len(tasks) > 1:
        raise UserError(f"RL_SWEEP {rl_sweep}: its runs train on {len(tasks)} different tasks "
                        f"({', '.join(sorted(t for t, _ in tasks))}); compare one task at a time")
    first = min(rl_rows, key=lambda r: r["run_id"])
    settings = EvalSettings.of(configs[first["run_id"]])
    if metric == "pass@1" and settings.eval.pass_k < 2:
        raise UserError(f"--metric pass@1: the RL runs of {rl_sweep} draw no samples at evaluation (eval.pass_k = "
                        f"{settings.eval.pass_k}); use --metric greedy or RL runs with eval.pass_k >= 2")
    same = {run_id for run_id, cfg in configs.items() if EvalSettings.of(cfg) == settings}
    if len(same) < len(configs):
        others = ", ".join(r["name"] for r in rl_rows if r["run_id"] not in same)
        warnings.append(f"RL runs {others} evaluated with other settings than {first['name']}, whose settings "
                        "the pretrained models are evaluated with")

    rl = _rl_runs(pre_dir, pre_rows, rl_dir, rl_rows, rl_curves, configs, warnings, METRICS[metric])
    if not rl:
        raise UserError(f"RL_SWEEP {rl_sweep}: no finished RL run has an evaluation curve to compare")
    pretrain, evaluated = _pretrain_points(pretrain_sweep, pre_dir, pre_rows, settings, Path(out_dir), reevaluate, log,
                                          METRICS[metric])

    # The RL loop evaluated each starting model before its first step: the same number, if the
    # evaluation here really is the RL one.
    by_id = {p.run_id: p for p in pretrain}
    checks = [{"rl_run_id": r.run_id, "init_run_id": r.init_run_id, "rl_initial_accuracy": r.initial_accuracy,
               "compare_accuracy": by_id[r.init_run_id].accuracy,
               "equal": abs(r.initial_accuracy - by_id[r.init_run_id].accuracy) < 1e-9}
              for r in rl if r.init_run_id in by_id and r.initial_accuracy is not None and r.run_id in same]
    for c in checks:
        if not c["equal"]:
            warnings.append(f"RL run {c['rl_run_id']} measured its starting model at {c['rl_initial_accuracy']:.4g} "
                            f"but compare measures {c['compare_accuracy']:.4g}: the evaluations differ")
    conventions = {r.get("flop_convention") for r in pre_rows} - {None}
    return Collected(pre_dir, rl_dir, settings, pretrain, rl, "/".join(sorted(conventions)) or "6n", metric,
                     evaluated, checks, warnings)


def _rl_runs(pre_dir, pre_rows, rl_dir, rl_rows, rl_curves, configs, warnings, key="accuracy") -> list[RLRun]:
    """The RL side straight from the registry: its curves table (greedy pass@1; another metric `key`
    comes from each run's eval history in summary.json), each run's starting model (found by run
    directory, or by name when the pretraining sweep was moved) and that model's FLOPs."""
    from scaling.train.rundir import read_summary

    pre_by_dir = {(pre_dir / r["run_dir"]).resolve(): r for r in pre_rows}
    pre_by_name = {Path(r["run_dir"]).name: r for r in pre_rows}
    rl = []
    for row in sorted(rl_rows, key=lambda r: (r.get("init_flops") or 0, r["flops"] or 0, r["run_id"])):
        init_dir = Path(configs[row["run_id"]].init_run or "")
        init_row = pre_by_dir.get(init_dir.resolve()) or pre_by_name.get(init_dir.name)
        init_flops = row.get("init_flops") or (init_row or {}).get("flops_full")
        summary = read_summary(rl_dir / row["run_dir"]) or {}
        history = summary.get("eval_history") or []
        if key == "accuracy":
            curve = [CurvePoint(int(c["step"]), float(c["flops"]), float(c["accuracy"])) for c in rl_curves
                     if c["run_id"] == row["run_id"] and c["accuracy"] is not None and (c["flops"] or 0) > 0]
            initial = summary.get("initial_accuracy")
        else:
            curve = [CurvePoint(int(e["step"]), float(e["rl_flops"]), float(e[key])) for e in history
                     if e.get(key) is not None and (e.get("rl_flops") or 0) > 0]
            initial = history[0].get(key) if history and history[0].get("step") == 0 else None
        if init_flops is None or not curve:
            warnings.append(f"RL run {row['name']} left out: "
                            + ("no pretraining FLOPs for its starting model" if init_flops is None else
                               "no evaluation after an RL step in the registry"))
            continue
        if init_row is None:
            warnings.append(f"RL run {row['name']} starts from {init_dir}, which is not a finished run of "
                            f"PRETRAIN_SWEEP; it is placed at its recorded pretraining FLOPs ({init_flops:.3g})")
        if key == "accuracy" and (curve[-1].accuracy != row["accuracy"] or curve[-1].rl_flops != row["flops"]):
            warnings.append(f"RL run {row['name']}: its last curve point ({curve[-1].accuracy:.4g} at "
                            f"{curve[-1].rl_flops:.4g} FLOPs) is not its registry row ({row['accuracy']} at "
                            f"{row['flops']} FLOPs); the curve is used")
        final = (history or [{}])[-1]
        rl.append(RLRun(
            run_id=row["run_id"], name=row["name"] or row["run_id"],
            init_run_id=init_row["run_id"] if init_row else init_dir.name, init_flops=float(init_flops),
            curve=curve, initial_accuracy=initial,
            extra={"init_name": init_row["name"] if init_row else init_dir.name, "budget": row.get("budget"),
                   "seed": row.get("seed"), "steps": row.get("steps"), "flops_6n": row.get("flops_6n"),
                   "run_dir": row["run_dir"], **{k: v for k, v in final.items() if k.startswith(("pass@", "maj@"))}}))
    return rl


def _pretrain_points(sweep, pre_dir, pre_rows, settings, out_dir: Path, reevaluate, log,
                     metric_key: str = "accuracy") -> tuple[list, int]:
    """Every done pretraining run on the RL task, from the cache or evaluated now (and then cached);
    its accuracy is the metric `metric_key` of that evaluation (the others are kept in `extra`)."""
    cache_path = out_dir / CACHE_FILE
    cache = {} if reevaluate else read_cache(cache_path)
    evaluated, task, points = 0, None, []
    for i, row in enumerate(sorted(pre_rows, key=lambda r: (r["flops_full"], r["run_id"]))):
        run_dir = pre_dir / row["run_dir"]
        step = _checkpoint_step(run_dir)
        key = cache_key(settings, row["run_id"], step)
        record = cache.get(key)
        if record is None:
            log(f"evaluating {row['name']} on {settings.task.name} ({i + 1}/{len(pre_rows)})")
            started = time.time()
            task = task or make_task(settings)
            try:
                metrics = evaluate_on_rl_task(run_dir, settings, task)
            except UserError as e:
                raise UserError(f"PRETRAIN_SWEEP {sweep}: run {row['name']} cannot be evaluated on the RL task: "
                                f"{e}") from None
            record = {"key": key, "run_id": row["run_id"], "name": row["name"], "run_dir": str(run_dir), "step": step,
                      "settings": settings.to_json(), "metrics": metrics, "wall_s": round(time.time() - started, 3)}
            append_cache(cache_path, record)
            evaluated += 1
        metrics = record["metrics"]
        points.append(PretrainPoint(
            run_id=row["run_id"], name=row["name"] or row["run_id"], flops=float(row["flops_full"]),
            accuracy=float(metrics[metric_key]),
            extra={"model": row.get("model"), "n_params": row.get("n_params"), "tokens": row.get("tokens"),
                   "flops_6n": row.get("flops_6n"), "eval_loss": row.get("eval_loss"), "checkpoint_step": step,
                   "run_dir": row["run_dir"], "greedy_pass@1": metrics["accuracy"],
                   **{k: v for k, v in metrics.items() if k != "accuracy"}}))
    return points, evaluated
