"""Writing the lab's files safely, and saying where a file on disk differs from what would be written.

Run directories and sweep directories are claimed by their resolved config; both refuse a directory
that holds another one and name the first field that differs, and both write with `write_atomic` so
that a reader (or a resume after SIGKILL) never sees half a file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file next to `path`, then rename: `path` holds the old contents or the new.
    The file is created with the usual permissions (0666 less the umask), readable like any other output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """The dotted path of the first key (in sorted order) where two nested mappings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "top level"
