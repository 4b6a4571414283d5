"""W&B logging of a run's metrics records (the optional `wandb` extra).

The W&B run id is the run's own id (config/identity.py), with resume="allow", so a resumed run continues
its W&B run instead of starting a second one. Records W&B already has (a resume replays the steps after
the last checkpoint) are dropped by W&B itself, as it ignores steps below its current one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scaling.config.identity import run_id
from scaling.config.tracking import WandbConfig
from scaling.errors import UserError


def sweep_group(run_dir: Path) -> str | None:
    """A run of a sweep lives in SWEEP_DIR/runs/NAME beside the sweep's registry: its group is the sweep."""
    sweep_dir = run_dir.resolve().parent.parent
    return sweep_dir.name if run_dir.resolve().parent.name == "runs" and (sweep_dir / "registry.sqlite").exists() \
        else None


class WandbRun:
    def __init__(self, cfg: WandbConfig, run_dir: Path, config: dict[str, Any], where: str):
        try:
            import wandb
        except ImportError:
            raise UserError(f"{where}: W&B logging needs the wandb package (pip install 'scaling[wandb]')") from None
        os.environ.setdefault("WANDB_SILENT", "true")  # W&B's banners would interleave with progress lines
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, group=cfg.group or sweep_group(run_dir), name=run_dir.name,
            id=run_id(config), resume="allow", config=config, tags=cfg.tags, mode=cfg.mode, dir=str(run_dir),
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log(self, record: dict[str, Any]) -> None:
        scalars = {k: v for k, v in record.items()
                   if isinstance(v, (int, float)) and v is not None and k not in ("step", "time")}
        self.run.log(scalars, step=int(record["step"]))

    def close(self) -> None:
        self.run.finish()
