"""Every kind of sweep and its designs, in one table: what `kind:` and `design:` of a sweep file name.

A kind is its sweep-file schema, its designs (each turns a validated spec into a plan of runs) and the
`scaling` subcommand that trains one of its runs. Everything downstream of expansion (registry,
executors, resume, status) only sees `PlannedRun`s, so adding a kind is one module (its spec and
expanders) and one entry in KINDS.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scaling.errors import UserError
from scaling.sweep import pretrain, rlvr, split
from scaling.sweep.plan import Plan
from scaling.sweep.spec import PretrainSweepSpec, SweepSpecBase

# A design turns a validated spec (and the sweep file's path, for relative references) into a plan.
Design = Callable[[SweepSpecBase, "Path | None"], Plan]


@dataclass(frozen=True)
class SweepKind:
    name: str
    spec_cls: type[SweepSpecBase]
    designs: dict[str, Design]
    command: str  # `scaling <command> CONFIG --out RUN_DIR` trains one run of this kind


KINDS: dict[str, SweepKind] = {kind.name: kind for kind in [
    SweepKind("pretrain", PretrainSweepSpec, command="train", designs={
        "grid": pretrain.expand_grid, "isoflop": pretrain.expand_isoflop, "wsd_forks": pretrain.expand_wsd_forks}),
    SweepKind("rlvr", rlvr.RLVRSweepSpec, command="rl", designs={"grid": rlvr.expand_rlvr}),
    SweepKind("split", split.SplitSweepSpec, command=None, designs={"split": split.expand_split}),
]}


def get_kind(name: str) -> SweepKind:
    if name not in KINDS:
        raise UserError(f"kind: unknown sweep kind {name!r} (known: {', '.join(sorted(KINDS))})")
    return KINDS[name]


def get_design(kind: SweepKind, design: str | None) -> Design:
    if design not in kind.designs:
        raise UserError(f"design: {design!r} is not a design of {kind.name} sweeps (known: {', '.join(kind.designs)})")
    return kind.designs[design]
