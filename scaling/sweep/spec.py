"""The sweep file: which runs (base recipe × models × budgets × seeds × swept fields), on which design.

A sweep file is validated like a run config (unknown keys and bad values are one-line UserErrors
naming the field). `kind:` picks the schema and the expanders (see `kinds.py`); this module holds
what every kind shares and the pretraining schema. Example:

    kind: pretrain
    design: isoflop                 # grid | isoflop | wsd_forks
    base: configs/train/cpu-tiny.yaml
    models: [dense-100k, dense-300k, {base: dense-1m, name: dense-1m-wide, F: 512}]
    budgets: [3e11, 1e12]           # FLOPs (or `tokens:` for grid / wsd_forks)
    flop_convention: 6n
    tokens_per_param: [2, 200]      # isoflop: keep models whose D/N falls in this range
    seeds: [0]
    set: {train.seq_len: 128}
    sweep: {optimizer.weight_decay: [0.0, 0.1]}
    rules: {optimizer.lr: "0.003 * (256 / D) ** 0.5"}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from scaling.bundled import BUNDLED
from scaling.config.base import StrictModel, read_yaml
from scaling.errors import UserError
from scaling.sweep.rules import check_rule

# Rules may not touch these: the model is named in `models:` and the budget is the design's job.
RULE_FORBIDDEN_PREFIXES = ("model.", "train.tokens", "train.flops", "train.fork_from", "train.keep_steps")

# Budgets/token counts beyond this are typos (1e30 FLOPs is ~10^4 times the largest runs ever trained);
# left through they expand into runs of ~10^290 steps that no dry run should print as a plan.
MAX_GRID_VALUE = 1e30


def check_grid_values(v):
    """A swept list of budgets/tokens/steps: non-empty, positive, no repeats (None = not given)."""
    if v is None:
        return v
    if not v:
        raise ValueError("empty grid: list at least one value")
    if any(x <= 0 for x in v):
        raise ValueError(f"values must be positive, got {v}")
    if any(x > MAX_GRID_VALUE for x in v):
        raise ValueError(f"{max(v):.3g} is beyond any trainable run (at most {MAX_GRID_VALUE:.0e})")
    if len(set(v)) != len(v):
        raise ValueError(f"lists a value twice: {v}")
    return v

class SweepSpecBase(StrictModel):
    """Fields every kind of sweep has."""

    kind: str = "pretrain"
    name: str | None = Field(None, description="shown in status tables; defaults to the file's stem")
    description: str | None = None
    base: str | dict[str, Any] = Field(..., description="run config recipe: a path to a run YAML, or a mapping")
    seeds: list[int] | None = Field(None, description="train.seed of each replicate; default: the base's seed")
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set",
                                      description="dotted.key: value applied to every run")
    swept: dict[str, list[Any]] = Field(default_factory=dict, alias="sweep",
                                        description="dotted.key: [values], every combination is a run")
    rules: dict[str, Any] = Field(default_factory=dict, description="dotted.key: expression over D, L, H, F, N, ...")

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, v):
        if v is not None and (not v or len(set(v)) != len(v)):
            raise ValueError("must be a non-empty list of distinct seeds")
        return v

    @field_validator("overrides", "swept", "rules")
    @classmethod
    def _dotted_keys(cls, v: dict[str, Any]):
        for key in v:
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"{key!r} is not a dotted key such as optimizer.lr")
        return v

    @field_validator("swept")
    @classmethod
    def _swept_lists(cls, v: dict[str, list[Any]]):
        for key, values in v.items():
            if not values:
                raise ValueError(f"{key}: needs at least one value")
        return v

    @model_validator(mode="after")
    def _check_rules(self):
        for key, expr in self.rules.items():
            if key.startswith(RULE_FORBIDDEN_PREFIXES) or key == "model":
                raise ValueError(f"rules.{key}: rules may not set the model or the budget "
                                 "(name models in `models:`, budgets in `budgets:`/`tokens:`)")
            if key in self.swept or key in self.overrides:
                raise ValueError(f"rules.{key}: also given in `sweep:`/`set:`; state it in one place")
            try:
                check_rule(expr, f"rules.{key}")
            except UserError as e:
                raise ValueError(str(e)) from None
        return self


class PretrainSweepSpec(SweepSpecBase):
    """Pretraining sweeps: models × budgets laid out by a design."""

    design: Literal["grid", "isoflop", "wsd_forks"] = "grid"
    models: list[str | dict[str, Any]] = Field(..., description="ladder names, paths or model mappings")
    budgets: list[float] | None = Field(None, description="compute budgets C in FLOPs")
    tokens: list[float] | None = Field(None, description="token counts D (grid / wsd_forks instead of budgets)")
    flop_convention: Literal["6n", "full"] = "6n"
    tokens_per_param: tuple[float, float] | None = Field(None, description="isoflop: [lo, hi] range of D/N")

    @field_validator("models")
    @classmethod
    def _models_nonempty(cls, v):
        if not v:
            raise ValueError("empty grid: list at least one model")
        return v

    @field_validator("budgets", "tokens")
    @classmethod
    def _positive_distinct(cls, v):
        return check_grid_values(v)

    @field_validator("tokens_per_param")
    @classmethod
    def _range(cls, v):
        if v is not None and not 0 < v[0] < v[1]:
            raise ValueError(f"expected [lo, hi] with 0 < lo < hi, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _design_fields(self):
        if (self.budgets is None) == (self.tokens is None):
            raise ValueError("budgets: give exactly one of budgets (FLOPs) or tokens")
        if self.design == "isoflop":
            if self.budgets is None:
                raise ValueError("budgets: the isoflop design needs FLOP budgets, not tokens")
            if self.tokens_per_param is None:
                raise ValueError("tokens_per_param: the isoflop design needs a [lo, hi] range of D/N")
        elif self.tokens_per_param is not None:
            raise ValueError(f"tokens_per_param: only used by the isoflop design (design is {self.design})")
        return self


def find_file(ref: str, sweep_path: Path | None) -> Path:
    """A path as written, else relative to the sweep file, else a bundled file (configs/train/...)."""
    candidates = [Path(ref)]
    if sweep_path is not None:
        candidates.append(sweep_path.parent / ref)
    candidates.append(BUNDLED / ref)
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"base: no such run config {ref!r}")


def resolve_base(spec: SweepSpecBase, sweep_path: Path | None) -> dict[str, Any]:
    """The base recipe as a plain dict (a path is read; `model:` may be missing, models come later)."""
    if isinstance(spec.base, dict):
        return dict(spec.base)
    return read_yaml(find_file(spec.base, sweep_path))
