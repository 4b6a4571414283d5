"""Sweep expansion: designs -> the expected (N, D, C) runs, stable ids, rules, WSD forks."""
from __future__ import annotations

import shutil

import pytest
import yaml

from scaling.config.run import resolve_model, run_config_from_dict
from scaling.errors import UserError
from scaling.sweep.expand import expand, load_sweep, spec_from_dict
from scaling.sweep.plan import run_id_of
from scaling.sweep.rules import evaluate

# Four tiny sizes; seq_len 32 and 4 x 32 = 128-token steps keep the arithmetic easy to follow.
MODELS = [{"name": f"t{i}", "D": d, "L": l, "H": 2, "F": 2 * d, "max_seq_len": 64}
          for i, (d, l) in enumerate([(16, 1), (32, 1), (32, 2), (64, 2)])]
BASE = {"data": {"source": "stdlib-code"}, "train": {"seq_len": 32, "batch_size": 4},
        "optimizer": {"lr": 0.003, "warmup": 2}}
BATCH_TOKENS = 128


def spec(**fields):
    return spec_from_dict({"base": BASE, "models": MODELS, **fields})


def per_token(model: dict, convention: str = "6n") -> tuple[int, float]:
    """N (active non-embedding parameters) and training FLOPs per token of one of MODELS, by hand: SwiGLU,
    RMS norms, rotary positions, H = KV heads, V = 258 byte tokens padded to 384, seq_len 32."""
    D, L, F = model["D"], model["L"], model["F"]
    n = L * (4 * D * D + 3 * D * F + 2 * D) + D  # q, k, v, o + SwiGLU's 3 matrices + 2 norms per layer; final norm
    if convention == "6n":
        return n, 6 * n
    # 3 x forward: every weight matmul, the D x 384 output layer, QK^T + PV against half of the 32 keys.
    return n, 3 * (2 * L * (4 * D * D + 3 * D * F) + 2 * D * 384 + L * 2 * 2 * D * 32 // 2)


@pytest.mark.parametrize("convention", ["6n", "full"])
def test_grid_runs_every_model_at_every_budget_with_tokens_from_the_flop_convention(convention):
    budgets = [3e8, 1e9]
    plan = expand(spec(design="grid", budgets=budgets, flop_convention=convention))
    got = {(r.model, r.budget): (r.n, r.tokens, r.flops) for r in plan.runs}
    assert len(got) == len(plan.runs) == len(MODELS) * len(budgets)
    for m in MODELS:
        n, fpt = per_token(m, convention)
        for c in budgets:
            tokens = round(c / fpt / BATCH_TOKENS) * BATCH_TOKENS  # whole steps
            assert got[(m["name"], c)] == (n, tokens, pytest.approx(fpt * tokens))
            assert abs(fpt * tokens - c) <= fpt * BATCH_TOKENS / 2  # within half a step of the budget
    assert all(r.config.train.flop_convention == convention for r in plan.runs)


def test_grid_in_tokens_takes_token_counts_as_given_rounded_to_whole_steps():
    plan = expand(spec(design="grid", tokens=[1280, 5000]))
    assert sorted({r.tokens for r in plan.runs}) == [1280, 4992]
    assert all(r.budget is None and r.steps == r.tokens // BATCH_TOKENS for r in plan.runs)
    assert {r.name.split("-")[1] for r in plan.runs} == {"D1.28e3", "D5e3"}


def test_isoflop_keeps_the_models_whose_tokens_per_param_fall_in_range():
    lo, hi = 0.1, 200.0
    budgets = [1e9, 1e10]  # t0 falls out of range at 1e10 (D/N = 245), t3 at 1e9 (D/N = 0.025)
    plan = expand(spec(design="isoflop", budgets=budgets, tokens_per_param=[lo, hi]))
    expected = set()
    for m in MODELS:
        n, fpt = per_token(m)
        for c in budgets:
            if lo <= c / fpt / n <= hi:
                expected.add((m["name"], c))
    assert {(r.model, r.budget) for r in plan.runs} == expected
    assert ("t0", 1e10) not in expected and ("t3", 1e9) not in expected
    assert all(sum(r.budget == c for r in plan.runs) >= 3 for c in budgets)
    assert plan.warnings  # fewer than 5 models per budget is allowed, but said


def test_isoflop_refuses_a_budget_with_fewer_than_three_models_and_names_it():
    with pytest.raises(UserError, match=r"budgets: 1e9 FLOPs has only \d models"):
        expand(spec(design="isoflop", budgets=[1e9], tokens_per_param=[100, 110]))


def test_the_same_file_always_gives_the_same_run_ids(tmp_path):
    data = {"design": "grid", "base": BASE, "models": MODELS, "budgets": [3e8], "seeds": [0, 1]}
    first = tmp_path / "a.yaml"
    first.write_text(yaml.safe_dump(data))
    moved = tmp_path / "elsewhere" / "b.yaml"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    ids = [[r.run_id for r in expand(load_sweep(p), p).runs] for p in (first, first, moved)]
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids[0])) == len(ids[0]) == 8
    run = expand(load_sweep(first), first).runs[0]
    assert run.run_id == run_id_of(run.config) and len(run.run_id) == 12
    assert run.name == f"{run.model}-C3e8-{run.run_id}" and run.run_dir == f"runs/{run.name}"


def test_seeds_set_and_swept_fields_multiply_the_grid():
    plan = expand(spec(design="grid", tokens=[1280], seeds=[1, 2], set={"optimizer.weight_decay": 0.0},
                       sweep={"optimizer.lr": [0.001, 0.01]}))
    assert len(plan.runs) == len(MODELS) * 2 * 2
    assert {(r.seed, r.config.optimizer.lr) for r in plan.runs} == {(s, lr) for s in (1, 2) for lr in (0.001, 0.01)}
    assert all(r.config.optimizer.weight_decay == 0.0 and r.config.train.seed == r.seed for r in plan.runs)


def test_rules_set_hyperparameters_per_size():
    plan = expand(spec(design="grid", tokens=[2560], rules={
        "optimizer.lr": "0.003 * (256 / D) ** 0.5", "train.batch_size": "max(2, int(8 * 16 / D))"}))
    for r in plan.runs:
        d = r.config.model.D
        assert r.config.optimizer.lr == pytest.approx(0.003 * (256 / d) ** 0.5)
        assert r.config.train.batch_size == max(2, int(8 * 16 / d))
        assert r.tokens % (r.config.train.batch_size * 32) == 0


def test_rule_expressions_cannot_run_code():
    symbols = {"D": 64, "N": 1e5}
    assert evaluate("sqrt(D) + log(N) * 0 + min(1, 2) + round(2.6) - int(1.9)", symbols) == 8 + 0 + 1 + 3 - 1
    for bad in ["__import__('os').system('true')", "D.__class__", "(lambda: 1)()", "open('x')", "[1][0]",
                "D if D else 1", "x", "sqrt(D, base=2)", "10 ** 10 ** 10"]:
        with pytest.raises(UserError):
            evaluate(bad, symbols)
    with pytest.raises(UserError, match="rules.optimizer.lr"):
        spec(design="grid", tokens=[1280], rules={"optimizer.lr": "__import__('os')"})
    with pytest.raises(UserError, match="rules.model.D"):
        spec(design="grid", tokens=[1280], rules={"model.D": "64"})


def test_wsd_forks_trunk_is_the_longest_run_and_branches_fork_at_their_decay_start(capsys):
    tokens = [1280, 2560, 5120]
    plan = expand(spec(design="wsd_forks", tokens=tokens, models=MODELS[:2], set={"optimizer.decay_fraction": 0.2}))
    assert len(plan.runs) == 6
    for model in ("t0", "t1"):
        runs = [r for r in plan.runs if r.model == model]
        trunk = [r for r in runs if r.role == "trunk"]
        branches = [r for r in runs if r.role == "branch"]
        assert len(trunk) == 1 and len(branches) == 2
        trunk = trunk[0]
        assert trunk.tokens == 5120 and trunk.steps == 40 and plan.runs.index(trunk) < plan.runs.index(branches[0])
        starts = sorted(b.steps - round(0.2 * b.steps) for b in branches)
        assert starts == [8, 16]  # 10 and 20 steps, each minus a 20% cooldown
        assert trunk.config.train.keep_steps == starts
        assert trunk.config.optimizer.schedule == "wsd" and trunk.config.optimizer.warmup == 2
        for b in branches:
            assert b.depends_on == trunk.run_id
            assert b.config.train.fork_from.run_dir == trunk.run_dir
            assert b.config.train.fork_from.step == b.fork_step == b.steps - round(0.2 * b.steps)
            # Identical to the trunk up to the fork but for the token count.
            same = trunk.config.model_dump()
            other = b.config.model_dump()
            for d in (same, other):
                d["train"].pop("tokens"), d["train"].pop("keep_steps"), d["train"].pop("fork_from")
            assert same == other
    # Independent: 10 + 20 + 40 steps per size; forked: 40 + 2 + 4 cooldown steps.
    note = plan.notes[0]
    assert "92 steps" in note and "140 steps" in note and "saves 34%" in note


def test_wsd_forks_needs_an_absolute_warmup_shared_by_all_branches():
    with pytest.raises(UserError, match="optimizer.warmup"):
        expand(spec(design="wsd_forks", tokens=[1280, 5120], set={"optimizer.warmup": 0.05}))
    with pytest.raises(UserError, match="inside the warmup"):
        expand(spec(design="wsd_forks", tokens=[1280, 5120], set={"optimizer.warmup": 9}))


def test_wsd_forks_refuses_rules_that_change_hyperparameters_with_tokens():
    with pytest.raises(UserError, match="rules: optimizer.lr differs"):
        expand(spec(design="wsd_forks", tokens=[1280, 5120], rules={"optimizer.lr": "0.1 / tokens ** 0.5"}))


def test_ladder_models_resolve_by_name():
    plan = expand(spec_from_dict({"base": "configs/train/sweep-cpu-tiny.yaml", "models": ["dense-100k"],
                                  "tokens": [1e5]}))
    assert plan.runs[0].config.model.model_dump() == run_config_from_dict(
        {"model": resolve_model("dense-100k"), "train": {"tokens": 1}}).model.model_dump()
