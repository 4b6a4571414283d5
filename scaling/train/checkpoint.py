"""Orbax checkpoints of (train state, grain iterator, metadata), async, keeping the last k.

A checkpoint holds parameters, optimizer state, router biases and the step (`state`), the data
iterator's position (`data_iter`, grain's own handler), and JSON metadata (tokens, FLOPs, wall time,
eval history). Pretraining draws no other randomness: init comes from the seed and data order from the
iterator, so this is everything an exact resume needs.

Restoring walks back from the newest checkpoint: one that cannot be read (truncated by a crash,
corrupted on disk) is skipped with a warning and the previous one is used.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2, keep_steps: list[int] | None = None,
                 async_save: bool = True, read_only: bool = False):
        self.directory = Path(directory).absolute()
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
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if data_iter is not None:
            items["data_iter"] = grain.checkpoint.CheckpointSave(data_iter)
        self.manager.save(step, args=ocp.args.Composite(**items))

    def restore_state_only(self, step: int, abstract_state: Any) -> Any:
        """Just the train state of a checkpoint (e.g. to start RL from a pretraining run)."""
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
        return restored["state"]

    def restore(self, step: int, abstract_state: Any, data_iter: grain.DatasetIterator | None):
        items = {"state": ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore()}
        if data_iter is not None:
            items["data_iter"] = grain.checkpoint.CheckpointRestore(data_iter)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"], restored["meta"]

    def restore_latest(self, abstract_state: Any, data_iter: grain.DatasetIterator | None):
        """(state, meta) of the newest readable checkpoint, or None if there is none."""
        for step in reversed(self.steps()):
            try:
                return self.restore(step, abstract_state, data_iter)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is skipped, not fatal
                first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                warnings.warn(f"checkpoint at step {step} in {self.directory} is unreadable ({first_line}); "
                              "falling back to the previous one", stacklevel=2)
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(state: Any) -> Any:
    """Shape/dtype/sharding skeleton of a state, the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
