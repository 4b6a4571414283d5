"""`scaling compare`: what a decade of pretraining compute buys against a decade of RL compute.

    collect   read both sweeps; evaluate every pretrained model on the RL task (cached)  → points
    analysis  pure: points → accuracy laws, per-decade slopes, compute-equivalent gains
    figures   PNG + SVG;  report  report.md + compare.json

`compare.split` is the report of a split sweep (`scaling compare SPLIT_SWEEP`): both axes in one sweep.
This package may import sweep, rl, laws and plots; laws and plots never import it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scaling.errors import UserError


# Every file a compare may write into DIR (besides its evaluation cache); one it did not write this
# time is removed, so DIR never mixes this report with a figure from an earlier one.
FIGURES = ("accuracy_vs_total_compute", "rl_accuracy_vs_rl_compute", "compute_equivalent_gain", "pretraining_loss_law")
OUTPUTS = tuple(f"{f}.{ext}" for f in FIGURES for ext in ("png", "svg")) + ("report.md", "report.html", "compare.json")


@dataclass
class CompareResult:
    out_dir: Path
    files: list[Path]
    collected: Any  # collect.Collected
    comparison: Any  # analysis.Comparison
    loss_law: Any  # analysis.LawFit


def run_compare(pretrain_sweep, rl_sweep, out_dir, bootstrap: int = 1000, seed: int = 0, reevaluate: bool = False,
                command: str | None = None, metric: str = "greedy",
                log: Callable[[str], Any] = lambda _: None) -> CompareResult:
    """`metric`: "greedy" (greedy pass@1) or "pass@1" (sampled: the mean over the RL runs' eval.pass_k
    samples per problem, DeepSeek-R1's pass@1; lower variance than one greedy answer)."""
    from scaling.compare.analysis import compare, loss_law
    from scaling.compare.collect import collect
    from scaling.compare.figures import write_figures
    from scaling.compare.report import write_text_outputs
    from scaling.laws.bootstrap import check_replicates
    from scaling.laws.sources import load_loss_points, load_xy_points
    from scaling.plots.style import short_source

    check_replicates(bootstrap)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    col = collect(pretrain_sweep, rl_sweep, out_dir, reevaluate=reevaluate, metric=metric, log=log)
    log("fitting")
    cmp = compare(col.pretrain, col.rl, bootstrap=bootstrap, seed=seed)
    (loss_pts, why), (power_pts, _) = (_loaded(lambda: load_loss_points(col.pretrain_dir)),
                                       _loaded(lambda: load_xy_points(col.pretrain_dir, "power")))
    law, tried = loss_law(loss_pts, power_pts, bootstrap, seed, missing=why or "no data")

    # Everything is drawn and written in a scratch folder inside DIR, then moved over the old files:
    # a compare that fails half-way leaves the previous report whole.
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".compare-", dir=out_dir))
    try:
        figures, notes = write_figures(cmp, law, loss_pts, power_pts, col.loss_convention, col.metric_axis,
                                       col.settings.task.name, short_source(str(col.pretrain_dir)), staging)
        written = figures + write_text_outputs(col, cmp, law, tried, figures, notes, command, staging)
        files = []
        for path in written:
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
        for name in set(OUTPUTS) - {p.name for p in files}:  # e.g. a gain figure this run had no gains for
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CompareResult(out_dir, files, col, cmp, law)


def _loaded(load):
    """(points, None), or (None, why) when the sweep has no usable losses: then it has no loss law,
    and the report says why, but the accuracy comparison still stands."""
    try:
        return load(), None
    except UserError as e:
        return None, str(e)
