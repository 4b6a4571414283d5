"""What pretraining and RL loops share: which steps log, evaluate and checkpoint, when a run has diverged,
and how a diverged run ends. Nothing here compiles, so the rules are tested without a model."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import NamedTuple

from scaling.errors import RunFailed
from scaling.parallel import is_primary
from scaling.train.rundir import write_summary


class Due(NamedTuple):
    """What falls on one step."""
    log: bool
    eval: bool
    checkpoint: bool

    def __bool__(self) -> bool:  # anything due means the step's metrics come back from the device
        return self.log or self.eval or self.checkpoint


@dataclasses.dataclass(frozen=True)
class Cadence:
    """Every `log_every`/`eval_every`/`checkpoint_every` steps, plus checkpoints at the `keep` steps;
    the final step (`total`) always does all three, so a finished run ends logged, evaluated and saved."""
    total: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    keep: tuple[int, ...] = ()

    def at(self, done: int) -> Due:
        """What is due once `done` steps are finished."""
        last = done == self.total
        return Due(log=last or done % self.log_every == 0,
                   eval=last or done % self.eval_every == 0,
                   checkpoint=last or done % self.checkpoint_every == 0 or done in self.keep)

    def chunk(self, done: int, most: int) -> int:
        """How many steps to take next, at most `most`, after `done`: never past the next step something is due,
        so a multi-step call ends exactly where the one-step loop would log, evaluate or checkpoint."""
        n = 1
        while n < most and done + n < self.total and not self.at(done + n):
            n += 1
        return n


def divergence(metrics: dict, loss_key: str, step: int, limit: float | None = None) -> str | None:
    """Why the run counts as diverged at `step` (its loss or gradient norm is no longer finite, or the loss is
    above `limit`), or None. The text goes into the summary's `reason` and the error message."""
    loss, grad_norm = metrics[loss_key], metrics["grad_norm"]
    if math.isfinite(loss) and math.isfinite(grad_norm) and (limit is None or loss <= limit):
        return None
    return f"{loss_key} {loss:.4g} (grad norm {grad_norm:.3g}) at step {step}"


def end_diverged(run_dir: Path, summary: dict, reason: str):
    """Write the diverged run's summary (process 0 only) and raise: every checkpoint written so far was
    checked finite first, so the last one is kept for a rerun from there."""
    if is_primary():
        write_summary(run_dir, summary | {"status": "diverged", "reason": reason, "diverged_at": reason})
    raise RunFailed(f"{run_dir}: diverged: {reason}; last good checkpoint kept")
