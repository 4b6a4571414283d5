"""`scaling fit` and `scaling plot` from the command line: the JSON contract and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling.cli.main import main
from scaling.laws.synthetic import isoflop_runs, sigmoid_curve, write_registry

REPO = Path(__file__).resolve().parents[1]
EPOCH_CSV = REPO / "analysis/data/chinchilla_epoch/svg_extracted_data.csv"
EPOCH_ARGS = ["--n", "Model Size", "--c", "Training FLOP", "--loss", "loss"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    x = np.logspace(17, 20, 15)
    curve = {"rl0": {"flops": x, "accuracy": sigmoid_curve({"R0": 0.1, "A": 0.7, "B": 1.0, "C_mid": 1e18}, x, 0.01)}}
    return write_registry(tmp_path_factory.mktemp("sweep"), isoflop_runs(noise=0.002), curve)


def test_fit_chinchilla_json_prints_epochs_numbers(capsys):
    code, out, err = run(capsys, "fit", "chinchilla", str(EPOCH_CSV), *EPOCH_ARGS, "--drop-highest-loss", "5",
                         "--json", "-")
    assert code == 0
    result = json.loads(out)  # exactly one JSON object on stdout
    assert set(result["params"]) == {"E", "A", "B", "alpha", "beta"}
    expected = {"E": 1.817, "A": 477.8, "B": 2143, "alpha": 0.3473, "beta": 0.3672}
    for name, value in expected.items():
        assert result["params"][name] == pytest.approx(value, rel=0.01)
    assert result["law"] == "chinchilla" and result["n_points"] == 240
    assert {"a", "b", "G", "objective", "ci"} <= set(result)
    assert any("D = C/(6N)" in note for note in result["notes"])


def test_fit_table_output_and_json_file(capsys, sweep, tmp_path):
    code, out, _ = run(capsys, "fit", "isoflop", str(sweep), "--json", str(tmp_path / "iso.json"))
    assert code == 0 and "N_opt" in out and "a " in out
    saved = json.loads((tmp_path / "iso.json").read_text())
    assert {"a", "b", "budgets"} <= set(saved)
    assert set(saved["budgets"][0]) == {"C", "N_opt", "D_opt", "L_opt"}


@pytest.mark.parametrize("law,params,extra", [
    ("power", {"E", "A", "alpha"}, set()),
    ("loglinear", {"a", "b"}, {"error_rate"}),
    ("sigmoid", {"A", "B", "C_mid", "R0"}, set()),
])
def test_fit_json_params_per_law(capsys, sweep, law, params, extra):
    code, out, _ = run(capsys, "fit", law, str(sweep), "--json", "-", "--bootstrap", "20")
    assert code == 0
    result = json.loads(out)
    assert set(result["params"]) == params and extra <= set(result)
    assert set(result["ci"]) >= params


@pytest.mark.parametrize("case", ["missing_file", "missing_column", "negative_n", "nan_loss", "too_few", "unknown_law"])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, case):
    csv = tmp_path / "runs.csv"
    rows = {"negative_n": "-1e8,1e18,3.0", "nan_loss": "1e8,1e18,nan"}.get(case, "1e8,1e18,3.0")
    csv.write_text("n_params,flops,eval_loss\n" + rows + "\n2e8,2e18,2.9\n3e8,3e18,2.8\n")
    argv = {
        "missing_file": ["fit", "chinchilla", str(tmp_path / "absent.csv")],
        "missing_column": ["fit", "chinchilla", str(csv), "--loss", "final_loss"],
        "unknown_law": ["fit", "kaplan", str(csv)],
    }.get(case, ["fit", "chinchilla", str(csv)])
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("scaling fit: error:")


def test_bad_input_from_a_real_process_is_one_line_on_stderr(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scaling", "fit", "chinchilla", str(tmp_path / "absent.csv")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"scaling fit: error: {tmp_path / 'absent.csv'}: no such file or sweep directory"]


def test_plot_analysis_file_writes_figures_and_report(capsys, tmp_path):
    code, out, err = run(capsys, "plot", str(REPO / "analysis/chinchilla_epoch.yaml"), "--out", str(tmp_path),
                         "--bootstrap", "10", "--figures", "isoflop,isoloss_contours")
    assert code == 0, err
    assert {p.name for p in tmp_path.iterdir()} == {"isoflop.png", "isoflop.svg", "isoloss_contours.png",
                                                     "isoloss_contours.svg", "report.md"}
    assert "excluded" in err  # the noisy rounded-C budgets are named


def test_plot_without_out_or_with_unknown_figure_is_a_user_error(capsys, sweep):
    code, _, err = run(capsys, "plot", str(sweep))
    assert code == 2 and "--out" in err
    code, _, err = run(capsys, "plot", str(sweep), "--out", "x", "--figures", "pie")
    assert code == 2 and "pie" in err and len(err.strip().splitlines()) == 1


def test_help_lists_fit_and_plot(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "fit" in out and "plot" in out
