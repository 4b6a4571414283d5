"""The run config: one YAML holds a whole recipe (big_vision style): model, data, mesh, optimiser, budget.

`model:` may be inline fields, a ladder name (`dense-1m`, looked up in configs/models/), or a path,
optionally with overrides: `model: {base: dense-1m, D: 192}`. The resolved config (everything inline)
is what gets saved to the run directory and hashed into run ids.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from scaling.bundled import BUNDLED
from scaling.config.base import StrictModel, apply_overrides, read_yaml, validate
from scaling.config.data import DataConfig
from scaling.config.model import MeshConfig, ModelConfig
from scaling.config.tracking import WandbConfig
from scaling.errors import UserError

MODELS_DIR = BUNDLED / "configs" / "models"


class OptimizerConfig(StrictModel):
    """AdamW with decoupled weight decay; norms and embeddings excluded from decay by default."""

    lr: float = Field(3e-3, description="peak learning rate")
    b1: float = Field(0.9, ge=0, lt=1)
    b2: float = Field(0.95, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    decay_norms_and_embeddings: bool = False
    grad_clip: float | None = Field(1.0, gt=0)
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup: float = Field(0.05, ge=0, description="warmup steps; a value < 1 is a fraction of all steps")
    final_lr_fraction: float = Field(0.1, ge=0, le=1, description="lr at the end, as a fraction of peak")
    decay_fraction: float = Field(0.2, gt=0, le=1, description="WSD: share of steps spent in the cooldown")
    decay_shape: Literal["linear", "1-sqrt"] = "1-sqrt"

    @model_validator(mode="after")
    def _check(self):
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr={self.lr} is out of range (0, 1]")
        return self


class ForkFrom(StrictModel):
    """Start from another run's checkpoint (WSD cooldown branches): params, optimizer state, data order."""

    run_dir: str
    step: int = Field(..., ge=1)


class TrainConfig(StrictModel):
    """What to train for and how often to look. Give exactly one of `tokens` or `flops`."""

    tokens: int | None = Field(None, gt=0)
    flops: float | None = Field(None, gt=0)
    flop_convention: Literal["6n", "full"] = "6n"
    seq_len: int = Field(128, ge=2)
    batch_size: int = Field(32, ge=1, description="global batch in sequences (batch tokens = batch_size × seq_len)")
    grad_accum: int = Field(1, ge=1)
    seed: int = 0
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(200, ge=1)
    eval_batches: int = Field(8, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # WSD forks: also keep checkpoints at these steps (stable-phase branch points).
    keep_steps: list[int] = Field(default_factory=list)
    fork_from: ForkFrom | None = None
    diverge_loss: float = Field(20.0, gt=0, description="stop as diverged when train loss exceeds this")
    tensorboard: bool = True  # events in RUN_DIR/tensorboard (`tensorboard --logdir` a run or a sweep)
    wandb: WandbConfig | None = None  # the optional `wandb` extra: log to a W&B project
    progress: bool = True
    # Steps taken per call of the compiled program (a loop on the device over stacked batches): for small models
    # the host's work per step (fetching and sending the batch, dispatch) is a real part of the step. "auto":
    # 16 on one CPU device (1.05-1.4x on the CPU recipes, BENCHMARKS.md), 1 elsewhere (unmeasured there).
    # Logging, evaluation and checkpoints still fall on their steps: a call never runs past one.
    steps_per_call: int | Literal["auto"] = Field("auto", description="steps per compiled call; 'auto' or >= 1")

    @model_validator(mode="after")
    def _check(self):
        if self.steps_per_call != "auto" and self.steps_per_call < 1:
            raise ValueError(f"steps_per_call={self.steps_per_call} must be 'auto' or at least 1")
        if (self.tokens is None) == (self.flops is None):
            raise ValueError("give exactly one of train.tokens or train.flops")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} is not divisible by grad_accum={self.grad_accum}")
        return self

    @property
    def batch_tokens(self) -> int:
        return self.batch_size * self.seq_len


class RunConfig(StrictModel):
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    mesh: MeshConfig = Field(default_factory=MeshConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig

    @model_validator(mode="after")
    def _check(self):
        if self.train.seq_len > self.model.max_seq_len:
            raise ValueError(f"train.seq_len={self.train.seq_len} exceeds model.max_seq_len={self.model.max_seq_len}")
        return self


def resolve_model(ref: Any, source: str = "model") -> dict:
    """A ladder name, a path, a mapping, or a mapping with `base:` -> plain dict of model fields."""
    if isinstance(ref, str):
        return read_yaml(model_path(ref))
    if isinstance(ref, dict) and "base" in ref:
        base = resolve_model(ref["base"], source)
        return {**base, **{k: v for k, v in ref.items() if k != "base"}}
    if isinstance(ref, dict):
        return ref
    raise UserError(f"{source}: expected a model name, path or mapping, got {type(ref).__name__}")


def model_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"model: no such file {name}")
        return path
    candidate = MODELS_DIR / f"{name}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
        raise UserError(f"model: unknown model {name!r} (known: {known})")
    return candidate


def resolve_run_dict(data: dict) -> dict:
    if "model" not in data:
        raise UserError("model: missing (a ladder name such as dense-1m, a path, or a mapping)")
    return {**data, "model": resolve_model(data["model"])}


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a run YAML, resolve `model:`, apply --set overrides (after resolution, so model.D=… works)."""
    data = resolve_run_dict(read_yaml(path))
    data = apply_overrides(data, overrides)
    return validate(RunConfig, data, source=str(path))


def run_config_from_dict(data: dict, source: str = "config") -> RunConfig:
    return validate(RunConfig, resolve_run_dict(data), source=source)


def load_model_config(path: str | Path, overrides: list[str] | None = None) -> ModelConfig:
    """A model YAML, or a run YAML (its `model:` section), for `scaling flops`."""
    data = read_yaml(path) if Path(path).suffix in (".yaml", ".yml") or Path(path).exists() else read_yaml(model_path(str(path)))
    if "model" in data:
        data = resolve_model(data["model"])
        overrides = [o[len("model."):] if o.startswith("model.") else o for o in overrides or []]
    data = apply_overrides(data, overrides)
    return validate(ModelConfig, data, source=str(path))
