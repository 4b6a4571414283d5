"""Is this output path safe to write? One answer for every command that writes a path the user named.

A flag such as `--json`, `--csv` or `--out` must never write over a file the command reads, nor over
a run's or a sweep's own files (its config, metrics, summary, checkpoints, registry, ...): a typo there
would silently destroy a run or make a sweep impossible to resume. Everything here only looks; it is
called before any work starts, so a refused command has written nothing.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from scaling.errors import UserError

# What a run directory and a sweep directory hold (DESIGN.md's contracts, plus their lock files).
RUN_OWN = {"config.yaml", "metrics.jsonl", "summary.json", "checkpoints", "checkpoints-unreadable", "tensorboard",
           "wandb", ".lock"}
SWEEP_OWN = {"sweep.yaml", "registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm",
             "registry.sqlite-journal", "configs", "runs", "logs", ".submit.lock"}

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


def check_path_component(name: str, what: str) -> str:
    """A name that becomes a file or directory name: no separators, no `..`, nothing hidden."""
    if not SAFE_NAME.fullmatch(name) or ".." in name or len(name) > 200:
        raise UserError(f"{what} {name!r}: not usable as a file name (letters, digits and . _ + = - only, "
                        "no '/' or '..'); it names the run's directory")
    return name


def _kind_of(directory: Path) -> str | None:
    if (directory / "registry.sqlite").exists() or (directory / "sweep.yaml").is_file():
        return "sweep"
    if (directory / "config.yaml").is_file() and any((directory / n).exists()
                                                     for n in ("checkpoints", "metrics.jsonl", "summary.json")):
        return "run"
    return None


def owner_of(path: Path) -> tuple[Path, str] | None:
    """The nearest run or sweep directory strictly above `path`, with its kind."""
    for parent in Path(os.path.abspath(path)).parents:
        kind = _kind_of(parent)
        if kind:
            return parent, kind
    return None


def _refuse_owned(path: Path, flag: str) -> None:
    found = owner_of(path)
    if found is None:
        return
    owner, kind = found
    first = Path(os.path.abspath(path)).relative_to(owner).parts[0]
    if first in (RUN_OWN if kind == "run" else SWEEP_OWN):
        raise UserError(f"{flag} {path}: is part of the {kind} directory {owner} ({first}); write elsewhere "
                        "(nothing was changed)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_parent_writable(path: Path, flag: str) -> None:
    """The nearest existing ancestor must be a directory we may create entries in."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a directory")
    try:  # access() says yes to root even on /proc or a read-only mount: try for real, leaving nothing
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {parent} ({e.strerror})") from None


def check_output_file(path: str | Path, flag: str, reads: tuple[str | Path, ...] = ()) -> Path:
    """Refuse an output file that is a directory, one of the command's inputs, a run's or sweep's own
    file, or cannot be created. `reads` are the paths the command reads."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file name")
    for source in reads:
        if _same_file(path, Path(source)):
            raise UserError(f"{flag} {path}: is the input {source}; write the output elsewhere (nothing was changed)")
    _refuse_owned(path, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: is not writable (permission denied)")
    _check_parent_writable(path, flag)
    return path


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse an output folder that is a file, a run or sweep directory, inside one's own files, or that
    cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a directory")
    kind = _kind_of(path) if path.is_dir() else None
    if kind:
        raise UserError(f"{flag} {path}: is a {kind} directory; write the output elsewhere (nothing was changed)")
    _refuse_owned(path, flag)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot write in it (permission denied)")
    else:
        _check_parent_writable(path, flag)
    return path


def check_writable_dir(path: str | Path, flag: str) -> None:
    """For a directory a command creates itself (a run's --out): refuse early what mkdir would fail on."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot write in it (permission denied)")
    else:
        _check_parent_writable(path, flag)
