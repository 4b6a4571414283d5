"""The sweep directory: claimed by one sweep (its resolved file in sweep.yaml), locked by one submitter.

    SWEEP_DIR/sweep.yaml        the submitted sweep, resolved (base recipe and models inlined)
    SWEEP_DIR/registry.sqlite   one row per run (see registry.py)
    SWEEP_DIR/configs/NAME.yaml the resolved run config handed to the trainer
    SWEEP_DIR/runs/NAME/        the trainer's run directory
    SWEEP_DIR/logs/NAME.log     the trainer's stdout and stderr, all attempts
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import yaml

from scaling.errors import UserError
from scaling.locks import DirectoryLock
from scaling.files import first_difference, write_atomic
from scaling.sweep.plan import canonical_json

SWEEP_FILE = "sweep.yaml"
LOCK_FILE = ".submit.lock"


def check_claim(sweep_dir: Path, resolved: dict[str, Any]) -> bool:
    """True if `sweep_dir` already holds this sweep, False if it is new/empty; refuses anything else."""
    existing = sweep_dir / SWEEP_FILE
    if existing.is_file():
        try:
            held = yaml.safe_load(existing.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            raise UserError(f"--out {sweep_dir}: {SWEEP_FILE} is unreadable; choose a new --out") from None
        if canonical_json(held) != canonical_json(resolved):
            key = first_difference(held or {}, resolved)
            raise UserError(f"--out {sweep_dir}: holds a different sweep ({key} differs); "
                            "submit it to a new --out (nothing was changed)")
        return True
    if sweep_dir.exists() and (not sweep_dir.is_dir() or any(p.name != LOCK_FILE for p in sweep_dir.iterdir())):
        raise UserError(f"--out {sweep_dir}: exists and is not a sweep directory (no {SWEEP_FILE})")
    return False


@contextlib.contextmanager
def claimed(sweep_dir: Path, resolved: dict[str, Any], source: str) -> Iterator[None]:
    """Create or reopen the sweep dir and hold its submit lock (released even on SIGKILL: it is an flock)."""
    check_claim(sweep_dir, resolved)  # refuse before creating anything
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {sweep_dir}: cannot create the sweep directory ({e.strerror})") from None
    with DirectoryLock(sweep_dir, LOCK_FILE, busy=f"--out {sweep_dir}: another submit is running on it"):
        if not check_claim(sweep_dir, resolved):  # checked again under the lock: two first submits may race
            header = (f"# The sweep submitted from {source}, resolved. Re-submitting a different sweep to this\n"
                      "# directory is refused; submitting this one again resumes it.\n")
            write_atomic(sweep_dir / SWEEP_FILE, header + yaml.safe_dump(resolved, sort_keys=False))
        yield
