"""`scaling compare SPLIT_SWEEP --out DIR`: the report of a pretraining/RL split sweep.

    collect   the pipelines (laws.split's loader); test-time curves of every model (cached)
    analysis  pure: iso-compute profiles, best share and its trend, exchange rates (laws.split, laws.testtime)
    figures   PNG + SVG;  report  report.md, report.html, compare.json

A split sweep holds both compute axes of `scaling compare` in one directory (each pipeline pretrains,
then runs RL), so its report is the same command with one sweep. A CSV of total compute, RL share and
accuracy (as `scaling fit split` reads) gives the same report without the test-time part.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scaling.errors import UserError

FIGURES = ("iso_compute", "best_share", "test_time", "test_time_frontier")
OUTPUTS = tuple(f"{f}.{ext}" for f in FIGURES for ext in ("png", "svg")) + ("report.md", "report.html", "compare.json")


@dataclass
class SplitReport:
    out_dir: Path
    files: list[Path]
    data: Any  # collect.SplitData
    analysis: Any  # analysis.SplitAnalysis
    rates: list  # analysis.ExchangeRate per metric
    warnings: list[str]


def run_split_report(source, out_dir, bootstrap: int = 1000, seed: int = 0, k: int = 16, problems: int = 128,
                     reevaluate: bool = False, command: str | None = None,
                     log: Callable[[str], Any] = lambda _: None) -> SplitReport:
    from scaling.compare.split.analysis import METRICS, analyze_split, exchange_rate
    from scaling.compare.split.collect import collect_split
    from scaling.compare.split.figures import write_figures
    from scaling.compare.split.report import write_text_outputs
    from scaling.laws.bootstrap import check_replicates
    from scaling.plots.style import short_source

    check_replicates(bootstrap)
    if k < 0 or (k and k < 4):
        raise UserError(f"--test-time-k {k}: needs k >= 4 (k = 1, 2, 4: three test-time budgets per model), or 0 "
                        "for no test-time compute")
    if problems < 1:
        raise UserError(f"--test-time-problems {problems}: must be positive")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    data = collect_split(source, out_dir, k, problems, reevaluate, log)
    log("fitting")
    analysis = analyze_split(data.points, bootstrap, seed)
    rates = [exchange_rate(data.models, m, bootstrap, seed, data.not_measured) for m in METRICS]
    warnings = list(data.warnings)
    if analysis.fit is not None:
        warnings += analysis.fit.warnings

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".compare-", dir=out_dir))
    try:  # drawn and written aside, then moved over the old files: a failed report leaves the previous one whole
        figures = write_figures(analysis, data.models, rates, data.metric_axis,
                                short_source(str(source)), staging)
        written = figures + write_text_outputs(data, analysis, rates, figures, command, warnings, staging)
        files = []
        for path in written:
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
        for name in set(OUTPUTS) - {p.name for p in files}:  # e.g. a test-time figure from an earlier report
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SplitReport(out_dir, files, data, analysis, rates, warnings)
