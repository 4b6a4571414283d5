"""`scaling demo` end to end on smaller sweeps: every step runs for real (subprocess trainings, GRPO,
fits, compare), then a second demo reuses everything and trains nothing.

The sweeps are the test-size ones of tiny_sweeps.py; the run itself is the session fixture
`tiny_demo` (conftest.py), whose sweep dirs the compare tests reuse.
"""
from __future__ import annotations

import json

import pytest
import yaml

from scaling.cli.main import main
from scaling.demo import run_demo
from scaling.sweep.registry import Registry


@pytest.fixture
def demo(tiny_demo):
    return tiny_demo


def test_demo_runs_every_step_and_ends_with_reports_and_a_five_line_summary(demo):
    root, _, result, lines = demo
    out = root / "out"
    for sweep in ("isoflop", "math", "rlvr"):
        rows = Registry(out / sweep / "registry.sqlite").runs()
        assert rows and all(r["status"] == "done" for r in rows), sweep
    assert len(Registry(out / "math/registry.sqlite").runs()) == 4
    assert len(Registry(out / "rlvr/registry.sqlite").runs()) == 2  # compute-optimal model of each budget
    # The RL sweep file the demo ran is kept, pointed at the demo's own math sweep.
    ran = yaml.safe_load((out / "sweeps/rl.yaml").read_text())
    assert ran["init"]["sweep"] == str(out / "math")
    for report in (out / "laws/report.md", out / "compare/report.md"):
        assert report.is_file() and report.stat().st_size > 500
    assert (out / "compare/accuracy_vs_total_compute.png").is_file()
    assert list((out / "laws").glob("*.png"))
    summary = result["summary"]
    assert len(summary) == 5 and summary == lines[-5:]
    assert summary[0].startswith("isoFLOP") and summary[1].startswith("Chinchilla")
    assert "per decade of pretraining" in summary[2] and summary[3].startswith("RLVR")
    assert any(str(out / "compare/report.md") in line for line in lines)
    # The comparison's metric is sampled pass@1, and the report, its JSON, the axes and the summary say so.
    compared = json.loads((out / "compare/compare.json").read_text())
    assert compared["metric"] == "sampled pass@1" and "mean of 2 samples" in compared["metric_label"]
    assert "sampled pass@1" in (out / "compare/report.md").read_text() and "sampled pass@1" in summary[2]
    assert compared["checks"] and all(c["equal"] for c in compared["checks"])  # RL's own step-0 pass@1
    # Means over 8 problems x 2 samples: multiples of 1/16, on both axes.
    values = [p["accuracy"] for p in compared["pretrain"]["points"]]
    values += [p["accuracy"] for r in compared["rl"]["runs"] for p in r["curve"]]
    assert values and all(abs(v * 16 - round(v * 16)) < 1e-9 for v in values)


def test_second_demo_reuses_every_run_and_evaluation(demo, monkeypatch):
    root, sweeps, first, _ = demo
    import scaling.compare.collect as collect

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a second demo must read the cached evaluations")

    out = root / "out"

    def runs_and_logs():
        """Per sweep, each run's registry row (a run started again gets a new attempt and start time)
        and the bytes of every metrics log (a run trained again appends to it)."""
        rows = {sweep: {r["run_id"]: {k: v for k, v in r.items() if k not in ("updated_at", "heartbeat_at")}
                        for r in Registry(out / sweep / "registry.sqlite").runs()}
                for sweep in ("isoflop", "math", "rlvr")}
        return rows, {p: p.read_bytes() for p in out.glob("*/runs/*/metrics.jsonl")}

    before = runs_and_logs()
    monkeypatch.setattr(collect, "evaluate_on_rl_task", no_evaluation)
    lines: list[str] = []
    again = run_demo(out, sweeps, max_parallel=2, bootstrap=20, say=lines.append)
    assert again["summary"] == first["summary"]
    after = runs_and_logs()
    assert after[0] == before[0] and all(rows for rows in after[0].values())  # nothing planned or started anew
    assert after[1] == before[1] and len(after[1]) >= 4  # nothing trained further


def test_demo_with_a_missing_sweep_file_exits_2_with_one_line(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "out"), "--math-sweep", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nope.yaml" in err
    assert not (tmp_path / "out").exists()


def test_headline_numbers_line_up_across_seeds_and_their_spread_is_reported(demo, tmp_path, capsys):
    root, _, result, _ = demo
    out = root / "out"
    head = json.loads((out / "headline.json").read_text())
    numbers = head["numbers"]
    assert head["seed"] == 0 and head["metric"] == "sampled pass@1"
    pre = result["compare"].comparison.slopes["pretrain"]
    assert numbers["pretraining: sampled pass@1 per decade of compute"] == {"value": pytest.approx(pre.value),
                                                                            "ci": pytest.approx(list(pre.ci))}
    assert ("isoFLOP exponent a (N_opt ∝ C^a)" in numbers) == ("isoflop" in result["laws"].fits)
    # Keyed by the RL run's base model, not by run ids, which differ between seeds.
    assert sum(name.startswith("RL from math") and name.endswith("gain over the run") for name in numbers) == 2
    assert not any(r["run_id"] in name for r in Registry(out / "math/registry.sqlite").runs() for name in numbers)

    # Another seed's demo: the same numbers, each moved by 0.01.
    other = tmp_path / "seed1"
    other.mkdir()
    shifted = {name: {**n, "value": n["value"] + 0.01} for name, n in numbers.items()}
    (other / "headline.json").write_text(json.dumps({**head, "seed": 1, "numbers": shifted}))
    report = tmp_path / "floor"
    assert main(["demo", "--noise-floor", str(out), str(other), "--out", str(report)]) == 0
    floor = json.loads((report / "noise_floor.json").read_text())
    assert floor["seeds"] == [0, 1] and len(floor["rows"]) == len(numbers)
    assert all(row["spread"] == pytest.approx(0.01) for row in floor["rows"])
    assert "| seed 0 | seed 1 | spread |" in (report / "noise_floor.md").read_text()
    capsys.readouterr()

    # One demo, or the same seed twice, says nothing about seed noise: refused in one line.
    for dirs in ([out], [out, out]):
        assert main(["demo", "--noise-floor", *map(str, dirs), "--out", str(tmp_path / "no")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["demo", "--noise-floor", str(out), str(tmp_path), "--out", str(tmp_path / "no")]) == 2
    assert "headline.json" in capsys.readouterr().err
    # Its report never lands in a sweep's (or run's) own files.
    assert main(["demo", "--noise-floor", str(out), str(other), "--out", str(out / "math")]) == 2
    assert "is a sweep directory" in capsys.readouterr().err and not (out / "math/noise_floor.md").exists()
