"""Run identity: what changes a run's results is hashed into its id; how it is run is recorded, not hashed.

A run's id (and the check that a run directory holds "the same run" on resume) covers the model, data,
optimizer, budget, seed and numerics. Progress display, TensorBoard, logging and checkpoint cadence,
the data cache location, the mesh shape and the steps taken per compiled call change no number a run
produces (a different mesh or program only reorders float reductions), so turning on TensorBoard or
resuming on another device count resumes the same run: the run directory's config.yaml then records the new
settings. The attention kernel (model.attention: XLA einsums, cuDNN's or Splash's fused kernel, "auto" picking
per platform) is the same kind of setting: the same math, rounded differently, as on another platform.
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

# Dotted paths into a resolved run config (pretraining RunConfig or RLConfig, as dumped to JSON).
OPERATIONAL: tuple[str, ...] = (
    "mesh", "data.cache_dir",
    "train.log_every", "train.checkpoint_every", "train.keep_checkpoints", "train.keep_steps",
    "train.tensorboard", "train.wandb", "train.progress", "train.steps_per_call",
    "log_every", "checkpoint_every", "keep_checkpoints", "tensorboard", "wandb", "progress",  # RL configs
)
# Implementation choices: hashed as one fixed value (the one every run had before the choice was offered, so
# the ids of those runs are unchanged), recorded as set.
IMPLEMENTATION: dict[str, Any] = {"model.attention": "xla"}
# Settings added after runs existed, with the value that reproduces those runs: at that value they are left
# out of the identity, so earlier runs keep their ids; any other value is hashed.
ADDED_LATER: dict[str, Any] = {"grpo.negative_weight": 1.0}
# Registries whose run ids follow this rule carry it as SQLite's user_version (0: hashed everything).
ID_SCHEME = 1


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _parent(config: dict, path: str) -> tuple[dict | None, str]:
    """The dict holding a dotted path's last key (None if the path is absent), and that key."""
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def identity(config: dict) -> dict:
    """The resolved config without its operational settings, implementation choices at their fixed values."""
    kept = copy.deepcopy(config)
    for path in OPERATIONAL:
        node, leaf = _parent(kept, path)
        if node is not None:
            node.pop(leaf, None)
    for path, default in ADDED_LATER.items():
        node, leaf = _parent(kept, path)
        if node is not None and node.get(leaf, default) == default:
            node.pop(leaf, None)
    for path, hashed_as in IMPLEMENTATION.items():
        node, leaf = _parent(kept, path)
        if node is not None and leaf in node:
            node[leaf] = hashed_as
    return kept


def run_id(config: dict) -> str:
    """12 hex characters of the sha256 of the canonical identity: same results ⇒ same id."""
    return hashlib.sha256(canonical_json(identity(config)).encode()).hexdigest()[:12]
