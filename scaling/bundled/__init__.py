"""Files that ship inside the package: run recipes and the model ladder (configs/), sweep files (sweeps/)
and analysis files with their reference data (analysis/).

In a checkout, the repository's configs/, sweeps/ and analysis/ are links to these folders, so a command
written as `scaling train configs/train/tiny-math.yaml` names the same file in a checkout, in any other
directory of a machine that installed the wheel, and in the README.
"""
from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent

# Where a bare name (no folder, no .yaml) is looked up, per kind of file a command reads.
NAME_FOLDERS = {"train": "configs/train", "rl": "configs/rl", "model": "configs/models", "sweep": "sweeps",
                "analysis": "analysis"}


def locate(arg: str | Path, kind: str) -> Path:
    """The file a command-line argument names: the path itself when it exists (relative to the working
    directory, or absolute); else the bundled file of that relative path (`configs/train/tiny-math.yaml`);
    else, for a bare name, the bundled file of that kind (`tiny-math` for `scaling train`). A name that
    matches nothing comes back unchanged, so the caller's "no such file" error names what was typed."""
    path = Path(arg)
    if path.exists() or path.is_absolute():
        return path
    for candidate in (BUNDLED / path, BUNDLED / NAME_FOLDERS[kind] / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    return path
