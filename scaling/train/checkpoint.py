"""Orbax checkpoints of (train state, grain iterator, metadata), async, keeping the last k.

A checkpoint holds parameters, optimizer state, router biases and the step (`state`), the data
iterator's position (`data_iter`, grain's own handler), and JSON metadata (tokens, FLOPs, wall time,
eval history). Pretraining draws no other randomness: init comes from the seed and data order from the
iterator, so this is everything an exact resume needs.

Restoring walks back from the newest checkpoint: one that cannot be read (truncated by a crash,
corrupted on disk) is skipped with a warning and the previous one is used.

On disk the state's non-trainable variables sit under "rest", the name they had when the first
checkpoints were written; the state in memory calls them "non_trainable". The name is translated here
alone, so every checkpoint, old or new, keeps one layout and restores.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from scaling.data.pipeline import TrainIterator
from scaling.parallel import barrier, is_primary

log = logging.getLogger(__name__)


class _DropReadOnlyNotices(logging.Filter):
    """Orbax warns that a read-only manager is read-only (two lines before every RL start, eval, or
    one-line error): we asked for exactly that, so the notice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "read_only=True, setting save_interval_steps" not in message and "directory is read only" not in message


logging.getLogger("absl").addFilter(_DropReadOnlyNotices())

_NAMES_ON_DISK = {"non_trainable": "rest"}  # the state's top-level names, in memory -> on disk
_NAMES_IN_MEMORY = {disk: memory for memory, disk in _NAMES_ON_DISK.items()}


def _as_stored(state: dict) -> dict:
    return {_NAMES_ON_DISK.get(k, k): v for k, v in state.items()}


def _as_loaded(stored: dict) -> dict:
    return {_NAMES_IN_MEMORY.get(k, k): v for k, v in stored.items()}


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2, keep_steps: list[int] | None = None,
                 async_save: bool = True, read_only: bool = False):
        self.directory = Path(directory).absolute()
        self.read_only = read_only
        policies = [ocp.checkpoint_managers.LatestN(keep)]
        if keep_steps:
            policies.append(ocp.checkpoint_managers.CustomSteps(list(keep_steps)))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            read_only=read_only,
            create=not read_only,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any, data_iter: grain.DatasetIterator | None, meta: dict) -> None:
        items = {"state": ocp.args.StandardSave(_as_stored(state)), "meta": ocp.args.JsonSave(meta)}
        if data_iter is not None:
            items["data_iter"] = grain.checkpoint.CheckpointSave(data_iter)
        self.manager.save(step, args=ocp.args.Composite(**items))

    def restore(self, step: int, abstract_state: Any, data_iter: grain.DatasetIterator | None):
        items = {"state": ocp.args.StandardRestore(_as_stored(abstract_state)), "meta": ocp.args.JsonRestore()}
        position = self._position_saved_by_other_processes(step, data_iter)
        if data_iter is not None and position is None:
            items["data_iter"] = grain.checkpoint.CheckpointRestore(data_iter)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        if position is not None:
            data_iter.set_state(position)
        return _as_loaded(restored["state"]), restored["meta"]

    def restore_part(self, step: int, abstract_part: dict) -> dict:
        """Some entries of the state alone (a policy's "params" and "non_trainable"): the rest of it, e.g. the
        optimizer state of whichever optimizer the run used, is left on disk."""
        target = _as_stored(abstract_part)
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True)))
        return _as_loaded(restored["state"])

    def _position_saved_by_other_processes(self, step: int, data_iter) -> dict | None:
        """A training iterator's position saved by a run over another number of processes, or None.

        Grain keeps one file per process, named by process index and count, so a run saved by 2 processes
        would find no file of its own when resumed by 1 (or 4), and every checkpoint would be set aside as
        unreadable. A TrainIterator's state is the number of global batches taken, the same in every process
        whatever their count (data/pipeline.py), so any process's file restores it."""
        if not isinstance(data_iter, TrainIterator):
            return None
        folder = self.directory / str(step) / "data_iter"
        if (folder / f"process_{jax.process_index()}-of-{jax.process_count()}.json").exists():
            return None
        saved = sorted(folder.glob("process_*-of-*.json"))
        return json.loads(saved[0].read_text()) if saved else None

    def first_mismatch(self, step: int, abstract_state: Any) -> str | None:
        """The first array whose stored shape differs from `abstract_state`'s (a config edited after
        training), read from the checkpoint's metadata without restoring anything; None if all match."""
        absl_log, level = logging.getLogger("absl"), logging.getLogger("absl").level
        absl_log.setLevel(logging.ERROR)  # reading an item's metadata alone warns that the step's is not there
        try:
            with ocp.StandardCheckpointer() as reader:
                stored = reader.metadata(self.directory / str(step) / "state")
        except Exception:  # noqa: BLE001 - unreadable metadata: the restore itself will say why
            return None
        finally:
            absl_log.setLevel(level)
        tree = getattr(getattr(stored, "item_metadata", stored), "tree", stored)
        shapes = {leaf.name: tuple(leaf.shape) for leaf in jax.tree.leaves(tree)
                  if hasattr(leaf, "name") and hasattr(leaf, "shape")}
        for path, leaf in jax.tree_util.tree_leaves_with_path(_as_stored(abstract_state)):
            name = ".".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
            if name in shapes and shapes[name] != tuple(leaf.shape):
                return f"{name} is {shapes[name]} in the checkpoint but {tuple(leaf.shape)} for the config"
        return None

    def restore_latest(self, abstract_state: Any, data_iter: grain.DatasetIterator | None):
        """(state, meta) of the newest readable checkpoint, or None if there is none.

        A failed restore may already have moved `data_iter` (grain restores it before the arrays fail),
        so its position is put back after every failure: with no readable checkpoint the run starts
        over exactly as a fresh one. Unreadable checkpoints are moved to `checkpoints-unreadable/`
        (kept, not deleted): left in place they would block the saves of the steps they hold."""
        start = data_iter.get_state() if data_iter is not None else None
        steps = self.steps()
        for step in reversed(steps):
            try:
                with quiet_stderr_on_failure():
                    return self.restore(step, abstract_state, data_iter)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is skipped, not fatal
                if data_iter is not None:
                    data_iter.set_state(start)
                first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                self._set_aside(step)
                kept = "skipped" if self.read_only else f"moved to {self._aside_dir()}"
                warnings.warn(f"checkpoint at step {step} in {self.directory} is unreadable ({first_line}); "
                              f"{kept}, falling back to the previous one", stacklevel=2)
        if steps:
            warnings.warn(f"no checkpoint in {self.directory} is readable: starting over from step 0", stacklevel=2)
        return None

    def _aside_dir(self) -> Path:
        return self.directory.with_name(self.directory.name + "-unreadable")

    def _set_aside(self, step: int) -> None:
        if self.read_only:
            return
        barrier(f"checkpoint-{step}-unreadable")  # in a multi-process run: all have given up on it, process 0 moves it
        if is_primary():
            aside = self._aside_dir()
            aside.mkdir(exist_ok=True)
            target = aside / str(step)
            n = 1
            while target.exists():
                target, n = aside / f"{step}.{n}", n + 1
            os.replace(self.directory / str(step), target)
        barrier(f"checkpoint-{step}-set-aside")
        self.manager.reload()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


@contextlib.contextmanager
def quiet_stderr_on_failure(settle_s: float = 0.5, max_wait_s: float = 10.0):
    """Hide the noise of a failed Orbax restore: its tensorstore reads still in flight complete after
    the restore's event loop is closed, and each reports an unraisable `Event loop is closed` error
    from its own thread (some 200 lines per damaged checkpoint). On success, what was written to fd 2
    is passed through; on failure it is dropped once stderr has been quiet for `settle_s`."""
    sys.stderr.flush()
    saved_fd, saved_hook = os.dup(2), sys.unraisablehook
    dropped = [0]

    def drop_closed_loop(unraisable):
        dropped[0] += 1
        if not (isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)):
            saved_hook(unraisable)

    sys.unraisablehook = drop_closed_loop
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            if failed:
                deadline, seen = time.time() + max_wait_s, None
                while time.time() < deadline and (os.fstat(sink.fileno()).st_size, dropped[0]) != seen:
                    seen = (os.fstat(sink.fileno()).st_size, dropped[0])
                    time.sleep(settle_s)
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sys.unraisablehook = saved_hook
            if not failed:
                sink.seek(0)
                os.write(2, sink.read())


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding skeleton of a state, the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
