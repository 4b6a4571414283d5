"""The wheel works outside the checkout: built here, installed into a fresh venv, run from an empty folder.

The venv sees this machine's site-packages (--system-site-packages) for jax & co. but holds its own copy of
`scaling` from the wheel, so the bundled recipes, ladder and sweeps must come from the package data.
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, cwd, **kw):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "PYTHONPATH": ""}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def test_wheel_installs_and_runs_bundled_recipes_from_any_directory(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path / "dist")], ROOT)
    (wheel,) = (tmp_path / "dist").glob("scaling-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    _run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    scaling = str(venv / "bin/scaling")

    imported = _run([str(venv / "bin/python"), "-c", "import scaling; print(scaling.__file__)"], work)
    assert imported.startswith(str(venv)), imported  # the wheel's copy, not this checkout
    assert _run([scaling, "--version"], work).strip() == "scaling 0.1.0"
    # A bundled recipe by name, its model a ladder name (dense-100k), for a few steps.
    _run([scaling, "train", "tiny-math", "--out", "run", "--set", "train.tokens=4096", "--quiet"], work)
    assert (work / "run/summary.json").is_file() and (work / "run/config.yaml").read_text().count("dense-100k")
    # A bundled sweep by its path as the README writes it, planned against the bundled base recipes.
    planned = _run([scaling, "sweep", "submit", "sweeps/demo-math-cpu.yaml", "--dry-run", "--no-probe"], work)
    assert "runs (dry run: nothing written)" in planned
    assert sorted(p.name for p in work.iterdir()) == ["run"]
