"""GRPO pieces against hand-computed values, and the policy gradient of an uninformative reward."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from scaling.config.model import ModelConfig
from scaling.config.rl import GRPOConfig
from scaling.model import build_model
from scaling.model.accounting import count_model
from scaling.rl.compute import step_flops
from scaling.rl.evaluate import pass_at_k
from scaling.config.identity import run_id
from scaling.config.rl import RLConfig
from scaling.rl.grpo import group_advantages, grpo_loss, informative_groups, k3_kl, weight_negatives
from scaling.rl.policy import make_policy_fns, rollout_batch


def test_group_advantages_by_hand():
    r = jnp.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # two groups of 4
    adv = np.asarray(group_advantages(r, 4, "grpo"))
    np.testing.assert_allclose(adv[:4], [1.0, -1.0, -1.0, 1.0], rtol=1e-5)  # mean .5, std .5
    np.testing.assert_allclose(adv[4:], 0.0)  # all-equal group: no signal
    dr = np.asarray(group_advantages(r, 4, "dr_grpo"))
    np.testing.assert_allclose(dr[:4], [0.5, -0.5, -0.5, 0.5])
    assert np.asarray(informative_groups(r, 4)).tolist() == [True] * 4 + [False] * 4


def test_negative_weight_scales_only_below_average_completions_and_keeps_earlier_run_ids():
    adv = group_advantages(jnp.array([1.0, 0.0, 0.0, 1.0]), 4, "grpo")
    np.testing.assert_allclose(weight_negatives(adv, 0.25), [1.0, -0.25, -0.25, 1.0], rtol=1e-5)
    np.testing.assert_allclose(weight_negatives(adv, 0.0), [1.0, 0.0, 0.0, 1.0], rtol=1e-5)
    # RL runs made before the setting existed (no grpo.negative_weight in their config) keep their ids.
    config = RLConfig(budget={"steps": 3}).model_dump(mode="json")
    before = {**config, "grpo": {k: v for k, v in config["grpo"].items() if k != "negative_weight"}}
    assert run_id(config) == run_id(before)
    assert run_id({**config, "grpo": {**config["grpo"], "negative_weight": 0.0}}) != run_id(config)


def test_clipping_and_kl_by_hand():
    cfg = GRPOConfig(clip_low=0.2, clip_high=0.28, loss_agg="token")
    old = jnp.zeros((2, 1))
    logp = jnp.log(jnp.array([[1.5], [0.5]]))  # ratios 1.5 and 0.5
    mask = jnp.ones((2, 1))
    # Positive advantage: the ratio 1.5 is clipped to 1.28; negative advantage: 0.5 is clipped to 0.8
    # and min(ρA, clip(ρ)A) picks the clipped (smaller) value -0.8·1 → loss term 0.8.
    loss, stats = grpo_loss(logp, old, jnp.array([1.0, -1.0]), mask, cfg, max_new=1)
    assert float(loss) == pytest.approx((-1.28 + 0.8) / 2)
    assert float(stats["clip_frac"]) == 1.0
    # Ratio inside the trust region: unclipped.
    loss, _ = grpo_loss(jnp.log(jnp.array([[1.1]])), jnp.zeros((1, 1)), jnp.array([2.0]), jnp.ones((1, 1)), cfg, 1)
    assert float(loss) == pytest.approx(-2.2)
    # k3: exp(d) - d - 1 with d = ref - logp
    d = 0.3
    assert float(k3_kl(jnp.array(0.0), jnp.array(d))) == pytest.approx(np.exp(d) - d - 1)
    assert float(k3_kl(jnp.array(0.7), jnp.array(0.7))) == 0.0


def test_loss_aggregations_by_hand():
    per_token_adv = jnp.array([1.0, 1.0])
    logp = jnp.zeros((2, 3))
    mask = jnp.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # ratio 1 everywhere, so every masked token contributes -A = -1.
    tok, _ = grpo_loss(logp, logp, per_token_adv, mask, GRPOConfig(loss_agg="token"), 3)
    seq, _ = grpo_loss(logp, logp, per_token_adv, mask, GRPOConfig(loss_agg="sequence"), 3)
    const, _ = grpo_loss(logp, logp, per_token_adv, mask, GRPOConfig(loss_agg="constant"), 3)
    assert float(tok) == pytest.approx(-1.0)
    assert float(seq) == pytest.approx(-1.0)
    assert float(const) == pytest.approx(-4 / 6)


def test_reward_independent_of_the_output_gives_zero_policy_gradient():
    cfg = ModelConfig(D=32, L=1, H=2, F=64, V=64, max_seq_len=32, dtype="float32")
    model = build_model(cfg)
    graphdef, params, non_trainable = nnx.split(model, nnx.Param, ...)
    grpo = GRPOConfig(group_size=4)
    rng = np.random.default_rng(0)
    prompts, valid = rng.integers(0, 60, (8, 5)), np.ones((8, 5), bool)
    completions, lengths = rng.integers(0, 60, (8, 6)), rng.integers(1, 7, 8)
    batch = rollout_batch(prompts, valid, completions, lengths)
    constant_reward = jnp.full((8,), 0.7)
    batch["advantages"] = np.asarray(group_advantages(constant_reward, 4))
    tx = optax.sgd(1.0)
    fns = make_policy_fns(graphdef, tx, grpo, max_new=6, model_cfg=cfg)
    state = {"params": params, "opt_state": tx.init(params), "non_trainable": non_trainable,
             "step": jnp.zeros((), jnp.int32)}
    new_state, metrics = fns.update(state, batch, 1.0)
    assert float(metrics["grad_norm"]) == 0.0
    # A reward that does depend on the output moves the policy.
    batch["advantages"] = np.asarray(group_advantages(jnp.arange(8.0), 4))
    _, metrics = fns.update({**new_state}, batch, 1.0)
    assert float(metrics["grad_norm"]) > 0.0


def test_pass_at_k_estimator():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)


def test_rl_flops_split_into_rollout_and_update():
    counts = count_model(ModelConfig(D=32, L=2, H=2, F=64, V=64, max_seq_len=64), 64)
    p, g = np.array([5, 7]), np.array([3, 4])
    one = step_flops(counts, GRPOConfig(), p, g)
    # Rollout = forward over every real token, the prompt causally, each generated token against its cache.
    expected_rollout = sum(counts.forward_flops(int(a + b)) for a, b in zip(p, g))
    assert one["rollout"] == pytest.approx(expected_rollout)
    assert one["update"] == pytest.approx(3 * expected_rollout) and one["old_policy"] == 0.0
    two = step_flops(counts, GRPOConfig(epochs=2, kl_beta=0.1), p, g)
    assert two["update"] == pytest.approx(2 * one["update"])
    assert two["old_policy"] == two["reference"] == pytest.approx(expected_rollout)
