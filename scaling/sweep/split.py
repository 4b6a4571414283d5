"""Split sweeps: at each total budget C, pretrain with (1 - f)·C and run RL with f·C, for every RL share f.

    kind: split
    base: configs/train/demo-math-cpu.yaml     # the pretraining recipe (as in pretrain sweeps)
    models: [math-25k, math-55k, ...]          # the model ladder
    tokens_per_param: 20                       # the size rule (below)
    total_budgets: [1.0e11, 3.0e11]            # C in FLOPs, full convention, pretraining + RL
    rl_shares: [0, 0.1, 0.25, 0.5]             # f, in [0, 1)
    rl:
      base: configs/rl/arithmetic-cpu.yaml     # the RL recipe (task, sampling, grpo, optimizer, eval)
      set: {grpo.group_size: 8}
    seeds: [0]                                 # train.seed of the pretraining run and seed of its RL run
    set: {train.batch_size: 32}                # pretraining overrides; rules: as in pretrain sweeps

Size rule: the compute-optimal model for a pretraining budget B is the ladder model whose tokens per
parameter D/N, with D = B / (full FLOPs per token) and N its active non-embedding parameters, is
nearest tokens_per_param in log (Chinchilla's ~20). A ladder of one model is a fixed size; then the
rule may be left out.

Every pipeline (C, f) is one pretraining run plus one run of kind rlvr started from it: the runs are
ordinary registry rows and run directories. Pipelines with one pretraining budget (1 - f)·C, such as
(C, 0.5) and (C/2, 0), share one pretraining run: same config, same run id, trained once. RL runs have
budget.flops = f·C (the loop stops once its cumulative full-convention FLOPs reach it, so it overshoots
by less than one step); a share whose f·C is below one full-length RL step is refused. f = 0 is an
eval-only RL run (budget.steps = 0): the pretrained model scored by the RL recipe's own evaluation
(greedy pass@1 on the same held-out problems), so every share is measured the same way. f = 1 leaves
nothing to start RL from and is refused. RL runs wait for their pretraining run (`depends_on`).

The RL rows carry the pipeline: `split_budget` (C) and `split_share` (f); `scaling fit split SWEEP_DIR`
reads them with the realized total (pretraining + RL FLOPs) and realized share.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from scaling.config.base import StrictModel, read_yaml, validate
from scaling.errors import UserError
from scaling.sweep.plan import Plan, PlannedRun, set_dotted, short_number
from scaling.sweep.rlvr import OWNED_KEYS, RLPlannedRun
from scaling.sweep.spec import SweepSpecBase, check_grid_values, find_file

ROUNDING_WARN = 0.05  # a pretraining run this far from its (1 - f)·C at whole steps is worth a warning


class RLRecipe(StrictModel):
    base: str | dict[str, Any] = Field(..., description="RL YAML path or an RLConfig mapping")
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set", description="dotted.key: value")

    @field_validator("overrides")
    @classmethod
    def _not_owned(cls, v):
        for key in v:
            if key.split(".")[0] in OWNED_KEYS:
                raise ValueError(f"{key}: set by the split sweep itself (the pipeline's budget, seed and init)")
        return v


class SplitSweepSpec(SweepSpecBase):
    """Split sweeps: total budgets x RL shares, each a pretraining run and an RL run."""

    design: str = Field("split", description="split sweeps have one design: every (C, f) pipeline")
    models: list[str | dict[str, Any]] = Field(..., description="the model ladder")
    tokens_per_param: float | None = Field(None, gt=0, description="size rule: the model with D/N nearest this")
    total_budgets: list[float] = Field(..., description="total compute C per pipeline, FLOPs (full convention)")
    rl_shares: list[float] = Field(..., description="RL share f of C, in [0, 1)")
    rl: RLRecipe

    @property
    def flop_convention(self) -> str:  # what pretrain._run_dict reads: budgets here are full-convention
        return "full"

    @field_validator("total_budgets")
    @classmethod
    def _budgets(cls, v):
        return check_grid_values(v)

    @field_validator("rl_shares")
    @classmethod
    def _shares(cls, v):
        if not v or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct shares")
        if any(f >= 1 for f in v):
            raise ValueError(f"a share of {max(v):g} leaves no pretraining compute and no model to start RL from; "
                             "list shares in [0, 1)")
        if any(f < 0 for f in v):
            raise ValueError(f"the shares are fractions in [0, 1), got {min(v):g}")
        return v

    @model_validator(mode="after")
    def _split_fields(self):
        if not self.models:
            raise ValueError("models: list at least one model")
        if self.swept:
            raise ValueError("sweep: not supported by split sweeps (their grid is total_budgets x rl_shares)")
        if len(self.models) > 1 and self.tokens_per_param is None:
            raise ValueError("tokens_per_param: a ladder of several models needs the size rule (the model "
                             "whose D/N is nearest tokens_per_param is trained at each pretraining budget)")
        return self

    def inline_refs(self, data: dict[str, Any], path: Path | None) -> None:
        """What sweep.yaml records: the RL recipe inlined, like the pretraining base."""
        data["rl"]["base"] = rl_base(self, path)


def rl_base(spec: SplitSweepSpec, path: Path | None) -> dict[str, Any]:
    if isinstance(spec.rl.base, dict):
        return copy.deepcopy(spec.rl.base)
    try:
        return read_yaml(find_file(spec.rl.base, path))
    except UserError as e:
        raise UserError(f"rl.{e}") from None


def _key(x: float) -> float:
    """(1 - f)·C computed for two pipelines is one budget up to rounding: 12 significant digits."""
    return float(f"{x:.12g}")


@dataclass
class SplitRLRun(RLPlannedRun):
    """The RL run (or, at f = 0, the eval-only run) closing one pipeline (C, f)."""

    total_budget: float = 0.0
    share: float = 0.0

    @property
    def tag(self) -> str:
        return f"C{short_number(self.total_budget)}-f{self.share:g}"

    @property
    def name(self) -> str:
        return f"{self.model}-{self.tag}-{self.run_id}"

    def registry_row(self) -> dict[str, Any]:
        return {**super().registry_row(), "split_budget": self.total_budget, "split_share": self.share}


def compute_optimal(ladder: list[tuple], budget: float, ratio: float | None) -> tuple:
    """The ladder entry whose D/N at `budget` is nearest `ratio` in log (the only entry if one)."""
    if ratio is None:
        return ladder[0]
    return min(ladder, key=lambda m: abs(math.log(budget / m[3] / m[2].n_active_nonembedding / ratio)))


def _ladder(spec: SplitSweepSpec, path: Path | None, base: dict, seed: int | None) -> list[tuple]:
    """(label, run dict, counts, full FLOPs per token, where) per ladder model."""
    from scaling.config.run import RunConfig
    from scaling.model.accounting import count_model
    from scaling.sweep.pretrain import _run_dict, resolved_models

    src = str(path) if path else "sweep"
    out = []
    for index, (label, fields) in enumerate(resolved_models(spec, src)):
        data = _run_dict(spec, base, fields, {}, seed, "split")
        where = f"{src}: models[{index}] ({label})"
        probe = validate(RunConfig, data, source=where)
        counts = count_model(probe.model, probe.train.seq_len)
        out.append((label, data, counts, counts.train_flops_per_token("full"), where))
    return out


def _pretraining(spec: SplitSweepSpec, path: Path | None) -> dict[tuple, PlannedRun]:
    """The pretraining run of every (seed, (1 - f)·C), chosen by the size rule."""
    from scaling.sweep.pretrain import _cell
    from scaling.sweep.spec import resolve_base

    base = resolve_base(spec, path)
    out: dict[tuple, PlannedRun] = {}
    by_id: dict[str, PlannedRun] = {}
    for seed in spec.seeds or [None]:
        ladder = _ladder(spec, path, base, seed)
        for budget in sorted({_key((1 - f) * C) for C in spec.total_budgets for f in spec.rl_shares}):
            label, data, counts, per_token, where = compute_optimal(ladder, budget, spec.tokens_per_param)
            try:
                run = _cell(spec, data, label, counts, budget / per_token, budget, per_token, "split", where, {})
            except UserError as e:
                why = str(e).removeprefix("budgets: ")
                raise UserError(f"total_budgets x rl_shares: the pretraining budget (1 - f)·C = {why}") from None
            # Two budgets that round to the same whole steps are one run (same id): planned once, under the
            # first name, so every RL run's init_run names the directory that is trained.
            out[(seed, budget)] = by_id.setdefault(run.run_id, run)
    return out


def _rl_run(spec, path, rl_data, pre: PlannedRun, C: float, f: float, seed: int | None, checked: set) -> SplitRLRun:
    import numpy as np

    from scaling.config.rl import RLConfig
    from scaling.data import get_tokenizer
    from scaling.model.accounting import count_model
    from scaling.rl.compute import step_flops
    from scaling.rl.tasks import get_task
    from scaling.rl.validate import check_task_fits_model

    data = copy.deepcopy(rl_data)
    data["init_run"] = pre.run_dir  # relative to the sweep dir, where runs are launched: ids survive a move
    data["budget"] = {"flops": f * C} if f > 0 else {"steps": 0}
    if seed is not None:
        data["seed"] = seed
    where = f"{path or 'sweep'}: C={short_number(C)} f={f:g}"
    cfg = validate(RLConfig, data, source=where)
    grpo = cfg.grpo
    fit_key = (pre.model, cfg.task.model_dump_json(), grpo.max_prompt_tokens)
    if fit_key not in checked:  # a task the model cannot read fails here, before anything runs
        try:
            check_task_fits_model(get_task(cfg.task.name, **cfg.task.params), get_tokenizer(pre.config.data),
                                  pre.config, grpo.max_prompt_tokens)
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        checked.add(fit_key)
    counts = count_model(pre.config.model, grpo.max_prompt_tokens + cfg.sampling.max_new)
    n = grpo.prompts_per_step * grpo.group_size
    full_step = step_flops(counts, grpo, np.full(n, grpo.max_prompt_tokens), np.full(n, cfg.sampling.max_new))["total"]
    if 0 < f * C < full_step:
        raise UserError(f"rl_shares: {f:g} of C={short_number(C)} is {f * C:.3g} RL FLOPs, less than one RL step of "
                        f"{pre.model} ({full_step:.3g} FLOPs at full-length completions); raise the budget or share")
    return SplitRLRun(kind="rlvr", design="split", model=pre.model, config=cfg, counts=counts, tokens=0,
                      steps=math.ceil(f * C / full_step), budget=f * C if f > 0 else None, grid_tokens=None,
                      seed=cfg.seed, depends_on=pre.run_id, init_dir=pre.run_dir, init_label=pre.model,
                      init_flops=pre.flops_full, planned_flops=f * C, total_budget=C, share=f)


def expand_split(spec: SplitSweepSpec, path: Path | None) -> Plan:
    pretraining = _pretraining(spec, path)
    rl_data = rl_base(spec, path)
    for key, value in spec.rl.overrides.items():
        set_dotted(rl_data, key, value, f"rl.set.{key}")
    runs: dict[str, PlannedRun] = {}
    rl_runs: list[SplitRLRun] = []
    checked: set = set()
    for seed in spec.seeds or [None]:
        for C in sorted(spec.total_budgets):
            for f in sorted(spec.rl_shares):
                pre = pretraining[(seed, _key((1 - f) * C))]
                runs.setdefault(pre.run_id, pre)  # a pretraining run shared by pipelines is planned once
                rl_runs.append(_rl_run(spec, path, rl_data, pre, C, f, seed, checked))
    pre_runs = sorted(runs.values(), key=lambda r: (r.budget, r.seed))
    # Whole optimizer steps: a pretraining run spends its budget to within half a step of tokens.
    off = [r for r in pre_runs if abs(r.flops_full / r.budget - 1) > ROUNDING_WARN]
    warnings = [f"{len(off)} pretraining runs miss their (1 - f)·C by more than {ROUNDING_WARN:.0%} at whole steps "
                f"(e.g. {off[0].name}: {off[0].flops_full:.3g} FLOPs for {off[0].budget:.3g}); `scaling fit split` "
                "uses the FLOPs as run, but a smaller train.batch_size keeps shares nearer the grid"] if off else []
    pipelines, evals = len(rl_runs), sum(r.share == 0 for r in rl_runs)
    seeds = f" x {len(spec.seeds)} seeds" if spec.seeds and len(spec.seeds) > 1 else ""
    rule = f"D/N nearest {spec.tokens_per_param:g}" if spec.tokens_per_param else f"the one model {pre_runs[0].model}"
    note = (f"split: {pipelines} pipelines ({len(spec.total_budgets)} budgets x {len(spec.rl_shares)} shares{seeds}): "
            f"{len(pre_runs)} pretraining runs ({pipelines - len(pre_runs)} pipelines reuse another's), "
            f"{pipelines - evals} RL runs, {evals} eval-only runs at f=0; sizes by {rule}")
    return Plan(pre_runs + rl_runs, warnings=warnings, notes=[note])

