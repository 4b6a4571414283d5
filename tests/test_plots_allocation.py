"""The split and test-time figures are drawn from real fits and written as PNG + SVG by `scaling fit --plot`."""
from pathlib import Path

from scaling.cli.main import main

DATA = Path(__file__).resolve().parents[1] / "analysis/data/allocation_synthetic"


def test_fit_plot_writes_split_and_testtime_figures(tmp_path, capsys):
    assert main(["fit", "split", str(DATA / "split.csv"), "--bootstrap", "50", "--plot", str(tmp_path)]) == 0
    assert main(["fit", "testtime", str(DATA / "testtime.csv"), "--y", "majority", "--bootstrap", "50",
                 "--plot", str(tmp_path)]) == 0
    for name in ("split", "testtime"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 50_000  # three (two) drawn panels, not an empty canvas
        svg = (tmp_path / f"{name}.svg").read_text()
        assert "best RL share" in svg or "iso-accuracy" in svg
    assert "figures:" in capsys.readouterr().err


def test_plot_is_refused_for_other_laws_and_unwritable_dirs(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["fit", "split", str(DATA / "split.csv"), "--plot", str(blocker / "sub")]) == 2
    assert "--plot" in capsys.readouterr().err
    assert main(["fit", "loglinear", str(DATA / "split.csv"), "--plot", str(tmp_path)]) == 2
    assert "scaling plot" in capsys.readouterr().err


def test_the_shipped_tables_are_what_make_py_writes(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_allocation", DATA / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    monkeypatch.setattr(make, "HERE", tmp_path)
    make.main()
    for name in ("split.csv", "testtime.csv"):
        assert (tmp_path / name).read_text() == (DATA / name).read_text()
