"""The design of `scaling demo` (issue #15), pinned on the plans of its three bundled sweeps without
training anything: the points of the issue that are properties of the design rather than of a run.

- loss law: >= 4 isoFLOP budgets spanning >= 1.5 decades, each with sizes on both sides of its minimum;
- pretraining accuracy: >= 6 pretrained models spanning >= 1.5 decades of compute, scored on a task of
  graded difficulty (several step tiers, the same ones the corpus teaches);
- RL: >= 3 runs from >= 3 different pretrained models;
- seeds: the demo gives every sweep its --seed (tests/test_demo_seed.py).
"""
from __future__ import annotations

import math
from collections import defaultdict

import pytest
import yaml

from scaling.config.rl import RLConfig
from scaling.config.base import validate
from scaling.demo import DemoSweeps
from scaling.sweep.expand import expand, load_sweep
from scaling.sweep.rlvr import select_rows
from scaling.sweep.spec import find_file

SWEEPS = DemoSweeps.bundled()


@pytest.fixture(scope="module")
def plans():
    return {name: expand(load_sweep(path), path) for name, path in (("isoflop", SWEEPS.isoflop),
                                                                   ("math", SWEEPS.math))}


def decades(values) -> float:
    return math.log10(max(values) / min(values))


def test_loss_law_has_four_budgets_over_a_decade_and_a_half_each_spanning_its_minimum(plans):
    by_budget = defaultdict(list)
    for run in plans["isoflop"].runs:
        by_budget[run.budget].append(run)
    assert len(by_budget) >= 4 and decades(by_budget) >= 1.5
    for budget, runs in by_budget.items():
        ratios = sorted(r.tokens / r.n for r in runs)
        # The measured minima sit near D/N ~ 90-180: sizes well on both sides of it, at least 4 per budget.
        assert len(runs) >= 4 and ratios[0] < 30 and ratios[-1] > 300, (budget, ratios)


def rl_spec():
    return load_sweep(SWEEPS.rlvr)  # validated, not expanded: that needs the math sweep's finished runs


def rl_task():
    base = find_file(rl_spec().base, SWEEPS.rlvr)
    return validate(RLConfig, yaml.safe_load(base.read_text()), source=str(base)).task


def test_pretraining_axis_has_six_models_over_a_decade_and_a_half_on_a_graded_task(plans):
    runs = plans["math"].runs
    assert len(runs) >= 6 and decades([r.config.train.flops if r.config.train.flops else 6 * r.n * r.tokens
                                       for r in runs]) >= 1.5
    corpus = {(r.config.data.math.min_steps, r.config.data.math.max_steps) for r in runs}
    task = rl_task().params
    assert task["max_steps"] - task["min_steps"] >= 2  # three tiers scored together: the mean over tiers
    assert corpus == {(task["min_steps"], task["max_steps"])}  # the corpus teaches every tier the task asks


def test_rl_starts_three_runs_from_three_different_pretrained_models(plans):
    spec = rl_spec()
    # The rows the RL sweep will select from, as the math sweep's registry will hold them.
    rows = [{"run_id": r.run_id, "budget": r.budget, "tokens": r.tokens, "flops": 6 * r.n * r.tokens,
             "eval_loss": 1.0 / r.n, "loss": None} for r in plans["math"].runs]
    bases = select_rows(rows, spec.init.select or "compute_optimal", spec.init.min_budget)
    assert len({r["run_id"] for r in bases}) >= 3 and len(spec.steps or spec.budgets) * len(spec.seeds or [0]) >= 1
    # Bases with partial skill: each RL base is among the most-trained models of the sweep.
    most = max(r["tokens"] for r in rows)
    assert all(r["tokens"] >= most / 4 for r in bases)
