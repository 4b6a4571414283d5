"""`make_report`: every expected figure as PNG + SVG, and a report.md with the fitted numbers."""
from pathlib import Path

import numpy as np
import pytest

from scaling.errors import UserError
from scaling.laws import Columns
from scaling.laws.synthetic import isoflop_runs, sigmoid_curve, write_registry
from scaling.plots import load_analysis, make_report

REPO = Path(__file__).resolve().parents[1]
EPOCH_CSV = REPO / "analysis/data/chinchilla_epoch/svg_extracted_data.csv"
PRETRAIN = ["loss_vs_compute", "isoflop", "optimal_allocation", "isoloss_contours", "residuals"]


def _assert_figures(out: Path, names):
    for name in names:
        for suffix in (".png", ".svg"):
            path = out / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 5000, path


def test_epoch_csv_report_has_every_pretraining_figure(tmp_path):
    report = make_report(EPOCH_CSV, tmp_path, Columns(n="Model Size", c="Training FLOP", loss="loss"),
                         drop_highest_loss=5, bootstrap=20)
    _assert_figures(tmp_path, PRETRAIN)
    assert not (tmp_path / "accuracy_vs_compute.png").exists()
    text = (tmp_path / "report.md").read_text()
    assert "| alpha | 0.3473 |" in text and "| B | 2143 |" in text
    assert "excluded" in text  # noisy rounded-C budgets are named, not silently dropped
    assert "![isoflop](isoflop.png)" in text
    assert set(report.fits) == {"chinchilla", "isoflop"}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    x = np.logspace(17, 20, 20)
    curves = {f"rl{i}": {"flops": x * (1 + 0.2 * i), "accuracy": sigmoid_curve(
        {"R0": 0.1, "A": 0.7, "B": 0.9, "C_mid": 3e18}, x * (1 + 0.2 * i), 0.01, seed=i)} for i in range(2)}
    return write_registry(folder, isoflop_runs(noise=0.003, seed=0), curves)


def test_sweep_report_adds_accuracy_figures_and_all_four_fits(sweep_dir, tmp_path):
    report = make_report(sweep_dir, tmp_path, bootstrap=20)
    _assert_figures(tmp_path, PRETRAIN + ["accuracy_vs_compute"])
    assert set(report.fits) == {"chinchilla", "isoflop", "loglinear", "sigmoid"}
    text = (tmp_path / "report.md").read_text()
    for heading in ("Chinchilla", "IsoFLOP", "Log-linear", "Sigmoid"):
        assert heading in text
    assert "95% percentile bootstrap, 20 replicates" in text


def test_a_sweep_too_small_for_chinchilla_still_gets_its_figures_and_a_warning(tmp_path):
    runs = isoflop_runs(budgets=(1e18,), runs_per_budget=4, noise=0.003)  # 4 runs: 5 parameters cannot be fitted
    report = make_report(write_registry(tmp_path / "sweep", runs), tmp_path / "out", bootstrap=0)
    assert "chinchilla" not in report.fits and any("chinchilla fit skipped" in w for w in report.warnings)
    _assert_figures(tmp_path / "out", ["loss_vs_compute"])
    assert "chinchilla fit skipped" in (tmp_path / "out/report.md").read_text()


def test_figure_subset_writes_only_those(sweep_dir, tmp_path):
    make_report(sweep_dir, tmp_path, bootstrap=0, figures=["isoflop"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["isoflop.png", "isoflop.svg", "report.md"]


def test_analysis_file_resolves_its_source_from_the_repo_root():
    analysis, source, out = load_analysis(REPO / "analysis/chinchilla_epoch.yaml")
    assert source == EPOCH_CSV.resolve()
    assert out == REPO / "runs/analysis/chinchilla_epoch"
    assert analysis.drop_highest_loss == 5 and analysis.columns.n == "Model Size"


def test_analysis_file_with_unknown_key_is_a_user_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    bad = tmp_path / "a.yaml"
    bad.write_text(f"source: {EPOCH_CSV}\nfigurs: [isoflop]\n")
    with pytest.raises(UserError, match="figurs: unknown key"):
        load_analysis(bad)


def test_source_without_plottable_columns_is_a_user_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="nothing to plot"):
        make_report(path, tmp_path / "out")
