"""Analysis files (`analysis/*.yaml`): which data, which columns, which figures to regenerate.

    source: analysis/data/chinchilla_epoch/svg_extracted_data.csv   # repo-relative or absolute
    out: runs/analysis/chinchilla_epoch                              # default for --out
    title: Chinchilla Figure 4 points (Epoch AI extraction)
    columns: {n: Model Size, c: Training FLOP, loss: loss}
    drop_highest_loss: 5
    bootstrap: 1000
    figures: [loss_vs_compute, isoflop, optimal_allocation, isoloss_contours, residuals]

Relative paths are resolved against the repository root (the nearest parent of the file holding a
pyproject.toml), so `scaling plot analysis/x.yaml` works from any working directory; from an installed
package, the bundled analysis files read their bundled data and write `out` under the working directory.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from pydantic import Field, create_model

from scaling.bundled import BUNDLED
from scaling.config.base import StrictModel, read_yaml, validate
from scaling.errors import UserError
from scaling.laws.sources import Columns

FigureName = Literal["loss_vs_compute", "isoflop", "optimal_allocation", "isoloss_contours",
                     "accuracy_vs_compute", "residuals"]

# The YAML form of the fit's column roles: the fields of `laws.sources.Columns`, validated as a config.
AnalysisColumns = create_model("AnalysisColumns", __base__=StrictModel,
                               **{f.name: (str | None, None) for f in dataclasses.fields(Columns)})


class Analysis(StrictModel):
    source: str
    out: str | None = None
    title: str | None = None
    columns: AnalysisColumns = AnalysisColumns()
    drop_highest_loss: int = Field(0, ge=0)
    bootstrap: int = Field(200, ge=0)
    seed: int = 0
    figures: list[FigureName] | None = None  # None: every figure the data supports


def repo_root(start: Path) -> Path:
    """The checkout a file is in (nearest folder up with a pyproject.toml); for a file of an installed
    package, the bundled folder (whose analysis/ holds the bundled data); else the file's own folder."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return BUNDLED if start.is_relative_to(BUNDLED) else start


def load_analysis(path: str | Path) -> tuple[Analysis, Path, Path | None]:
    """The validated analysis, its source path and its output folder (None if unset), resolved."""
    path = Path(path)
    analysis = validate(Analysis, read_yaml(path), source=str(path))
    root = repo_root(path.resolve().parent)

    def resolve(p: str, base: Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    source = resolve(analysis.source, root)
    if not source.exists():
        raise UserError(f"{path}: source: {analysis.source} not found (looked at {source})")
    # Outputs of a bundled analysis run from an installed package go under the working directory.
    out_base = Path.cwd() if root == BUNDLED else root
    return analysis, source, resolve(analysis.out, out_base) if analysis.out else None
