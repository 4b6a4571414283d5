"""Persistent sweep workers: one long-lived Python process per slot runs many runs, one after another.

A fresh `scaling train` process spends seconds before its first step (interpreter and JAX start-up,
imports, loading compiled steps from the disk cache, building the corpus); for the small runs of a CPU
sweep that is as long as the training itself. A worker pays it once: it imports the trainer, then
reads run requests on stdin, one JSON line each, runs each exactly as the `scaling` command would
(same entry point, same argv, the run's log file as its stdout and stderr), and answers each with one
JSON line `{"code": EXIT_STATUS}` on a private copy of its original stdout.

Crash behaviour is that of one process per run: the worker is started through `executors.child`, so it
dies with its parent; SIGTERM or SIGKILL ends it mid-run like a trainer (the run resumes from its
checkpoint on the next submit). A worker retires after a run that did not succeed, so a failure can
never leave state behind for the next run, and after `MAX_RUNS` runs, so memory does not grow without
bound.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import subprocess
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

MAX_RUNS = 64  # runs per worker before a fresh one replaces it


class Worker:
    """The submitter's handle on one worker process."""

    def __init__(self, log_file: Path):
        log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "scaling.sweep.executors.child", str(os.getpid()), "--",
                   sys.executable, "-m", "scaling.sweep.executors.worker"]
        with open(log_file, "ab") as log:  # what the worker prints between runs
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.runs = 0
        self.retired = False
        self.shapes: set[str] = set()  # RunTask.shape_key of the runs it ran: their steps are compiled there

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, argv: list[str], cwd: str, log_path: str) -> None:
        """Start `scaling ARGV...` in directory `cwd`, its output appended to `log_path`."""
        request = {"argv": argv, "cwd": cwd, "log": log_path}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        self.runs += 1

    def wait(self, timeout: float) -> int | None:
        """The current run's exit status once it has ended (the worker's own status, negative for the
        signal that killed it, if it died mid-run); None if it is still running after `timeout` seconds."""
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            return None
        line = self.proc.stdout.readline()
        if not line:
            self.retired = True
            return self.proc.wait()
        code = int(json.loads(line)["code"])
        if code != 0 or self.runs >= MAX_RUNS:
            self.close()
        return code

    def alive(self) -> bool:
        return not self.retired and self.proc.poll() is None

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def retire(self) -> None:
        """Ask the worker to exit after its current run (closing its stdin ends its loop), without waiting."""
        self.retired = True
        if self.proc.poll() is None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def close(self) -> None:
        """Retire the worker and wait for it to exit."""
        self.retire()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def _output_to(path: str):
    """Point file descriptors 1 and 2 (Python's and XLA's output alike) at `path` for one run."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _run_one(argv: list[str], cwd: str, log: str) -> int:
    from scaling.cli.main import main

    os.chdir(cwd)
    with _output_to(log):
        try:
            return main(argv)
        except SystemExit as e:  # argparse and friends
            return e.code if isinstance(e.code, int) else 1
        except BaseException:  # what an uncaught exception does to a one-run process: traceback, exit 1
            traceback.print_exc()
            return 1


def serve() -> None:
    # Our stdout is the answer channel: keep a private copy, and send stray output to stderr (the worker log).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # Flax and JAX import IPython only to ask whether they run inside it, which a worker never does: an absent
    # IPython gives the same answer without importing ~350 modules (0.1-0.4 s of every worker's start-up).
    sys.modules.setdefault("IPython", None)
    for trainer in ("scaling.train", "scaling.rl"):  # the start-up cost this process exists to pay once
        importlib.import_module(trainer)

    for line in sys.stdin:
        request = json.loads(line)
        code = _run_one(request["argv"], request["cwd"], request["log"])
        answers.write(json.dumps({"code": code}) + "\n")
        answers.flush()
        if code != 0:
            return
    # End of input: every run this worker took has answered, so each one's checkpoint, summary and logs are
    # on disk. Skip the interpreter's teardown (JAX, XLA and Orbax clean-up, ~1 s on 2 busy cores), which
    # would only keep the submitter waiting for a process with nothing left to write.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve()
