"""The run directory contract: config.yaml (resolved), metrics.jsonl, summary.json, checkpoints/.

Re-running the same command on the same directory resumes it; a directory that holds a *different*
run is refused (nothing is overwritten), because mixing two runs' checkpoints would be silent
corruption of a scaling study. "Different" is judged on the run's identity (config/identity.py):
a resume with other operational settings (TensorBoard, cadence, mesh) continues the same run and
config.yaml records the settings it now runs with. Its writer holds an flock on RUN_DIR/.lock for as long as it runs.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

import yaml

from scaling.config.identity import identity
from scaling.errors import UserError
from scaling.files import first_difference, write_atomic
from scaling.locks import RUN_DIR_LOCK, DirectoryLock
from scaling.outputs import check_writable_dir

LOCK_FILE = RUN_DIR_LOCK  # one writer per run directory: a second `scaling train` on it is refused
_HELD: dict[str, DirectoryLock] = {}


def config_dict(cfg) -> dict:
    return cfg.model_dump(mode="json")


def claim_run_dir(run_dir: Path, cfg) -> bool:
    """Create or validate RUN_DIR for this config and take its writer lock (held until the function
    decorated with `holds_run_dir_locks` returns). Returns True if it already held this run."""
    resolved = config_dict(cfg)
    _check_claim(run_dir, resolved)  # refuse before creating anything
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        key = str(run_dir.resolve())
        if key not in _HELD:  # a process may claim again what it holds (a resume in the same process)
            _HELD[key] = DirectoryLock(run_dir, LOCK_FILE, busy=f"--out {run_dir}: another process is writing "
                                       "this run directory").acquire()
        existing = _check_claim(run_dir, resolved)  # checked again under the lock: two first runs may race
        if existing == resolved:
            return True
        write_atomic(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    except OSError as e:
        raise UserError(f"--out {run_dir}: cannot write the run directory ({e.strerror or e})") from None
    return existing is not None


def check_run_dir(run_dir: Path, cfg) -> bool:
    """What claim_run_dir would refuse, refused without writing anything; True if RUN_DIR holds this run."""
    return _check_claim(run_dir, config_dict(cfg)) is not None


def _check_claim(run_dir: Path, resolved: dict) -> dict | None:
    """RUN_DIR's recorded config if it holds this run (same identity), None if it is new or empty; refuses
    anything else."""
    path = run_dir / "config.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir}: exists and is not a directory")
    if path.exists():
        recorded = _read_config(run_dir)
        if identity(recorded) != identity(resolved):
            diff = first_difference(identity(recorded), identity(resolved))
            raise UserError(f"--out {run_dir}: holds a different run (config differs at {diff}); "
                            "use another directory")
        return recorded
    if run_dir.is_dir() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise UserError(f"--out {run_dir}: is not empty and holds no run config; use another directory")
    check_writable_dir(run_dir, "--out")
    return None


def _read_config(run_dir: Path) -> dict:
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        config = None
    if not isinstance(config, dict):
        raise UserError(f"--out {run_dir}: its config.yaml is unreadable; use another directory")
    return config


def holds_run_dir_locks(fn: Callable) -> Callable:
    """Release the run-directory locks `fn` took (claim_run_dir) when it returns or raises."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = set(_HELD)
        try:
            return fn(*args, **kwargs)
        finally:
            for key in set(_HELD) - before:
                _HELD.pop(key).release()
    return wrapper


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
