"""`python -m scaling.sweep.executors.child PARENT_PID -- CMD...`: exec CMD so that it dies with its parent.

If the submitter (or the Ray worker) running a sweep is killed, even with SIGKILL, its trainer
subprocesses must not live on as orphans still writing to their run directories: the next submit
resumes those runs, and two trainers on one directory would corrupt it. Linux's PR_SET_PDEATHSIG
delivers SIGTERM to us when the parent dies; it survives exec, so the trainer inherits it. It is set
here, in a fresh process, rather than in a `preexec_fn`, which is unsafe in a threaded parent.
"""
from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    parent, separator, command = int(argv[0]), argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: python -m scaling.sweep.executors.child PARENT_PID -- CMD...")
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(143)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
