"""Write the synthetic example tables of the split and test-time laws (see SOURCE.md beside this file).

    python3 analysis/data/allocation_synthetic/make.py

Deterministic (fixed seeds): rerunning rewrites byte-identical files.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from scaling.laws.synthetic_allocation import split_runs, testtime_sampled

HERE = Path(__file__).resolve().parent


def write(path: Path, columns: dict, formats: dict) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for i in range(len(next(iter(columns.values())))):
            writer.writerow([formats[name].format(columns[name][i]) for name in columns])


def main() -> None:
    split = split_runs(noise=0.01, repeats=6, seed=0)  # the precision tests/test_laws_split.py checks
    write(HERE / "split.csv", split, {"total_flops": "{:.3g}", "rl_share": "{:g}", "accuracy": "{:.4f}"})
    # Nine models a quarter decade apart: with five, majority vote's frontier moves so far when one model is
    # left out that the law's interval reaches slope 0 and the rate is refused.
    testtime = testtime_sampled(train=tuple(10 ** np.arange(18, 20.01, 0.25)), n_problems=1000, seed=1)
    write(HERE / "testtime.csv", testtime, {"train_flops": "{:.3g}", "k": "{:d}", "sample_flops": "{:.4g}",
                                            "pass_at_k": "{:.4f}", "majority": "{:.4f}"})


if __name__ == "__main__":
    main()
