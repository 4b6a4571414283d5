"""The compiled train step computes the textbook decoder and AdamW: pins the maths while the step is tuned.

The reference below is written from the equations, not from scaling.model: a pre-norm decoder with RMSNorm,
rotary embeddings (rotate-half), grouped-query causal attention, a SwiGLU MLP and an untied output layer over
the real vocabulary only (the model pads it to 384 and masks the padding); the mean next-token cross-entropy
over unmasked positions; global-norm clipping and AdamW with decoupled decay on the matrices. Both start from
the model's initial parameters and take the same 4 steps; losses and parameters agree to float32 rounding.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.config.run import run_config_from_dict
from scaling.model import build_model
from scaling.train.optim import make_optimizer
from scaling.train.step import compile_steps, init_train_state

V, B, S, STEPS = 258, 4, 12, 4
MODEL = {"D": 16, "L": 2, "H": 4, "KV": 2, "F": 40, "max_seq_len": S, "dtype": "float32"}
OPT = {"lr": 3e-3, "schedule": "constant", "warmup": 0, "weight_decay": 0.1, "grad_clip": 1.0}
DECAYED = {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down", "head"}  # norms and the embedding are not


def rms_norm(x, scale):
    return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * scale


def rotate(x, pos, theta=10_000.0):
    """Rotary embedding of x [B, S, heads, E]: pairs (i, i + E/2) turn by pos * theta^(-2i/E)."""
    half = x.shape[-1] // 2
    angle = pos[:, None] * theta ** (-np.arange(half) * 2.0 / x.shape[-1])  # [S, E/2]
    cos, sin = jnp.cos(angle)[None, :, None], jnp.sin(angle)[None, :, None]
    a, b = x[..., :half], x[..., half:]
    return jnp.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def reference_loss(p, inputs, targets, mask):
    n_layers, n_heads, n_kv = MODEL["L"], MODEL["H"], MODEL["KV"]
    pos = np.arange(S, dtype=np.float32)
    x = p["embed"][inputs]
    for i in range(n_layers):
        lp = {k: v[i, 0] for k, v in p["layers"].items()}
        mp = {k: v[i, 0] for k, v in p["mlp"].items()}
        h = rms_norm(x, lp["ln1"])
        q = rotate(jnp.einsum("bsd,dhe->bshe", h, lp["wq"]), pos)
        k = rotate(jnp.einsum("bsd,dhe->bshe", h, lp["wk"]), pos)
        v = jnp.einsum("bsd,dhe->bshe", h, lp["wv"])
        k, v = (jnp.repeat(t, n_heads // n_kv, axis=2) for t in (k, v))  # query head j reads kv head j // 2
        scores = jnp.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(q.shape[-1])
        scores = jnp.where(np.tril(np.ones((S, S), bool)), scores, -jnp.inf)
        attn = jnp.einsum("bhqk,bkhe->bqhe", jax.nn.softmax(scores, axis=-1), v)
        x = x + jnp.einsum("bqhe,hed->bqd", attn, lp["wo"])
        h = rms_norm(x, lp["ln2"])
        gate, up = h @ mp["w_gate"], h @ mp["w_up"]
        x = x + (gate * jax.nn.sigmoid(gate) * up) @ mp["w_down"]
    logits = rms_norm(x, p["final_norm"]) @ p["head"][:, :V]
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return (nll * mask).sum() / mask.sum()


def reference_training(params, batch, steps):
    """Clip to global norm 1, then AdamW: m, v with bias correction, decay on the DECAYED matrices."""
    b1, b2, eps, lr, wd = 0.9, 0.95, 1e-8, OPT["lr"], OPT["weight_decay"]
    grad_fn = jax.jit(jax.value_and_grad(reference_loss))
    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    losses = []
    for t in range(1, steps + 1):
        loss, g = grad_fn(params, batch["inputs"], batch["targets"], batch["mask"])
        losses.append(float(loss))
        norm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(g)))
        g = jax.tree.map(lambda x: x * jnp.minimum(1.0, 1.0 / norm), g)
        m = jax.tree.map(lambda a, x: b1 * a + (1 - b1) * x, m, g)
        v = jax.tree.map(lambda a, x: b2 * a + (1 - b2) * x * x, v, g)

        def update(path, w, mt, vt):
            step = (mt / (1 - b1**t)) / (jnp.sqrt(vt / (1 - b2**t)) + eps)
            if path[-1].key in DECAYED:
                step = step + wd * w
            return w - lr * step

        params = jax.tree_util.tree_map_with_path(update, params, m, v)
    return losses, params


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, (B, S + 1), dtype=np.int32)
    mask = np.ones((B, S), np.float32)
    mask[0, :5] = 0  # a masked prefix: the mean is over the other positions
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:], "mask": mask}


@pytest.fixture(scope="module")
def initial_params():
    cfg = run_config_from_dict({"model": MODEL, "train": {"tokens": 1000, "seq_len": S, "batch_size": B}})
    return nnx.to_pure_dict(nnx.split(build_model(cfg.model, None, seed=3), nnx.Param, ...)[1])


@pytest.fixture(scope="module")
def reference(initial_params, batch):
    return reference_training(initial_params, batch, STEPS)


@pytest.mark.parametrize("scan_layers", [True, False], ids=["scanned", "unrolled"])
def test_train_step_matches_a_plain_reference_decoder_and_adamw(scan_layers, batch, reference):
    cfg = run_config_from_dict({"model": {**MODEL, "scan_layers": scan_layers}, "optimizer": OPT,
                                "train": {"tokens": 1000, "seq_len": S, "batch_size": B}})
    model = build_model(cfg.model, None, seed=3)
    tx, schedule = make_optimizer(cfg.optimizer, STEPS)
    graphdef, state, shardings = init_train_state(model, tx, None)
    steps = compile_steps(cfg.model, graphdef, shardings, tx, None)
    losses = []
    for i in range(STEPS):
        state, metrics = steps.train_step(state, batch, np.float32(schedule(i)))
        losses.append(float(metrics["loss"]))
    ref_losses, ref_params = reference
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert ref_losses[-1] < ref_losses[0] - 0.01  # the steps moved the model: the comparison is not vacuous
    # atol: float32 rounding of parameters ~0.02 after 4 steps is ~1e-7; one step's update is lr = 3e-3.
    got = nnx.to_pure_dict(state["params"])
    flat_ref = dict(jax.tree_util.tree_leaves_with_path(ref_params))
    for path, value in jax.tree_util.tree_leaves_with_path(got):
        np.testing.assert_allclose(value, flat_ref[path], rtol=1e-5, atol=2e-7, err_msg=jax.tree_util.keystr(path))
