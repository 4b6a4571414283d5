"""WSD forks (Hägele et al. 2024): one warmup-stable-decay trunk per model size, cooldowns branched off.

Under a WSD schedule the learning rate is flat between warmup and the cooldown, so a run of D_i
tokens is, up to the start of its cooldown s_i = steps_i - round(decay_fraction · steps_i),
step-for-step the same as a longer run with the same warmup. The longest run of each size is
trained in full (the trunk) and keeps checkpoints at every s_i; each shorter run restarts from
the trunk's checkpoint at s_i and trains only its cooldown. One size then yields final losses at
many D for little more than the cost of the longest run.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from scaling.errors import UserError
from scaling.files import first_difference
from scaling.sweep.plan import Plan, PlannedRun, canonical_json, with_fields
from scaling.train.optim import decay_start


def fork_branches(runs: list[PlannedRun]) -> Plan:
    groups: dict[tuple, list[PlannedRun]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.seed, canonical_json(run.swept))].append(run)
    planned: list[PlannedRun] = []
    independent_steps = forked_steps = 0
    independent_flops = forked_flops = 0.0
    for members in groups.values():
        members.sort(key=lambda r: r.steps)
        _check_group(members)
        trunk, branches = members[-1], members[:-1]
        opt = trunk.config.optimizer
        starts = [decay_start(opt, b.steps) for b in branches]  # the trainer's own schedule
        for branch, start in zip(branches, starts):
            if start < max(1, opt.warmup):
                field = "budgets" if branch.budget is not None else "tokens"
                raise UserError(f"{field}: at {branch.tag} the {branch.model} branch ({branch.steps} steps) would "
                                f"fork at step {start}, inside the warmup of {opt.warmup:g} steps; use more tokens "
                                "or a shorter warmup")
        trunk = dataclasses.replace(trunk, config=with_fields(trunk.config, "train", keep_steps=sorted(set(starts))),
                                    role="trunk", run_id="")
        planned.append(trunk)
        for branch, start in zip(branches, starts):
            # The trunk's path is relative to the sweep dir, where runs are launched: ids survive a move.
            cfg = with_fields(branch.config, "train", fork_from={"run_dir": trunk.run_dir, "step": start})
            planned.append(dataclasses.replace(branch, config=cfg, role="branch", depends_on=trunk.run_id,
                                               fork_step=start, run_id=""))
        flops_per_step = trunk.flops / trunk.steps
        independent_steps += sum(r.steps for r in members)
        forked_steps += trunk.steps + sum(b.steps - s for b, s in zip(branches, starts))
        independent_flops += flops_per_step * sum(r.steps for r in members)
        forked_flops += flops_per_step * (trunk.steps + sum(b.steps - s for b, s in zip(branches, starts)))
    saved = 1 - forked_flops / independent_flops if independent_flops else 0.0
    note = (f"wsd_forks: {len(groups)} trunks + {len(planned) - len(groups)} cooldown branches train "
            f"{forked_steps:,} steps ({forked_flops:.3g} FLOPs) instead of {independent_steps:,} steps "
            f"({independent_flops:.3g} FLOPs) as independent runs: saves {100 * saved:.0f}% of the compute")
    return Plan(planned, notes=[note])


def _check_group(members: list[PlannedRun]) -> None:
    """Branches must share everything with their trunk but the token count (rules may not depend on D or C)."""
    steps = [r.steps for r in members]
    if len(set(steps)) != len(steps):
        dup = next(s for s in steps if steps.count(s) > 1)
        tags = ", ".join(r.tag for r in members if r.steps == dup)
        raise UserError(f"budgets: {tags} all give {members[0].model} {dup} steps; list budgets that differ by more")
    reference = _without_tokens(members[-1])
    for run in members[:-1]:
        other = _without_tokens(run)
        if other != reference:
            key = first_difference(reference, other)
            raise UserError(f"rules: {key} differs between the {run.model} runs at {run.tag} and "
                            f"{members[-1].tag}; wsd_forks branches share their trunk's hyperparameters, so "
                            "rules may not depend on tokens or C")
    warmup = members[-1].config.optimizer.warmup
    if warmup < 1:
        raise UserError(f"optimizer.warmup: wsd_forks needs an absolute warmup step count >= 1 (got {warmup:g}, a "
                        "fraction of each run's steps), so that every branch shares its trunk's warmup")


def _without_tokens(run: PlannedRun) -> dict:
    data = run.config.model_dump(mode="json")
    data["train"].pop("tokens")
    return data

