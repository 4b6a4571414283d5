"""Reading fit data from CSV files and sweep registries, and refusing bad data in one line."""
import sqlite3

import numpy as np
import pytest

from scaling.errors import UserError
from scaling.laws import Columns, load_points
from scaling.laws.sources import round_significant
from scaling.laws.synthetic import isoflop_runs, write_registry


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return path


@pytest.fixture
def sweep(tmp_path):
    runs = isoflop_runs(budgets=(1e18, 1e19), runs_per_budget=5)
    x = np.logspace(17, 19, 6)
    write_registry(tmp_path, runs, {"rl1": {"flops": x, "accuracy": np.linspace(0.1, 0.5, 6)}})
    con = sqlite3.connect(tmp_path / "registry.sqlite")
    with con:  # runs that must not be fitted: unfinished, failed
        con.execute("INSERT INTO runs (run_id, kind, status, n_params, tokens, flops, eval_loss) "
                    "VALUES ('x1', 'pretrain', 'running', 10, 10, 600, 9.0), ('x2', 'pretrain', 'failed', 10, 10, 600, NULL)")
    con.close()
    return tmp_path


def test_registry_runs_are_the_finished_pretraining_runs(sweep):
    pts = load_points(sweep, "chinchilla")
    assert len(pts) == 10
    assert sorted(np.unique(pts.budget)) == [1e18, 1e19]
    assert any("column 'budget'" in n for n in pts.notes)


def test_a_sweeps_fits_default_to_its_design_n_and_total_n_on_request(sweep):
    con = sqlite3.connect(sweep / "registry.sqlite")
    with con:  # what a real sweep records: the non-embedding N its budgets were planned with
        con.execute("ALTER TABLE runs ADD COLUMN n_params_active_nonembedding INTEGER")
        con.execute("UPDATE runs SET n_params_active_nonembedding = n_params / 2")
    con.close()
    total = load_points(sweep, "isoflop", Columns(n="n_params"))
    design = load_points(sweep, "isoflop")
    np.testing.assert_allclose(design.N, total.N // 2)  # SQLite integer division
    assert design.labels["N"] == "n_params_active_nonembedding" and any("design N" in n for n in design.notes)
    assert total.labels["N"] == "n_params" and not any("design N" in n for n in total.notes)


def test_registry_curves_are_one_per_rl_run(sweep):
    pts = load_points(sweep, "sigmoid")
    assert len(pts) == 6 and set(pts.curve) == {"rl1"}
    np.testing.assert_allclose(pts.y, np.linspace(0.1, 0.5, 6))


def test_csv_with_registry_column_names_needs_no_options(tmp_path):
    path = _csv(tmp_path / "runs.csv", ["n_params", "tokens", "flops", "eval_loss"],
                [(1e8, 2e9, 1.2e18, 3.1), (2e8, 1e9, 1.2e18, 3.0), (4e8, 5e8, 1.2e18, 3.2)])
    pts = load_points(path, "isoflop")
    assert len(pts) == 3 and not any("derived" in n for n in pts.notes)
    assert any("rounded to 2 significant figures" in n for n in pts.notes)


def test_missing_tokens_are_derived_from_compute(tmp_path):
    path = _csv(tmp_path / "runs.csv", ["N", "C", "L"], [(1e8, 6e17, 3.0), (1e9, 6e18, 2.5)])
    pts = load_points(path, "chinchilla", Columns(n="N", c="C", loss="L"))
    np.testing.assert_allclose(pts.D, [1e9, 1e9])
    assert any("D = C/(6N)" in n for n in pts.notes)


def test_drop_highest_loss_keeps_losses_below_the_kth_highest(tmp_path):
    losses = [3.0, 5.0, 2.0, 4.0, 4.0, 1.0]
    path = _csv(tmp_path / "runs.csv", ["n_params", "flops", "eval_loss"], [(1e8, 1e18, v) for v in losses])
    pts = load_points(path, "chinchilla", drop_highest_loss=2)
    assert sorted(pts.loss) == [1.0, 2.0, 3.0]  # sorted(loss)[-2] = 4.0: both 4.0s go


@pytest.mark.parametrize("header,row,columns,message", [
    (["n_params", "flops", "eval_loss"], (-1e8, 1e18, 3.0), Columns(), "not positive"),
    (["n_params", "flops", "eval_loss"], (1e8, 1e18, "nan"), Columns(), "NaN"),
    (["n_params", "flops", "eval_loss"], (1e8, 1e18, "abc"), Columns(), "not a number"),
    (["size", "flops", "eval_loss"], (1e8, 1e18, 3.0), Columns(), "no column 'n_params'; set --n"),
    (["n_params", "flops", "eval_loss"], (1e8, 1e18, 3.0), Columns(d="toks"), "no column 'toks'"),
    (["n_params", "eval_loss"], (1e8, 3.0), Columns(), "set --d or --c"),
])
def test_bad_csv_input_is_a_one_line_user_error(tmp_path, header, row, columns, message):
    path = _csv(tmp_path / "bad.csv", header, [row, (2e8, 2e18, 2.9)[: len(row)]])
    with pytest.raises(UserError, match=message) as err:
        load_points(path, "chinchilla", columns)
    assert "\n" not in str(err.value)


def test_missing_source_and_non_sweep_directory_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_points(tmp_path / "nope.csv", "chinchilla")
    with pytest.raises(UserError, match="no registry.sqlite"):
        load_points(tmp_path, "chinchilla")


def test_round_significant():
    np.testing.assert_allclose(round_significant(np.array([1.44e19, 9.96e20, 3e18])), [1.4e19, 1e21, 3e18])
