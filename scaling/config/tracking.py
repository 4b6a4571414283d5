"""Typed config of the optional Weights & Biases logging (`train.wandb:` / RL `wandb:`).

How a run is tracked is operational (config/identity.py): turning W&B on or off never changes a run's id.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from scaling.config.base import StrictModel


class WandbConfig(StrictModel):
    """Log every metrics record to a W&B project; a sweep's runs are grouped under the sweep's name."""

    project: str = Field(..., min_length=1)
    entity: str | None = None
    group: str | None = Field(None, description="default: the sweep directory's name for runs of a sweep")
    mode: Literal["online", "offline"] = "online"  # offline: logged under RUN_DIR/wandb, `wandb sync` later
    tags: list[str] = Field(default_factory=list)
