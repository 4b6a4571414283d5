"""Sweep file -> validated spec -> plan (the list of runs). Nothing here writes to disk.

`kind:` picks the schema and `design:` the expander, both from the table in kinds.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from scaling.config.base import parse_override, read_yaml, validate
from scaling.errors import UserError
from scaling.sweep.kinds import get_design, get_kind
from scaling.sweep.plan import Plan
from scaling.sweep.spec import SweepSpecBase


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpecBase:
    """The sweep file; `overrides` (`--set KEY=VALUE`) join its `set:` mapping, applied to every run."""
    path = Path(path)
    data = read_yaml(path)
    if overrides:
        data["set"] = {**(data.get("set") or {}), **dict(parse_override(item) for item in overrides)}
    return spec_from_dict(data, source=str(path))


def spec_from_dict(data: dict[str, Any], source: str = "sweep") -> SweepSpecBase:
    kind_name = data.get("kind", "pretrain")
    if not isinstance(kind_name, str):
        raise UserError(f"{source}: kind: expected a string")
    try:
        kind = get_kind(kind_name)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    return validate(kind.spec_cls, data, source=source)


def expand(spec: SweepSpecBase, path: str | Path | None = None) -> Plan:
    """The runs of a sweep, in scheduling order (a wsd_forks trunk before its branches)."""
    design = get_design(get_kind(spec.kind), getattr(spec, "design", None))
    try:
        plan = design(spec, Path(path) if path else None)
    except UserError as e:
        if path and not str(e).startswith(str(path)):
            raise UserError(f"{path}: {e}") from None
        raise
    if not plan.runs:
        raise UserError(f"{path or 'sweep'}: empty grid: the sweep expands to no runs")
    ids = [r.run_id for r in plan.runs]
    if len(set(ids)) != len(ids):
        dup = next(r for r in plan.runs if ids.count(r.run_id) > 1)
        raise UserError(f"{path or 'sweep'}: {dup.name} appears twice in the grid "
                        "(two entries resolve to the same run)")
    return plan


def resolved_spec(spec: SweepSpecBase, path: str | Path | None) -> dict[str, Any]:
    """The spec with its base recipe and models inlined: what `sweep.yaml` records and compares."""
    from scaling.config.run import resolve_model
    from scaling.sweep.spec import resolve_base

    data = spec.model_dump(mode="json", by_alias=True)
    data["base"] = resolve_base(spec, Path(path) if path else None)
    if "models" in data:
        data["models"] = [resolve_model(m, f"models[{i}]") for i, m in enumerate(data["models"])]
    if hasattr(spec, "inline_refs"):  # a kind with references of its own (a split sweep's RL recipe)
        spec.inline_refs(data, Path(path) if path else None)
    return data
