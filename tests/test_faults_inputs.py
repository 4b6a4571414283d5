"""Bad input and bad output paths across the CLI (issue #20): exit 2, one line naming the problem, no
traceback, and every file that was there before left byte-identical."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from scaling.cli.main import main
from scaling.sweep.expand import load_sweep, resolved_spec
from scaling.sweep.registry import Registry
from scaling.sweep.sweepdir import claimed

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs/train/tiny-math.yaml")
MODELS = [{"name": f"t{i}", "D": d, "L": 1, "H": 2, "F": 2 * d, "max_seq_len": 64} for i, d in enumerate([16, 32])]
SWEEP = {"design": "grid", "base": {"train": {"seq_len": 32, "batch_size": 4}, "optimizer": {"warmup": 2}},
         "models": MODELS, "tokens": [1280]}


def files(*roots: Path) -> dict[str, bytes]:
    """Every file under `roots` with its bytes (lock files hold the pid of their last holder: left out)."""
    out = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        out |= {str(p): p.read_bytes() for p in paths if not p.name.endswith(".lock")}
    return out


def refused(capsys, argv: list[str], needle: str, *unchanged: Path) -> str:
    before = files(*unchanged)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err, err
    assert files(*unchanged) == before
    return err


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """A claimed sweep directory with its registry (one planned run) and a run directory inside."""
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "S"
    with claimed(out, resolved_spec(load_sweep(spec_path), spec_path), str(spec_path)):
        registry = Registry(out / "registry.sqlite")
        registry.init()
        registry.add_planned([{"run_id": "abc", "name": "t0-run", "kind": "pretrain", "status": "done",
                               "n_params": 1000, "tokens": 5000, "flops": 3e7, "eval_loss": 2.5}])
    run = out / "runs" / "t0-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {}\n")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    return out


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "RUN"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {name: tiny}\n")
    (run / "summary.json").write_text("{}\n")
    return run


# -- class 2: output flags never overwrite inputs or a run's / sweep's own files ----------------------

def test_export_onto_the_registry_or_sweep_files_is_refused_and_the_sweep_still_resumes(sweep_dir, tmp_path, capsys):
    for target in ("registry.sqlite", "sweep.yaml", "configs/x.csv", "runs/t0-run/metrics.jsonl"):
        refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", str(sweep_dir / target)], "--csv", sweep_dir)
    refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", str(tmp_path / "a.csv"), "--curves",
                     str(tmp_path / "a.csv")], "also the --csv file", sweep_dir)
    assert not (tmp_path / "a.csv").exists()
    assert main(["sweep", "status", str(sweep_dir)]) == 0  # the registry is intact
    assert main(["sweep", "export", str(sweep_dir), "--csv", str(sweep_dir / "results.csv")]) == 0  # a new file is fine


def test_eval_json_onto_the_runs_config_is_refused(run_dir, capsys):
    for name in ("config.yaml", "summary.json", "checkpoints/x.json"):
        refused(capsys, ["eval", str(run_dir), "--json", str(run_dir / name)], f"--json {run_dir / name}", run_dir)


def test_fit_json_onto_its_own_input_is_refused(sweep_dir, tmp_path, capsys):
    data = tmp_path / "x.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["flops", "eval_loss"])
        writer.writerows([[10.0 ** k, 2 + 10.0 ** (-k / 4)] for k in range(8, 14)])
    refused(capsys, ["fit", "power", str(data), "--json", str(data)], "is the input", data)
    refused(capsys, ["fit", "power", str(sweep_dir), "--json", str(sweep_dir / "registry.sqlite")], "registry.sqlite",
            sweep_dir)


# -- class 3: a sweep's model names cannot escape --out ------------------------------------------------

def test_a_model_name_with_path_separators_is_refused_before_anything_is_written(tmp_path, capsys):
    evil = {**SWEEP, "models": [{**MODELS[0], "name": "../../../escaped"}]}
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(evil))
    before = sorted(p.name for p in tmp_path.iterdir())
    for extra in ([], ["--dry-run", "--no-probe"]):
        refused(capsys, ["sweep", "submit", str(tmp_path / "evil.yaml"), "--out", str(tmp_path / "deep/er/S"), *extra],
                "model name '../../../escaped'")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# -- class 6: one line instead of a traceback ------------------------------------------------------------

def test_binary_config_and_data_files_are_one_line(tmp_path, capsys):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(128, 256)) * 4)
    table = tmp_path / "bin.csv"
    table.write_bytes(b"\xff\xfe" + bytes(range(128, 256)) * 4)
    for argv in (["train", str(binary), "--out", str(tmp_path / "o")], ["flops", str(binary)],
                 ["rl", str(binary), "--init", str(tmp_path), "--out", str(tmp_path / "o")],
                 ["sweep", "submit", str(binary), "--out", str(tmp_path / "o")]):
        refused(capsys, argv, "bin.yaml: not a text file (it is not valid UTF-8)", binary)
    refused(capsys, ["fit", "power", str(table)], "bin.csv: not a text file", table)
    refused(capsys, ["plot", str(table), "--out", str(tmp_path / "o")], "bin.csv: not a text file", table)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_registry_is_one_line_for_status_export_and_submit(sweep_dir, tmp_path, capsys, damage):
    registry = sweep_dir / "registry.sqlite"
    registry.write_bytes(b"not a database " * 100 if damage == "garbage" else registry.read_bytes()[:1000])
    refused(capsys, ["sweep", "status", str(sweep_dir)], "registry", sweep_dir)
    refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", str(tmp_path / "o.csv")], "registry", sweep_dir)
    refused(capsys, ["sweep", "submit", str(tmp_path / "sweep.yaml"), "--out", str(sweep_dir)], "registry", sweep_dir)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("field", ["model.D=1000000000", "model.F=1000000000"])
def test_a_model_that_cannot_fit_is_refused_with_its_memory_before_compiling(tmp_path, capsys, field):
    err = refused(capsys, ["train", TINY, "--set", field, "--out", str(tmp_path / "run")], "GiB")
    assert "more than the" in err and "parameters need at least" in err
    assert not (tmp_path / "run").exists()  # no config.yaml left behind


def test_absurd_and_infinite_budgets_are_refused(tmp_path, capsys):
    for tokens, needle in (([1.0e300], "1e+300 is beyond any trainable run"), ([1.0e300, float("inf")], "finite")):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({**SWEEP, "tokens": tokens}))
        refused(capsys, ["sweep", "submit", str(path), "--dry-run", "--no-probe"], needle)
        refused(capsys, ["sweep", "submit", str(path), "--out", str(tmp_path / "S")], needle)
    for sets, needle in ((["train.tokens=null", "train.flops=.inf"], "train.flops"),
                         (["train.tokens=null", "train.flops=1e300"], "beyond any trainable run"),
                         (["train.tokens=1e300"], "train.tokens")):
        refused(capsys, ["train", TINY, *[a for s in sets for a in ("--set", s)], "--out", str(tmp_path / "r")], needle)
    assert not (tmp_path / "S").exists() and not (tmp_path / "r").exists()


def test_unwritable_or_invalid_output_paths_are_one_line(sweep_dir, run_dir, tmp_path, capsys):
    a_file = tmp_path / "FILE"
    a_file.write_text("keep\n")
    (tmp_path / "DIR").mkdir()
    keep = (sweep_dir, run_dir, a_file)
    refused(capsys, ["train", TINY, "--out", "/proc/scaling-test"], "--out /proc/scaling-test", *keep)
    refused(capsys, ["train", TINY, "--out", str(a_file / "sub")], "is a file, not a directory", *keep)
    refused(capsys, ["sweep", "submit", str(tmp_path / "sweep.yaml"), "--out", str(a_file / "sub")], "--out", *keep)
    refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", str(tmp_path / "DIR")], "is a directory", *keep)
    refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", str(a_file / "x.csv")], "not a directory", *keep)
    refused(capsys, ["sweep", "export", str(sweep_dir), "--csv", "/proc/scaling-test.csv"], "cannot write in /proc",
            *keep)
    refused(capsys, ["plot", str(tmp_path / "x.csv"), "--out", str(a_file)], "exists and is not a directory", *keep)
    refused(capsys, ["plot", str(tmp_path / "x.csv"), "--out", str(run_dir)], "is a run directory", *keep)
    refused(capsys, ["compare", str(sweep_dir), str(sweep_dir), "--out", str(a_file)], "not a directory", *keep)


# -- class 7: smaller ----------------------------------------------------------------------------------

def test_a_key_given_twice_is_refused(tmp_path, capsys):
    config = tmp_path / "dup.yaml"
    config.write_text(Path(TINY).read_text() + "model: dense-300k\n")
    refused(capsys, ["train", str(config), "--out", str(tmp_path / "run")], "duplicate key 'model'", config)
    assert not (tmp_path / "run").exists()


def test_set_accepts_exact_integers_in_float_notation_and_names_an_empty_key(tmp_path, capsys):
    from scaling.config.run import load_run_config

    assert load_run_config(TINY, ["train.tokens=1e6"]).train.tokens == 1_000_000
    refused(capsys, ["train", TINY, "--set", "train.tokens=1.5e3", "--set", "train.tokens=2.5",
                     "--out", str(tmp_path / "r")], "train.tokens")
    refused(capsys, ["train", TINY, "--set", "=5", "--out", str(tmp_path / "r")], "--set '=5': no key before '='")
    refused(capsys, ["flops", TINY, "--set", "a..b=1"], "'a..b' is not a dotted key")
