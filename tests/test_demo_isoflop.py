"""The bundled CPU isoFLOP demo expands (no training) to a grid that can locate an isoFLOP minimum
per budget and stays small enough for a 2-core machine."""
from __future__ import annotations

from collections import defaultdict

from scaling.bundled import BUNDLED
from scaling.sweep.expand import expand, load_sweep

DEMO = BUNDLED / "sweeps" / "demo-cpu-isoflop.yaml"


def demo_plan():
    return expand(load_sweep(DEMO), DEMO)


def test_demo_has_at_least_three_budgets_of_four_sizes_spanning_small_and_large_d_over_n():
    by_budget = defaultdict(list)
    for run in demo_plan().runs:
        by_budget[run.budget].append(run)
    assert len(by_budget) >= 3
    for budget, runs in by_budget.items():
        assert len({r.model for r in runs}) >= 4, budget
        ratios = sorted(r.tokens / r.n for r in runs)
        # The measured minima sit near D/N ~ 90-440: each budget needs sizes well on both sides (and none
        # below D/N 5, the step-starved cliff no parabola follows: see the sweep file's header).
        assert 5 <= ratios[0] < 15 and ratios[-1] > 300, (budget, ratios)


def test_demo_runs_share_one_batch_and_held_out_set_and_get_enough_steps():
    runs = demo_plan().runs
    train = {(r.config.train.batch_size, r.config.train.seq_len, r.config.train.eval_batches) for r in runs}
    assert len(train) == 1  # eval windows = eval_batches x batch_size: the same held-out set for all
    # The old demo gave its largest models 59-150 steps; with D/N >= 5 every run takes at least 280.
    assert min(r.steps for r in runs) >= 280
    for r in runs:
        assert r.config.model.tie_embeddings and r.config.model.dtype == "float32"
        assert 1e-3 <= r.config.optimizer.lr <= 2e-2
    lrs = [lr for _, lr in sorted({(r.config.model.D, r.config.optimizer.lr) for r in runs})]
    assert lrs == sorted(lrs, reverse=True)  # wider models, lower learning rates


def test_demo_stays_small_enough_for_two_cores():
    # Two runs at a time train these tiny models at roughly 20-60k tokens/s each; more tokens than
    # this would push the isoFLOP step past the ~3 idle minutes the 10-minute demo has for it.
    assert sum(r.tokens for r in demo_plan().runs) <= 15e6
