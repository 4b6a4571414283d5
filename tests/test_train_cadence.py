"""The step cadence and divergence rules both training loops use (no model is built here)."""
import json
import math

import pytest

from scaling.errors import RunFailed
from scaling.train.cadence import Cadence, divergence, end_diverged


def steps_where(cadence: Cadence, what: str) -> list[int]:
    return [done for done in range(1, cadence.total + 1) if getattr(cadence.at(done), what)]


def test_each_kind_falls_on_its_own_multiples_and_all_on_the_final_step():
    cadence = Cadence(total=23, log_every=5, eval_every=10, checkpoint_every=8, keep=(3,))
    assert steps_where(cadence, "log") == [5, 10, 15, 20, 23]
    assert steps_where(cadence, "eval") == [10, 20, 23]
    assert steps_where(cadence, "checkpoint") == [3, 8, 16, 23]
    assert tuple(cadence.at(23)) == (True, True, True)


def test_a_step_with_nothing_due_is_false_and_any_due_kind_makes_it_true():
    cadence = Cadence(total=100, log_every=7, eval_every=50, checkpoint_every=30, keep=(11,))
    assert not cadence.at(1)
    assert [done for done in range(1, 101) if cadence.at(done)] == \
        sorted({7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 91, 98, 50, 100, 30, 60, 90, 11})


def test_a_multi_step_call_ends_at_the_next_due_step_or_after_its_most():
    cadence = Cadence(total=30, log_every=7, eval_every=20, checkpoint_every=20, keep=(3,))
    ends, done = [], 0
    while done < cadence.total:
        done += cadence.chunk(done, 4)
        ends.append(done)
    assert ends == [3, 7, 11, 14, 18, 20, 21, 25, 28, 30]  # every due step is a call's end: 3, 7, 14, 20, 21, 28, 30
    assert cadence.chunk(28, 16) == 2 and cadence.chunk(5, 1) == 1


def test_finite_loss_within_the_limit_is_no_divergence():
    assert divergence({"loss": 3.2, "grad_norm": 1.0}, "loss", 40, limit=20.0) is None
    assert divergence({"loss": 20.0, "grad_norm": 1e6}, "loss", 40, limit=20.0) is None
    assert divergence({"pg_loss": 1e9, "grad_norm": 5.0}, "pg_loss", 40) is None  # no limit: only finiteness


@pytest.mark.parametrize("metrics, key, limit, reason", [
    ({"loss": 25.0, "grad_norm": 3.0}, "loss", 20.0, "loss 25 (grad norm 3) at step 7"),
    ({"loss": math.nan, "grad_norm": 0.5}, "loss", 20.0, "loss nan (grad norm 0.5) at step 7"),
    ({"loss": 2.0, "grad_norm": math.inf}, "loss", 20.0, "loss 2 (grad norm inf) at step 7"),
    ({"pg_loss": -0.0123456, "grad_norm": math.nan}, "pg_loss", None, "pg_loss -0.01235 (grad norm nan) at step 7"),
])
def test_divergence_names_the_loss_the_gradient_norm_and_the_step(metrics, key, limit, reason):
    assert divergence(metrics, key, 7, limit=limit) == reason


def test_a_diverged_run_writes_its_summary_and_raises_with_the_reason(tmp_path):
    with pytest.raises(RunFailed, match=r"diverged: loss nan \(grad norm 1\) at step 4; last good checkpoint kept"):
        end_diverged(tmp_path, {"status": "running", "step": 4}, "loss nan (grad norm 1) at step 4")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == {"status": "diverged", "step": 4, "reason": "loss nan (grad norm 1) at step 4",
                       "diverged_at": "loss nan (grad norm 1) at step 4"}
