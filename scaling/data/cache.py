"""The on-disk cache shared by every run on a machine: tokenizers and tokenized corpora.

Several sweep processes may build the same entry at once, so nothing is ever written in place:
entries are built in a private temp path and published with one `os.replace` (atomic on POSIX).
The loser of a race simply discards its copy; readers only ever see complete entries.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scaling.config.data import DataConfig


def resolve_cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scaling" / "data"


def stable_hash(obj: Any, n_chars: int = 16) -> str:
    """Hex digest of a JSON-able object; identical across processes (unlike `hash()`)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()[:n_chars]


def bucket_of(key: str, n_buckets: int) -> int:
    """Deterministic bucket of a string key, used for train/eval splits that never drift."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


def private_build_dir(final_dir: Path) -> Path:
    """A fresh directory next to `final_dir` to build an entry in before `publish_dir`."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.", suffix=".tmp"))


def publish_dir(build_dir: Path, final_dir: Path) -> None:
    """Atomically move a finished entry into place; if another process got there first, keep theirs."""
    try:
        os.replace(build_dir, final_dir)
    except OSError:
        if not (final_dir / "meta.json").is_file():
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        shutil.rmtree(build_dir, ignore_errors=True)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def open_tokens(path: Path) -> np.ndarray:
    """A read-only memory map: many processes share the page cache instead of copies."""
    return np.load(path, mmap_mode="r")
