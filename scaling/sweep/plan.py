"""A planned run: one fully resolved run config plus what the registry and the scheduler need.

Run identity (scaling/config/identity.py): the id is 12 hex characters of the sha256 of the canonical
resolved config less its operational settings, so the same sweep file always yields the same ids and a
run is never trained twice under two names.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from scaling.config.base import set_dotted  # noqa: F401 - re-exported for the sweep kinds
from scaling.config.identity import canonical_json, run_id
from scaling.config.run import RunConfig
from scaling.model.accounting import ModelCounts
from scaling.outputs import check_path_component


def run_id_of(cfg: RunConfig) -> str:
    return run_id(cfg.model_dump(mode="json"))


def short_number(x: float) -> str:
    """3e11 -> '3e11', 1.25e6 -> '1.25e6', 500 -> '500': compact and filesystem-safe."""
    text = f"{x:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def with_fields(cfg: RunConfig, section: str, **fields: Any) -> RunConfig:
    """A copy of `cfg` with `section.field = value`, re-validated (so nested values get their types)."""
    data = cfg.model_dump()
    data[section] = {**data[section], **fields}
    return type(cfg).model_validate(data)


@dataclass
class PlannedRun:
    kind: str
    design: str
    model: str  # ladder name (or the label of an inline model)
    config: RunConfig
    counts: ModelCounts
    tokens: int
    steps: int
    budget: float | None  # nominal grid budget C (None for token grids)
    grid_tokens: float | None  # the token count as listed in the sweep file (None for FLOP grids)
    seed: int
    swept: dict[str, Any] = field(default_factory=dict)
    role: str | None = None  # wsd_forks: 'trunk' or 'branch'
    depends_on: str | None = None  # run id that must be done first (a branch's trunk)
    fork_step: int | None = None
    run_id: str = ""

    def __post_init__(self):
        self.run_id = self.run_id or run_id_of(self.config)
        check_path_component(self.model, "model name")  # it names the run's files: no `../` escapes --out

    @property
    def flop_convention(self) -> str:
        return self.config.train.flop_convention

    @property
    def flops_6n(self) -> float:
        return self.counts.train_flops_per_token_6n * self.tokens

    @property
    def flops_full(self) -> float:
        return self.counts.train_flops_per_token_full * self.tokens

    @property
    def flops(self) -> float:
        return self.flops_6n if self.flop_convention == "6n" else self.flops_full

    @property
    def n(self) -> int:
        """The N of C = 6ND: active non-embedding parameters."""
        return self.counts.n_active_nonembedding

    @property
    def tag(self) -> str:
        return f"C{short_number(self.budget)}" if self.budget is not None else f"D{short_number(self.grid_tokens)}"

    @property
    def name(self) -> str:
        return f"{self.model}-{self.tag}-{self.run_id}"

    @property
    def run_dir(self) -> str:
        """Relative to the sweep directory (runs are launched there), so a sweep dir can be moved."""
        return f"runs/{self.name}"

    @functools.cached_property
    def shape_key(self) -> str:
        """Equal for runs that share a sweep worker's compiled programs (same kind, model, optimizer, mesh and
        batch shape; other budgets, seeds or data reuse them), so the scheduler can hand them to one worker."""
        config = self.config.model_dump(mode="json")
        train = config.get("train") or {}
        shape = {k: config.get(k) for k in ("model", "optimizer", "mesh")} | {
            k: train.get(k) for k in ("batch_size", "seq_len", "grad_accum")}
        return canonical_json({"kind": self.kind, **shape})

    @property
    def trained_steps(self) -> int:
        """Steps this run itself trains (a forked branch starts at its fork step)."""
        return self.steps - (self.fork_step or 0)

    @property
    def flops_to_train(self) -> float:
        """Full-convention FLOPs this run itself trains (0 for an eval-only RL run of 0 steps)."""
        return self.flops_full * self.trained_steps / max(self.steps, 1)

    def registry_row(self) -> dict[str, Any]:
        """The registry columns known before training (the trainer's summary fills in the rest)."""
        c = self.counts
        return {
            "run_id": self.run_id, "name": self.name, "kind": self.kind, "design": self.design, "status": "pending",
            "model": self.model, "run_dir": self.run_dir,
            "config_json": canonical_json(self.config.model_dump(mode="json")),
            "n_params": c.n_params, "n_params_nonembedding": c.n_nonembedding, "n_params_active": c.n_active,
            "n_params_active_nonembedding": c.n_active_nonembedding, "tokens": self.tokens, "steps": self.steps,
            "flops": self.flops, "flops_6n": self.flops_6n, "flops_full": self.flops_full,
            "flop_convention": self.flop_convention, "budget": self.budget, "seed": self.seed,
            "swept_json": canonical_json(self.swept) if self.swept else None, "role": self.role,
            "fork_of": self.depends_on, "fork_step": self.fork_step, "attempts": 0,
        }


@dataclass
class Plan:
    """The runs of a sweep in scheduling order, plus lines to show the user at submit time."""

    runs: list[PlannedRun]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
