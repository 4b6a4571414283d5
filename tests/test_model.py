"""The decoder: causality, sharding invariance, MoE dispatch paths, parameter and FLOP accounting."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.config.model import MeshConfig, ModelConfig, MoEConfig
from scaling.model import build_model, count_model, lm_objective
from scaling.model.moe import RouterBias, capacity, dropless, route, with_updated_router_biases
from scaling.parallel import make_mesh

DENSE = ModelConfig(D=32, L=2, H=4, KV=2, F=64, V=64, max_seq_len=16, qk_norm=True, dtype="float32")
# remat on the MoE model: the sharded-gradient test then also covers rematerialised backward passes.
MOE = DENSE.model_copy(update={"moe": MoEConfig(n_experts=4, top_k=2, d_expert=32, every=1, n_shared_experts=1),
                               "remat": "dots"})
MOE_SIGMOID = DENSE.model_copy(update={"moe": MoEConfig(n_experts=4, top_k=2, d_expert=32, every=2, router="sigmoid",
                                                         aux_free_bias=True)})


def tokens(B=4, S=16, seed=0, V=64):
    return jax.random.randint(jax.random.key(seed), (B, S), 0, V)


@pytest.mark.parametrize("cfg", [DENSE, MOE, MOE_SIGMOID], ids=["dense", "moe", "moe-sigmoid"])
def test_changing_a_later_token_never_changes_earlier_logits(cfg):
    model = build_model(cfg)
    fwd = jax.jit(lambda t: model(t)[0])
    toks = tokens(B=2)
    base = fwd(toks)
    for t in (3, 9, 14):
        changed = toks.at[:, t + 1].set((toks[:, t + 1] + 7) % cfg.V)
        out = fwd(changed)
        np.testing.assert_array_equal(np.asarray(out[:, : t + 1]), np.asarray(base[:, : t + 1]))
        assert not np.allclose(np.asarray(out[:, t + 1]), np.asarray(base[:, t + 1]))


def _loss_and_grads(model, toks):
    graphdef, state = nnx.split(model)

    @jax.jit
    def f(state):
        def loss(state):
            logits, aux, _ = nnx.merge(graphdef, state)(toks[:, :-1])
            return lm_objective(model.cfg, logits, aux, toks[:, 1:], jnp.ones_like(toks[:, 1:]))[0], logits
        (value, logits), grads = jax.value_and_grad(loss, has_aux=True)(state)
        return value, logits, grads

    return f(state)


@pytest.mark.parametrize("cfg,mesh", [
    (DENSE, MeshConfig(fsdp=8)),
    (DENSE, MeshConfig(data=2, fsdp=2, tensor=2)),
    (MOE, MeshConfig(data=2, expert=4, fsdp=1)),
], ids=["fsdp8", "data2-fsdp2-tensor2", "moe-data2-expert4"])
def test_sharded_model_matches_single_device(cfg, mesh):
    assert len(jax.devices()) == 8
    toks = tokens(B=8, S=17)
    ref_loss, ref_logits, ref_grads = _loss_and_grads(build_model(cfg, seed=3), toks)
    m = make_mesh(mesh)
    sharded = build_model(cfg, m, seed=3)
    # Parameters really are spread over devices (no full copy on one device).
    wq = sharded.layers.wq.get_value()
    assert len(wq.sharding.device_set) == 8
    if mesh.fsdp > 1 or mesh.tensor > 1:
        assert wq.addressable_shards[0].data.size < wq.size
    with jax.set_mesh(m):
        loss, logits, grads = _loss_and_grads(sharded, toks)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(ref_logits), atol=2e-5, rtol=1e-4)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=2e-6, rtol=2e-4)


def _moe_inputs(X=4, k=2, N=64, D=16, F=24, seed=0):
    cfg = ModelConfig(D=D, L=1, H=2, F=32, V=64, dtype="float32",
                      moe=MoEConfig(n_experts=X, top_k=k, d_expert=F))
    keys = jax.random.split(jax.random.key(seed), 5)
    p = {"router": jax.random.normal(keys[0], (D, X)),
         "experts": {"w_up": jax.random.normal(keys[1], (X, D, F)) / D ** 0.5,
                     "w_gate": jax.random.normal(keys[2], (X, D, F)) / D ** 0.5,
                     "w_down": jax.random.normal(keys[3], (X, F, D)) / F ** 0.5}}
    x = jax.random.normal(keys[4], (N, D))
    return cfg, p, x


def _loop_over_experts(p, x_NxD, idx_Nxk, w_Nxk, cfg):
    """Reference: every expert applied to every token, then the chosen ones combined."""
    out = jnp.zeros_like(x_NxD)
    for e in range(cfg.moe.n_experts):
        pe = jax.tree.map(lambda a: a[e], p)
        h = jax.nn.silu(x_NxD @ pe["w_gate"]) * (x_NxD @ pe["w_up"])
        y = h @ pe["w_down"]
        weight = (w_Nxk * (idx_Nxk == e)).sum(-1, keepdims=True)
        out = out + weight * y
    return out


def test_dropless_and_large_capacity_paths_equal_a_loop_over_experts():
    cfg, p, x = _moe_inputs()
    idx, w, _ = route(p, x, cfg)
    ref = _loop_over_experts(p["experts"], x, idx, w, cfg)
    np.testing.assert_allclose(np.asarray(dropless(p["experts"], x, idx, w, cfg)), np.asarray(ref), atol=1e-5)
    big = cfg.model_copy(update={"moe": cfg.moe.model_copy(update={"capacity_factor": 4.0})})
    out = capacity(p["experts"], x.reshape(4, 16, -1), idx, w, big).reshape(x.shape)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-5)
    # With a tight capacity some tokens are dropped: the outputs must then differ.
    tight = cfg.model_copy(update={"moe": cfg.moe.model_copy(update={"capacity_factor": 0.25})})
    dropped = capacity(p["experts"], x.reshape(4, 16, -1), idx, w, tight).reshape(x.shape)
    assert not np.allclose(np.asarray(dropped), np.asarray(ref), atol=1e-3)


def test_load_balancing_loss_is_minimal_for_uniform_routing():
    cfg, p, x = _moe_inputs(X=4, k=1, N=256)
    # A zero router gives every expert probability 1/X: the Switch loss X·Σ f·P is then exactly 1.
    _, _, aux = route({**p, "router": jnp.zeros_like(p["router"])}, x, cfg)
    np.testing.assert_allclose(float(aux["moe_lb_loss"]), 1.0, rtol=1e-6)
    # Any router that prefers some experts scores worse.
    for seed in range(5):
        skewed = {**p, "router": 3.0 * jax.random.normal(jax.random.key(seed), p["router"].shape)}
        _, _, aux = route(skewed, x, cfg)
        assert float(aux["moe_lb_loss"]) > 1.01
        assert float(aux["expert_load"].sum()) == x.shape[0] * cfg.moe.top_k


def test_aux_free_update_moves_only_the_router_bias_against_the_load():
    """The bias is found by its Variable type: it sits outside the trainable parameters and every update
    raises the bias of under-loaded experts and lowers that of over-loaded ones (DeepSeek-V3)."""
    _, params, non_trainable = nnx.split(build_model(MOE_SIGMOID), nnx.Param, ...)
    assert not jax.tree.leaves(nnx.state(params, RouterBias))
    (bias,) = jax.tree.leaves(non_trainable, is_leaf=lambda v: isinstance(v, RouterBias))
    G, X = bias.get_value().shape
    load_GxX = jnp.tile(jnp.array([5.0, 1.0, 1.0, 1.0]), (G, 1))  # expert 0 over-loaded (mean 2)
    after = with_updated_router_biases(MOE_SIGMOID, non_trainable, load_GxX)
    (moved,) = jax.tree.leaves(after, is_leaf=lambda v: isinstance(v, RouterBias))
    rate = MOE_SIGMOID.moe.bias_update_rate
    np.testing.assert_allclose(np.asarray(moved.get_value()), np.tile([-rate, rate, rate, rate], (G, 1)))
    assert with_updated_router_biases(MOE, non_trainable, load_GxX) is non_trainable  # no aux-free bias: no-op


@pytest.mark.parametrize("cfg", [DENSE, MOE, MOE_SIGMOID,
                                 DENSE.model_copy(update={"tie_embeddings": True, "pos": "learned", "mlp": "gelu"})],
                         ids=["dense", "moe", "moe-sigmoid", "gpt2-style"])
def test_parameter_counts_equal_built_sizes(cfg):
    model = build_model(cfg)
    built = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    counts = count_model(cfg)
    assert counts.n_params == built
    assert counts.n_embedding + counts.n_nonembedding == built
    if cfg.moe:
        assert counts.n_active < counts.n_params
    else:
        assert counts.n_active == counts.n_params


def test_fused_dot_product_attention_and_unscanned_layers_match_the_plain_path():
    toks = tokens(B=2)
    ref = np.asarray(jax.jit(lambda t: build_model(DENSE)(t)[0])(toks))
    for change in ({"attention": "dot_product"}, {"scan_layers": False, "remat": "full"}):
        cfg = DENSE.model_copy(update=change)
        out = np.asarray(jax.jit(lambda t: build_model(cfg)(t)[0])(toks))
        np.testing.assert_allclose(out, ref, atol=2e-5, rtol=1e-4)
