"""The extension point: each kind of sweep (pretrain, later rlvr) registers its schema, designs and
the `scaling` subcommand that trains one of its runs.

Everything downstream of expansion (registry, executors, resume, status) only sees `PlannedRun`s,
so a new kind adds a module that calls `register_kind(...)` and one line to `_BUILTIN_MODULES`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from scaling.errors import UserError

if TYPE_CHECKING:
    from scaling.sweep.plan import Plan
    from scaling.sweep.spec import SweepSpecBase

# An expander turns a validated spec (and the sweep file's path, for relative references) into a plan.
Expander = Callable[["SweepSpecBase", "Path | None"], "Plan"]


@dataclass(frozen=True)
class SweepKind:
    name: str
    spec_cls: type
    designs: dict[str, Expander] = field(default_factory=dict)
    command: str = "train"  # `scaling <command> CONFIG --out RUN_DIR` trains one run of this kind


_KINDS: dict[str, SweepKind] = {}
_BUILTIN_MODULES = ["scaling.sweep.pretrain", "scaling.sweep.rlvr"]


def register_kind(kind: SweepKind) -> None:
    _KINDS[kind.name] = kind


def get_kind(name: str) -> SweepKind:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    if name not in _KINDS:
        raise UserError(f"kind: unknown sweep kind {name!r} (known: {', '.join(sorted(_KINDS))})")
    return _KINDS[name]
