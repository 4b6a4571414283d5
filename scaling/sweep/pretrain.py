"""Pretraining sweeps: the grid, isoflop and wsd_forks designs.

Every design starts from the same cells: base recipe + `set:` + one combination of `sweep:` values
+ one model + one seed, then one budget (or token count). Per-size `rules:` are evaluated once the
model's parameter counts and the run's budget are known. Token counts are rounded to a whole number
of optimizer steps, so what the trainer runs is exactly what the registry records.
"""
from __future__ import annotations

import copy
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

from scaling.config.base import validate
from scaling.config.run import RunConfig, resolve_model
from scaling.errors import UserError
from scaling.model.accounting import count_model
from scaling.sweep.plan import Plan, PlannedRun, canonical_json, set_dotted, short_number, with_fields
from scaling.sweep.rules import evaluate
from scaling.sweep.spec import PretrainSweepSpec, resolve_base

MIN_MODELS_PER_BUDGET = 3  # fewer points than this cannot locate an isoFLOP minimum
WARN_MODELS_PER_BUDGET = 5


def resolved_models(spec: PretrainSweepSpec, src: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, model fields) per entry of `models:`; labels name run directories, so they must be distinct."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i, ref in enumerate(spec.models):
        try:
            fields = copy.deepcopy(resolve_model(ref, f"models[{i}]"))
        except UserError as e:
            raise UserError(f"{src}: models[{i}]: {str(e).removeprefix('model: ')}") from None
        label = str(fields.get("name") or "custom")
        if label == "custom":
            label = f"D{fields.get('D')}-L{fields.get('L')}"
        if any(label == seen for seen, _ in out):
            raise UserError(f"{src}: models[{i}]: two models are named {label!r}; give each a distinct `name:`")
        out.append((label, fields))
    return out


def cells(spec: PretrainSweepSpec, path: Path | None, design: str,
          keep: Callable[[float], bool] | None = None) -> Iterator[PlannedRun]:
    """Every run of models × swept values × seeds × budgets; `keep(D/N)` filters by tokens per parameter."""
    src = str(path) if path else "sweep"
    base = resolve_base(spec, path)
    keys = list(spec.swept)
    for index, (label, model_fields) in enumerate(resolved_models(spec, src)):
        for combo in itertools.product(*(spec.swept[k] for k in keys)):
            swept = dict(zip(keys, combo))
            for seed in spec.seeds or [None]:
                data = _run_dict(spec, base, model_fields, swept, seed, design)
                where = f"{src}: models[{index}] ({label})"
                probe = validate(RunConfig, data, source=where)
                counts = count_model(probe.model, probe.train.seq_len)
                per_token = counts.train_flops_per_token(spec.flop_convention)
                for value in spec.budgets or spec.tokens:
                    budget = value if spec.budgets else None
                    nominal = value / per_token if spec.budgets else value
                    if keep and not keep(nominal / counts.n_active_nonembedding):
                        continue
                    run = _cell(spec, data, label, counts, nominal, budget, per_token, design, where, swept)
                    yield run


def _run_dict(spec, base, model_fields, swept, seed, design) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data["model"] = copy.deepcopy(model_fields)
    for key, value in spec.overrides.items():
        set_dotted(data, key, value, f"set.{key}")
    for key, value in swept.items():
        set_dotted(data, key, value, f"sweep.{key}")
    train = data.setdefault("train", {})
    if not isinstance(train, dict):
        raise UserError("base: train must be a mapping")
    train.pop("flops", None)
    train["tokens"] = 1  # placeholder until the budget is known; validation needs exactly one of tokens/flops
    train["flop_convention"] = spec.flop_convention
    if seed is not None:
        train["seed"] = seed
    if design == "wsd_forks":
        set_dotted(data, "optimizer.schedule", "wsd", "optimizer.schedule")
    return data


def _cell(spec, data, label, counts, nominal, budget, per_token, design, where, swept) -> PlannedRun:
    cfg = validate(RunConfig, data, source=where)
    symbols = {"D": cfg.model.D, "L": cfg.model.L, "H": cfg.model.H, "F": cfg.model.F, "V": cfg.model.V,
               "N": counts.n_nonembedding, "N_active": counts.n_active_nonembedding,
               "C": budget if budget is not None else per_token * nominal, "tokens": nominal,
               "seq_len": cfg.train.seq_len}
    if spec.rules:
        data = copy.deepcopy(data)
        for key, expr in spec.rules.items():
            set_dotted(data, key, evaluate(expr, symbols, f"rules.{key}"), f"rules.{key}")
        cfg = validate(RunConfig, data, source=f"{where} after rules")
    batch_tokens = cfg.train.batch_tokens
    steps = round(nominal / batch_tokens)
    if steps < 1:
        what = f"budgets: {short_number(budget)} FLOPs" if budget is not None else f"tokens: {short_number(nominal)}"
        raise UserError(f"{what} gives {label} only {nominal:.3g} tokens, fewer than one step of "
                        f"{batch_tokens} tokens (train.batch_size x train.seq_len)")
    cfg = with_fields(cfg, "train", tokens=steps * batch_tokens)
    return PlannedRun(kind="pretrain", design=design, model=label, config=cfg, counts=counts,
                      tokens=steps * batch_tokens, steps=steps, budget=budget,
                      grid_tokens=None if budget is not None else nominal, seed=cfg.train.seed, swept=swept)


def expand_grid(spec: PretrainSweepSpec, path: Path | None) -> Plan:
    runs = list(cells(spec, path, "grid"))
    return Plan(sorted(runs, key=lambda r: (r.budget or r.grid_tokens, r.n, r.model, r.seed)))


def expand_isoflop(spec: PretrainSweepSpec, path: Path | None) -> Plan:
    lo, hi = spec.tokens_per_param
    runs = list(cells(spec, path, "isoflop", keep=lambda tpp: lo <= tpp <= hi))
    groups: dict[tuple, list[PlannedRun]] = defaultdict(list)
    for run in runs:
        groups[(run.budget, run.seed, canonical_json(run.swept))].append(run)
    # Every (budget, seed, swept values) combination is its own isoFLOP curve and needs its own points.
    seeds = spec.seeds or sorted({r.seed for r in runs}) or [0]
    combos = [canonical_json(dict(zip(spec.swept, c))) for c in itertools.product(*spec.swept.values())]
    warnings = []
    for budget in spec.budgets:
        members = min((groups[(budget, s, c)] for s in seeds for c in combos), key=len)
        names = ", ".join(r.model for r in members) or "none"
        if len(members) < MIN_MODELS_PER_BUDGET:
            raise UserError(f"budgets: {short_number(budget)} FLOPs has only {len(members)} models with tokens per "
                            f"parameter in [{lo:g}, {hi:g}] ({names}); an isoFLOP curve needs at least "
                            f"{MIN_MODELS_PER_BUDGET}: widen tokens_per_param or add models")
        if len(members) < WARN_MODELS_PER_BUDGET:
            warnings.append(f"budget {short_number(budget)} FLOPs: only {len(members)} models ({names}); "
                            f"{WARN_MODELS_PER_BUDGET}+ give a better-determined minimum")
    return Plan(sorted(runs, key=lambda r: (r.budget, r.n, r.seed)), warnings=warnings)


def expand_wsd_forks(spec: PretrainSweepSpec, path: Path | None) -> Plan:
    from scaling.sweep.wsd import fork_branches

    return fork_branches(list(cells(spec, path, "wsd_forks")))
