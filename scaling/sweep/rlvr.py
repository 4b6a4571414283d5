"""RLVR sweeps: GRPO from pretrained runs, one run per (init run x RL budget x seed x swept values).

    kind: rlvr
    base: configs/rl/arithmetic-cpu.yaml   # an RL YAML or an RLConfig mapping (task, sampling, grpo, ...)
    init:
      sweep: runs/demo-math-cpu            # a pretraining SWEEP_DIR ...
      select: compute_optimal              # ... per budget the done run with the lowest eval_loss; or `all`
      min_budget: 1.0e11                   # ... of the budgets >= this only (optional)
      # runs: [runs/x/runs/a, ...]         # or explicit pretraining run directories
    budgets: [1.0e11, 3.0e11]              # RL FLOPs, full convention (budget.flops); or steps: [..]
    seeds: [0]
    set: {grpo.group_size: 8}
    sweep: {optimizer.lr: [1e-4, 3e-4]}

Relative `init:` paths are looked up in the current directory first (the same place `--out` of the
pretraining submit was relative to), then next to the sweep file; the first that exists wins and
is made absolute. The resolved RL config carries that absolute `init_run`, so run ids (the hash of
the resolved config, as for pretraining) change if the pretraining sweep is moved.

RL FLOPs are counted in the full convention (rollout + update, see `scaling.rl.compute`), so an RL
row's `flops`/`flops_full` are its RL FLOPs and `init_flops` the pretraining FLOPs (full). Before a
run finishes its row holds estimates (steps at full-length completions); the run's summary replaces them.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from scaling.config.base import StrictModel, validate
from scaling.config.rl import RLConfig, is_rl_config
from scaling.errors import UserError
from scaling.sweep.plan import Plan, PlannedRun, set_dotted, short_number
from scaling.sweep.spec import SweepSpecBase, check_grid_values, resolve_base

SELECTORS = ("compute_optimal", "all")
# The sweep sets these itself; stating them in `set:`/`sweep:` too would be two sources of truth.
OWNED_KEYS = ("init_run", "seed", "budget")


class RLInitSpec(StrictModel):
    sweep: str | None = Field(None, description="pretraining sweep directory")
    select: str | None = Field(None, description="compute_optimal (default) or all")
    runs: list[str] | None = Field(None, description="explicit pretraining run directories")
    # RL improves a model only where it already has partial skill on the task: below some pretraining
    # budget the models solve nothing, and their RL runs would cost time to show a flat line.
    min_budget: float | None = Field(None, gt=0, description="with init.sweep: only runs of budgets (FLOPs, or "
                                                             "tokens) at least this large")

    @field_validator("select")
    @classmethod
    def _known_selector(cls, v):
        if v is not None and v not in SELECTORS:
            raise ValueError(f"unknown selector {v!r} (known: {', '.join(SELECTORS)})")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        if (self.sweep is None) == (self.runs is None):
            raise ValueError("sweep: give exactly one of sweep (with select) or runs")
        if self.runs is not None:
            if not self.runs:
                raise ValueError("runs: list at least one pretraining run directory")
            if self.select is not None or self.min_budget is not None:
                which = "select" if self.select is not None else "min_budget"
                raise ValueError(f"{which}: only used with init.sweep (init.runs names the runs itself)")
        return self


class RLVRSweepSpec(SweepSpecBase):
    """RLVR sweeps: pretrained runs x RL budgets x seeds (x swept values)."""

    design: str = Field("grid", description="rlvr sweeps have one design: every combination")
    init: RLInitSpec
    budgets: list[float] | None = Field(None, description="RL compute budgets in FLOPs (full convention)")
    steps: list[int] | None = Field(None, description="RL step budgets (instead of budgets)")

    @field_validator("budgets", "steps")
    @classmethod
    def _positive_distinct(cls, v):
        return check_grid_values(v)

    @model_validator(mode="after")
    def _rlvr_fields(self):
        if (self.budgets is None) == (self.steps is None):
            raise ValueError("budgets: give exactly one of budgets (RL FLOPs) or steps")
        if self.rules:
            raise ValueError("rules: not supported by rlvr sweeps (use set: or sweep:)")
        for where, keys in (("set", self.overrides), ("sweep", self.swept)):
            for key in keys:
                if key.split(".")[0] in OWNED_KEYS:
                    raise ValueError(f"{where}.{key}: set by the sweep itself (init:, budgets:/steps:, seeds:)")
        return self


@dataclass
class RLPlannedRun(PlannedRun):
    """A planned RL run. `counts` are the init model's; `tokens` (generated) is unknown until it ran."""

    init_dir: str = ""
    init_label: str = ""
    init_flops: float | None = None
    planned_flops: float = 0.0  # the FLOP budget, or steps x a full-length step

    @property
    def flop_convention(self) -> str:
        return "full"

    @property
    def flops_6n(self) -> float | None:
        return None

    @property
    def flops_full(self) -> float:
        return self.planned_flops

    @property
    def flops(self) -> float:
        return self.planned_flops

    @property
    def tag(self) -> str:
        budget = f"C{short_number(self.budget)}" if self.budget is not None else f"S{self.config.budget.steps}"
        return f"rl{budget}"

    @property
    def name(self) -> str:
        return f"{self.init_label}-{self.tag}-{self.run_id}"

    def registry_row(self) -> dict[str, Any]:
        return {**super().registry_row(), "init_flops": self.init_flops}


@dataclass
class InitRun:
    run_dir: Path  # absolute
    label: str  # names RL run directories: the pretraining run's name without its id
    summary: dict[str, Any]


def find_dir(ref: str, sweep_path: Path | None, what: str) -> Path:
    """A directory as written (relative to the cwd), else relative to the sweep file; made absolute."""
    candidates = [Path(ref)]
    if sweep_path is not None and not Path(ref).is_absolute():
        candidates.append(sweep_path.parent / ref)
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise UserError(f"{what}: no such directory {ref!r} (tried {tried})")


def _init_run(run_dir: Path, what: str, warnings: list[str]) -> InitRun:
    import yaml

    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{what}: {run_dir} is not a run directory (no config.yaml)")
    raw = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if is_rl_config(raw):
        raise UserError(f"{what}: {run_dir} is an RL run; start RL sweeps from pretraining runs")
    ckpts = run_dir / "checkpoints"
    if not ckpts.is_dir() or not any(p.name.isdigit() for p in ckpts.iterdir()):
        raise UserError(f"{what}: {run_dir} has no checkpoint to start from")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    if summary.get("status") != "done":
        warnings.append(f"{run_dir}: pretraining is not recorded as done; RL starts from its newest checkpoint")
    name = run_dir.name
    head, _, tail = name.rpartition("-")
    label = head if head and len(tail) == 12 and all(ch in "0123456789abcdef" for ch in tail) else name
    return InitRun(run_dir, label, summary)


def _rows_of(sweep_dir: Path, what: str) -> list[dict[str, Any]]:
    from scaling.sweep.registry import Registry

    if not (sweep_dir / "registry.sqlite").is_file():
        raise UserError(f"{what}: {sweep_dir} is not a sweep directory (no registry.sqlite)")
    rows = [r for r in Registry(sweep_dir / "registry.sqlite").runs()
            if r["status"] == "done" and (r.get("kind") or "pretrain") == "pretrain"]
    if not rows:
        raise UserError(f"{what}: {sweep_dir} has no finished pretraining runs "
                        f"(see `scaling sweep status {sweep_dir}`)")
    return rows


def _budget_of(row: dict[str, Any]) -> float:
    """A pretraining run's budget: its FLOP budget, else (a tokens grid) its token count."""
    return row["budget"] if row["budget"] is not None else float(row["tokens"] or 0)


def select_rows(rows: list[dict[str, Any]], select: str, min_budget: float | None = None) -> list[dict[str, Any]]:
    """`all`: every row; `compute_optimal`: per budget (FLOPs, else tokens), the lowest eval loss;
    of the budgets >= min_budget only, when given."""
    if min_budget is not None:
        rows = [r for r in rows if _budget_of(r) >= min_budget]
    if select == "all":
        return sorted(rows, key=lambda r: (r["flops"] or 0, r["run_id"]))
    best: dict[float, dict[str, Any]] = {}
    for row in rows:
        key = _budget_of(row)
        loss = row["eval_loss"] if row["eval_loss"] is not None else row["loss"]
        if loss is None:
            continue
        held = best.get(key)
        if held is None or (loss, row["run_id"]) < (held["_loss"], held["run_id"]):
            best[key] = {**row, "_loss": loss}
    return [best[k] for k in sorted(best)]


def init_runs(spec: RLVRSweepSpec, path: Path | None, warnings: list[str]) -> list[InitRun]:
    if spec.init.runs is not None:
        dirs = [(find_dir(ref, path, f"init.runs[{i}]"), f"init.runs[{i}]") for i, ref in enumerate(spec.init.runs)]
    else:
        sweep_dir = find_dir(spec.init.sweep, path, "init.sweep")
        rows = select_rows(_rows_of(sweep_dir, "init.sweep"), spec.init.select or "compute_optimal",
                           spec.init.min_budget)
        if not rows and spec.init.min_budget is not None:
            raise UserError(f"init.min_budget: {sweep_dir} has no finished run of a budget of at least "
                            f"{spec.init.min_budget:g}")
        if not rows:
            raise UserError(f"init.sweep: {sweep_dir} has no finished run with a loss to select by")
        dirs = [((sweep_dir / r["run_dir"]).resolve(), f"init.sweep ({r['name'] or r['run_id']})") for r in rows]
    runs = [_init_run(d, what, warnings) for d, what in dirs]
    seen = set()
    for run in runs:
        if run.run_dir in seen:
            raise UserError(f"init: {run.run_dir} is listed twice")
        seen.add(run.run_dir)
    return runs


def expand_rlvr(spec: RLVRSweepSpec, path: Path | None) -> Plan:
    from scaling.data import get_tokenizer
    from scaling.model.accounting import count_model
    from scaling.rl.checkpoints import load_policy_config
    from scaling.rl.compute import step_flops
    from scaling.rl.validate import check_task_fits_model, cut_off_answers_warning
    from scaling.rl.tasks import get_task

    import numpy as np

    src = str(path) if path else "sweep"
    base = resolve_base(spec, path)
    warnings: list[str] = []
    inits = init_runs(spec, path, warnings)
    keys = list(spec.swept)
    budgets = spec.budgets or spec.steps
    runs: list[RLPlannedRun] = []
    for init in inits:
        init_cfg = load_policy_config(init.run_dir)
        tokenizer = get_tokenizer(init_cfg.data)
        checked: set[str] = set()
        for combo in itertools.product(*(spec.swept[k] for k in keys)):
            swept = dict(zip(keys, combo))
            for seed in spec.seeds or [None]:
                for value in budgets:
                    data = copy.deepcopy(base)
                    for key, v in spec.overrides.items():
                        set_dotted(data, key, v, f"set.{key}")
                    for key, v in swept.items():
                        set_dotted(data, key, v, f"sweep.{key}")
                    data["init_run"] = str(init.run_dir)
                    data["budget"] = {"flops": float(value)} if spec.budgets else {"steps": int(value)}
                    if seed is not None:
                        data["seed"] = seed
                    where = f"{src}: init {init.label}"
                    cfg = validate(RLConfig, data, source=where)
                    grpo = cfg.grpo
                    fit_key = f"{cfg.task.model_dump_json()}|{grpo.max_prompt_tokens}"
                    if fit_key not in checked:  # a task the model cannot read fails here, before anything runs
                        try:
                            check_task_fits_model(get_task(cfg.task.name, **cfg.task.params), tokenizer,
                                                  init_cfg, grpo.max_prompt_tokens)
                        except UserError as e:
                            raise UserError(f"{where}: {e}") from None
                        checked.add(fit_key)
                    # Said once at submit: each run also says it, but into its own log.
                    length_key = f"{cfg.task.model_dump_json()}|{cfg.sampling.max_new}"
                    if length_key not in checked:
                        cut = cut_off_answers_warning(get_task(cfg.task.name, **cfg.task.params), tokenizer,
                                                      cfg.sampling.max_new)
                        if cut and cut not in warnings:
                            warnings.append(cut)
                        checked.add(length_key)
                    counts = count_model(init_cfg.model, grpo.max_prompt_tokens + cfg.sampling.max_new)
                    n = grpo.prompts_per_step * grpo.group_size
                    full_step = step_flops(counts, grpo, np.full(n, grpo.max_prompt_tokens), np.full(n, cfg.sampling.max_new))
                    if spec.budgets:
                        steps = max(1, math.ceil(value / full_step["total"]))
                        planned = float(value)
                    else:
                        steps, planned = int(value), int(value) * full_step["total"]
                    runs.append(RLPlannedRun(
                        kind="rlvr", design="grid", model=init_cfg.model.name or init.label, config=cfg, counts=counts,
                        tokens=0, steps=steps, budget=float(value) if spec.budgets else None, grid_tokens=None,
                        seed=cfg.seed, swept=swept, init_dir=str(init.run_dir), init_label=init.label,
                        init_flops=init.summary.get("flops_full"), planned_flops=planned))
    notes = [f"rlvr: starting from {len(inits)} pretraining run(s): " + ", ".join(i.label for i in inits)]
    order = {str(i.run_dir): k for k, i in enumerate(inits)}
    runs.sort(key=lambda r: (r.planned_flops, order[r.init_dir], r.seed, r.run_id))
    return Plan(runs, warnings=warnings, notes=notes)
