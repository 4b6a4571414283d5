"""The run directory contract: config.yaml (resolved), metrics.jsonl, summary.json, checkpoints/.

Re-running the same command on the same directory resumes it; a directory that holds a *different*
config is refused (nothing is overwritten), because mixing two runs' checkpoints would be silent
corruption of a scaling study.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from scaling.errors import UserError
from scaling.files import first_difference, write_atomic


def config_dict(cfg) -> dict:
    return cfg.model_dump(mode="json")


def claim_run_dir(run_dir: Path, cfg) -> bool:
    """Create or validate RUN_DIR for this config. Returns True if it already held this run."""
    resolved = config_dict(cfg)
    path = run_dir / "config.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir}: exists and is not a directory")
    if path.exists():
        existing = yaml.safe_load(path.read_text())
        if existing != resolved:
            diff = first_difference(existing, resolved)
            raise UserError(f"--out {run_dir}: holds a different run (config differs at {diff}); "
                            "use another directory")
        return True
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"--out {run_dir}: is not empty and holds no run config; use another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(resolved, sort_keys=False))
    return False


def read_summary(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_summary(run_dir: Path, summary: dict) -> None:
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=1))
