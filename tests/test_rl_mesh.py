"""GRPO on a mesh: the same run on 8 simulated devices as on 1, for a dense and an MoE policy; the MoE
router keeps its auxiliary losses and its aux-free bias updates in RL; evaluation samples on the mesh as
rollouts do; a run whose loss stops being finite ends `diverged`, as pretraining does."""
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from scaling.config.base import validate
from scaling.config.model import MeshConfig
from scaling.config.rl import EvalSettings, RLConfig, SamplingConfig
from scaling.config.run import run_config_from_dict
from scaling.errors import RunFailed
from scaling.model.moe import RouterBias
from scaling.parallel import make_mesh
from scaling.rl.checkpoints import load_policy
from scaling.rl.evaluate import Evaluator, evaluate_policy
from scaling.rl.loop import run_rl
from scaling.rl.tasks import get_task
from scaling.train import run_training

MATH = {"min_digits": 1, "max_digits": 1, "min_steps": 1, "max_steps": 1, "operations": ["+", "-"]}
DENSE = {"name": "tiny-dense", "D": 32, "L": 1, "H": 2, "F": 64, "max_seq_len": 64, "dtype": "float32"}
MOE = {**DENSE, "name": "tiny-moe", "moe": {"n_experts": 4, "top_k": 2, "d_expert": 32, "router": "sigmoid",
                                            "aux_free_bias": True, "bias_update_rate": 0.01}}


def pretrain(root: Path, model: dict) -> Path:
    run_dir = root / model["name"]
    run_training(run_config_from_dict({
        "model": model, "data": {"source": "synthetic-math", "math": MATH}, "mesh": {"devices": 1},
        "optimizer": {"lr": 1e-2, "warmup": 2},
        "train": {"tokens": 8 * 64 * 12, "seq_len": 64, "batch_size": 8, "eval_every": 12, "checkpoint_every": 12,
                  "eval_batches": 1, "progress": False}}), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bases")
    return {"dense": pretrain(root, DENSE), "moe": pretrain(root, MOE)}


def rl(mesh: dict, **changes) -> RLConfig:
    cfg = {"task": {"name": "arithmetic", "params": MATH}, "sampling": {"max_new": 6},
           "grpo": {"group_size": 4, "prompts_per_step": 2, "max_prompt_tokens": 16}, "budget": {"steps": 3},
           "eval": {"every": 3, "problems": 8, "pass_k": 1}, "mesh": mesh, "checkpoint_every": 3, "log_every": 1,
           "progress": False, **changes}
    return validate(RLConfig, cfg)


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_rl_on_eight_devices_matches_one_device(bases, kind, tmp_path):
    one = run_rl(rl({"devices": 1}), bases[kind], tmp_path / "one")
    eight = run_rl(rl({"devices": 8, "data": 2, "fsdp": 4}), bases[kind], tmp_path / "eight")
    a, b = rows(tmp_path / "one"), rows(tmp_path / "eight")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 1, 2, 3]
    for x, y in zip(a[1:], b[1:]):
        assert x["reward"] == y["reward"] and x["response_len"] == y["response_len"]  # the same rollouts
        for key in ("pg_loss", "grad_norm"):
            assert y[key] == pytest.approx(x[key], rel=1e-4, abs=1e-7), (x["step"], key)
    assert one["accuracy"] == eight["accuracy"]
    if kind == "moe":  # the router's losses are part of the RL objective, and its bias moves
        assert all(r["moe_lb_loss"] > 0 for r in a[1:])
        before, after = load_policy(bases[kind]), load_policy(tmp_path / "eight")
        moved = [np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in
                 zip(_router_biases(before.non_trainable), _router_biases(after.non_trainable))]
        assert moved and min(moved) > 0


def _router_biases(non_trainable) -> list:
    return [v.get_value() for v in jax.tree.leaves(non_trainable, is_leaf=lambda v: isinstance(v, RouterBias))
            if isinstance(v, RouterBias)]


def test_evaluation_samples_on_the_mesh_like_rollouts_and_matches_one_device(bases):
    """Greedy pass@1 and sampled pass@k / maj@k of one policy on data 2 x fsdp 4 equal one device's (the
    shapes of the RL runs above: their compiled sampler is reused), and the sampler's prompts and
    completions are split over the data axes as the rollouts' are."""
    settings = EvalSettings.of(rl({"devices": 1}, eval={"every": 3, "problems": 8, "pass_k": 2, "pass_k_problems": 4}))
    task = get_task(settings.task.name, **settings.task.params)
    problems = task.eval_problems(settings.eval.problems)
    results = {}
    for name, mesh_cfg in {"one": MeshConfig(devices=1), "eight": MeshConfig(devices=8, data=2, fsdp=4)}.items():
        policy, mesh = load_policy(bases["dense"], mesh_cfg), make_mesh(mesh_cfg)
        results[name] = evaluate_policy(policy.graphdef, policy.states, policy.tokenizer, task, problems, settings,
                                        0, mesh)
    assert results["one"] == results["eight"] and {"accuracy", "pass@2", "maj@2"} <= results["one"].keys()

    evaluator = Evaluator(policy.graphdef, policy.tokenizer, task, settings.prompt_tokens, 6, mesh)
    assert evaluator.batch_size == 8  # rounded up to the 8-way data-parallel size
    toks = np.full((8, settings.prompt_tokens), policy.tokenizer.pad_id, np.int32)
    out, lengths = evaluator.generate(policy.states, toks, np.ones_like(toks, bool),
                                      SamplingConfig(max_new=6, temperature=0.0), jax.random.key(0))
    for array in (out, lengths):
        assert len(array.sharding.device_set) == 8 and array.sharding.shard_shape(array.shape)[0] == 1


def poisoned_copy(run_dir: Path, into: Path) -> Path:
    """A copy of a run whose newest checkpoint holds non-finite weights: what a numerically broken policy
    looks like to the next run that starts from it."""
    import shutil

    import orbax.checkpoint as ocp

    shutil.copytree(run_dir, into)
    state_dir = max((into / "checkpoints").glob("[0-9]*"), key=lambda p: int(p.name)) / "state"
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(state_dir.resolve())
    state["params"] = jax.tree.map(lambda x: np.full_like(np.asarray(x), np.inf), state["params"])
    shutil.rmtree(state_dir)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(state_dir.resolve(), state)
    return into


def test_rl_whose_loss_is_no_longer_finite_ends_diverged(bases, tmp_path):
    broken = poisoned_copy(bases["dense"], tmp_path / "broken-base")
    with pytest.raises(RunFailed, match="diverged"):
        run_rl(rl({"devices": 1}), broken, tmp_path / "run")
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["status"] == "diverged" and "at step 1" in summary["reason"]
    assert not [p for p in (tmp_path / "run/checkpoints").glob("[0-9]*")]  # nothing non-finite was saved
