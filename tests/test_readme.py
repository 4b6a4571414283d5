"""Every command in README.md is exercised: run as written, or, where it would take minutes or a GPU,
checked by the real argument parser and then run by the test that owns it.

Commands run in a scratch folder whose `configs/`, `sweeps/`, `analysis/` link to the repository's,
so `runs/` never lands in the checkout.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from scaling.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# How each README command is exercised beyond parsing (matched on its first words).
RUN = "run"  # run exactly as written, in order, exit code 0
ELSEWHERE = {
    "scaling demo": "tests/test_demo.py runs the demo's steps on smaller sweeps",
    "scaling compare runs/demo": "tests/test_demo.py and tests/test_compare.py run compare on real sweeps",
    "scaling sweep submit sweeps/gpu-isoflop.yaml": "expanded with --dry-run below (needs GPUs and a Ray cluster)",
    "scaling train configs/train/math-3step-cpu.yaml": "tests/test_rl_evidence.py runs this recipe (3 min)",
    "scaling rl configs/rl/arithmetic-3step-cpu.yaml": "tests/test_rl_evidence.py runs this recipe (3 min)",
    "scaling sweep submit sweeps/split-cpu.yaml": "measured by hand (8 min); tests/test_sweep_split.py runs a tiny "
                                                  "split sweep end to end, killed and resumed",
    "scaling sweep status runs/split-cpu": "tests/test_sweep_split.py shows a split sweep's status",
    "scaling fit split runs/split-cpu": "tests/test_sweep_split.py fits a split sweep directory",
    "scaling compare runs/split-cpu": "tests/test_sweep_split.py reports a tiny split sweep, test-time sampling included",
    "scaling data prepare /data/raw": "tests/test_data_shards.py prepares shards (the GPU sweep's corpus)",
    "scaling data prepare corpus/": "tests/test_data_shards.py prepares shards with a tokenizer built in the test",
    "scaling train my-corpus.yaml": "tests/test_data_shards.py trains on shards with a run config like the one shown",
}


def readme_commands() -> list[str]:
    """The shell commands of the README's ```bash blocks, `&&` chains split, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def how(command: str) -> str:
    for prefix, where in ELSEWHERE.items():
        if command.startswith(prefix):
            return where
    return RUN


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("readme")
    work = base / "work"
    work.mkdir()
    for name in ("configs", "sweeps", "analysis"):
        (work / name).symlink_to(ROOT / name)
    return work


def test_the_quickstart_is_the_two_documented_commands():
    commands = readme_commands()
    assert commands[:4] == ['python3 -m pip install -e .', 'scaling demo',
                            'python3 -m pip install -e ".[dev]"', 'python3 -m pytest']
    assert (ROOT / "docs/demo-accuracy-vs-compute.png").is_file()
    assert "python3 -m pytest" in (ROOT / ".ci/run").read_text()


def test_every_scaling_command_parses_and_names_files_that_exist():
    parser = build_parser()
    for command in readme_commands():
        argv = shlex.split(command)
        if argv[0] != "scaling":
            continue
        parser.parse_args(argv[1:])  # argparse exits (SystemExit) on an unknown option
        for arg in argv[1:]:
            if arg.startswith(("configs/", "sweeps/", "analysis/")):
                assert (ROOT / arg).exists(), f"README names {arg}, which does not exist"


def test_the_gpu_sweep_of_the_readme_expands_on_the_prepared_corpus(capsys, tmp_path):
    from scaling.sweep.submit import plan_sweep

    (command,) = [c for c in readme_commands() if c.startswith("scaling sweep submit sweeps/gpu-isoflop.yaml")]
    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "never")
    assert main([*argv, "--dry-run", "--no-probe"]) == 0
    assert "runs (dry run: nothing written)" in capsys.readouterr().out and not (tmp_path / "never").exists()
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    plan, resolved = plan_sweep("sweeps/gpu-isoflop.yaml", overrides)
    assert resolved["set"]["data.paths"] == ["/data/my-corpus"]  # what SWEEP_DIR/sweep.yaml records
    for run in plan.runs:
        assert run.config.data.source == "shards" and run.config.data.paths == ["/data/my-corpus"]
        assert run.config.model.V == 50304


def test_readme_commands_run_as_written(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    ran = []
    for command in readme_commands():
        argv = shlex.split(command)
        if argv[0] != "scaling" or how(command) != RUN:
            continue
        assert main(argv[1:]) == 0, command
        ran.append(command)
        capsys.readouterr()
    assert len(ran) >= 10
    assert (workdir / "runs/example.csv").read_text().count("\n") == 5  # header + 4 runs
    assert (workdir / "runs/tiny-math-rl/summary.json").is_file()


def test_the_sweep_file_shown_in_the_readme_is_the_bundled_one():
    shown = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    assert shown in (ROOT / "sweeps/example.yaml").read_text()
