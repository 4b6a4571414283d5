"""One writer per directory: an exclusive flock on a lock file inside it.

The kernel drops an flock when its holder dies, SIGKILL included, so a crashed writer never leaves
a stale lock behind; the holder's pid is written into the file only to name it in the refusal.
Used by `sweep submit` (one submitter per sweep directory) and by the trainers (one writer per run
directory).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from scaling.errors import UserError

RUN_DIR_LOCK = ".lock"  # a run directory's writer lock (trainers hold it; sweep watchers wait on it)


class DirectoryLock:
    """`with DirectoryLock(dir, ".lock", busy="--out D: another submit is running on it"):` or acquire()/release().
    `busy` is the refusal's text; the holder's pid is appended to it."""

    def __init__(self, directory: Path, name: str, busy: str):
        self.path = Path(directory) / name
        self.busy = busy
        self.file = None

    def acquire(self) -> "DirectoryLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise UserError(f"{self.busy} (pid {holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.file = handle
        return self

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the only descriptor drops the flock
            self.file = None

    def held_elsewhere(self) -> bool:
        """Whether another open of the lock file holds it now (a writer is alive), without taking it."""
        try:
            handle = open(self.path)
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the handle drops the shared lock just taken

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
