"""The decoder: dense or mixture-of-experts, layers stacked and scanned.

Layers are grouped in blocks of `k = moe.every` (k = 1 for dense models): each block is k attention
sublayers, k-1 dense MLPs and one MoE MLP. Parameters of all blocks are stacked on a leading axis
of size G = L / k and the block is applied with `jax.lax.scan`, so compile time does not grow with
depth. Every parameter carries logical axis names (`logical_axes` metadata) that
`scaling.parallel.LOGICAL_RULES` maps to mesh axes, and norm scales and embedding tables carry
`weight_decay=False`, which the optimizer reads (`train.optim.decay_mask`) instead of matching names.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.config.model import ModelConfig
from scaling.model.layers import attention, mlp, norm, rope_tables
from scaling.model.moe import RouterBias, moe_mlp
from scaling.parallel import constrain

REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class ParamGroup(nnx.Module):
    """Named parameters that share a stacking prefix. `spec` maps name -> (shape, logical axes, init std or "ones")."""

    def __init__(self, prefix: tuple[int, ...], prefix_axes: tuple[str, ...], spec: dict, rngs: nnx.Rngs):
        for name, (shape, axes, std) in spec.items():
            full = prefix + tuple(shape)
            if std == "ones":
                value = jnp.ones(full, jnp.float32)
            else:
                value = std * jax.random.normal(rngs.params(), full, jnp.float32)
            setattr(self, name, nnx.Param(value, logical_axes=prefix_axes + tuple(axes),
                                          weight_decay="norm" not in axes))

    def arrays(self) -> dict:
        out = {}
        for name, value in vars(self).items():
            if isinstance(value, nnx.Variable):
                out[name] = value.get_value()
            elif isinstance(value, ParamGroup):
                out[name] = value.arrays()
        return out


def _mlp_spec(cfg: ModelConfig, F: int, std: float, out_std: float) -> dict:
    spec = {"w_up": ((cfg.D, F), ("embed", "mlp"), std), "w_down": ((F, cfg.D), ("mlp", "embed"), out_std)}
    if cfg.mlp == "swiglu":
        spec["w_gate"] = ((cfg.D, F), ("embed", "mlp"), std)
    return spec


class Decoder(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        D, H, K, E, Vp = cfg.D, cfg.H, cfg.n_kv_heads, cfg.d_head, cfg.padded_vocab
        std = cfg.init_std
        out_std = std / (2 * cfg.L) ** 0.5  # GPT-2: residual projections scaled by depth
        k = cfg.block_layers
        G = cfg.L // k
        self.embed = nnx.Param(std * jax.random.normal(rngs.params(), (Vp, D)), logical_axes=("vocab", "embed"),
                               weight_decay=False)
        if cfg.pos == "learned":
            self.pos_embed = nnx.Param(std * jax.random.normal(rngs.params(), (cfg.max_seq_len, D)),
                                       logical_axes=(None, "embed"), weight_decay=False)
        layer_spec = {
            "ln1": ((D,), ("norm",), "ones"),
            "wq": ((D, H, E), ("embed", "heads", "head_dim"), std),
            "wk": ((D, K, E), ("embed", "kv_heads", "head_dim"), std),
            "wv": ((D, K, E), ("embed", "kv_heads", "head_dim"), std),
            "wo": ((H, E, D), ("heads", "head_dim", "embed"), out_std),
            "ln2": ((D,), ("norm",), "ones"),
        }
        if cfg.qk_norm:
            layer_spec |= {"q_norm": ((E,), ("norm",), "ones"), "k_norm": ((E,), ("norm",), "ones")}
        self.layers = ParamGroup((G, k), ("layers", "sublayers"), layer_spec, rngs)
        n_dense = k - 1 if cfg.moe else 1
        if n_dense:
            self.mlp = ParamGroup((G, n_dense), ("layers", "sublayers"), _mlp_spec(cfg, cfg.F, std, out_std), rngs)
        if cfg.moe:
            m = cfg.moe
            expert_spec = {name: ((m.n_experts,) + shape, ("expert",) + axes, s)
                           for name, (shape, axes, s) in _mlp_spec(cfg, m.d_expert, std, out_std).items()}
            self.moe = ParamGroup((G,), ("layers",), {"router": ((D, m.n_experts), ("embed", None), std)}, rngs)
            if m.aux_free_bias:
                bias_GxX = jnp.zeros((G, m.n_experts), jnp.float32)
                self.moe.router_bias = RouterBias(bias_GxX, logical_axes=("layers", None))
            self.moe.experts = ParamGroup((G,), ("layers",), expert_spec, rngs)
            if m.n_shared_experts:
                shared = _mlp_spec(cfg, m.n_shared_experts * m.d_expert, std, out_std)
                self.moe.shared = ParamGroup((G,), ("layers",), shared, rngs)
        self.final_norm = nnx.Param(jnp.ones((D,)), logical_axes=("norm",), weight_decay=False)
        if not cfg.tie_embeddings:
            self.head = nnx.Param(std * jax.random.normal(rngs.params(), (D, Vp)), logical_axes=("embed", "vocab"))
        if cfg.param_dtype != "float32":  # stored (and updated by the optimizer) in param_dtype; drawn in float32
            params = nnx.state(self, nnx.Param)
            nnx.update(self, jax.tree.map(lambda x: x.astype(cfg.param_dtype), params))

    def __call__(self, tokens_BxS: jax.Array, positions_BxS: jax.Array | None = None,
                 cache: dict | None = None, kv_valid_BxT: jax.Array | None = None):
        """Returns (logits_BxSxV in float32, aux dict, new cache or None).

        `positions_BxS` default to 0..S-1 (shifted by the cache index when decoding); with left-padded
        prompts pass per-row positions and `kv_valid_BxT`.
        """
        cfg = self.cfg
        dt = jnp.dtype(cfg.dtype)
        S = tokens_BxS.shape[1]
        if positions_BxS is None:  # one row for the whole batch: broadcasting does the rest
            start = cache["index"] if cache is not None else 0
            positions_BxS = start + jnp.arange(S)[None, :]
        sin_cos = rope_tables(positions_BxS, cfg.d_head, cfg.rope_theta) if cfg.pos == "rope" else None
        x_BxSxD = self.embed.get_value()[tokens_BxS].astype(dt)
        if cfg.pos == "learned":
            x_BxSxD = x_BxSxD + self.pos_embed.get_value()[positions_BxS].astype(dt)
        x_BxSxD = constrain(x_BxSxD, ("batch", "seq", "act_embed"))

        params = {"layers": self.layers.arrays()}
        if hasattr(self, "mlp"):
            params["mlp"] = self.mlp.arrays()
        if cfg.moe:
            params["moe"] = self.moe.arrays()
        kv = None if cache is None else {"k": cache["k"], "v": cache["v"]}
        index = None if cache is None else cache["index"]

        def block(x, xs):
            p, kv_g = xs
            return _block(cfg, p, x, sin_cos, kv_g, index, kv_valid_BxT)

        if cfg.remat != "none":
            block = jax.checkpoint(block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan_layers)
        if cfg.scan_layers:
            x_BxSxD, (aux, new_kv) = jax.lax.scan(block, x_BxSxD, (params, kv))
        else:
            outs = []
            for g in range(cfg.L // cfg.block_layers):
                x_BxSxD, out = block(x_BxSxD, jax.tree.map(lambda a: a[g], (params, kv)))
                outs.append(out)
            aux, new_kv = jax.tree.map(lambda *a: jnp.stack(a), *outs)

        x_BxSxD = norm(x_BxSxD, self.final_norm.get_value(), cfg.norm)
        w_DxV = self.embed.get_value().T if cfg.tie_embeddings else self.head.get_value()
        logits_BxSxV = jnp.einsum("bsd,dv->bsv", x_BxSxD, w_DxV.astype(dt), preferred_element_type=jnp.float32)
        if cfg.padded_vocab != cfg.V:
            # Padding logits sink to -1e9 by adding a constant row, not by a select: the softmax and the
            # gradients are the same (exp underflows to exactly 0 either way), but the backward is the
            # identity instead of a second full-size select, and the add fuses into the matmul's output.
            sink_V = jnp.where(jnp.arange(cfg.padded_vocab) < cfg.V, 0.0, -1e9).astype(jnp.float32)
            logits_BxSxV = logits_BxSxV + sink_V
        logits_BxSxV = constrain(logits_BxSxV, ("batch", "seq", "act_vocab"))
        aux = {name: (v if name == "expert_load" else v.mean()) for name, v in aux.items()}
        new_cache = None if cache is None else {**new_kv, "index": cache["index"] + S}
        return logits_BxSxV, aux, new_cache

    def init_cache(self, batch: int, max_len: int, dtype=None) -> dict:
        """An empty KV cache for `batch` rows and `max_len` slots, stacked like the layers."""
        cfg = self.cfg
        k = cfg.block_layers
        shape = (cfg.L // k, k, batch, max_len, cfg.n_kv_heads, cfg.d_head)
        dtype = dtype or jnp.dtype(cfg.dtype)
        # Sharded like the keys and values it holds (rows over the data axes, kv-heads over tensor): left to
        # propagation, the decode loop's largest carry could be replicated on every device.
        names = ("layers", "sublayers", "batch", "seq", "act_heads", "head_dim")
        return {"k": constrain(jnp.zeros(shape, dtype), names), "v": constrain(jnp.zeros(shape, dtype), names),
                "index": jnp.zeros((), jnp.int32)}


def _block(cfg: ModelConfig, p: dict, x_BxSxD, sin_cos, kv_g, index, kv_valid_BxT):
    """One group of k layers: attention + (dense or MoE) MLP each, pre-norm residuals."""
    k = cfg.block_layers
    aux = {}
    new_k, new_v = [], []
    for j in range(k):
        lp = jax.tree.map(lambda a: a[j], p["layers"])
        cache_j = None if kv_g is None else {"k": kv_g["k"][j], "v": kv_g["v"][j], "index": index}
        y, c = attention(lp, norm(x_BxSxD, lp["ln1"], cfg.norm), sin_cos, cfg, cache_j, kv_valid_BxT)
        if c is not None:
            new_k.append(c["k"])
            new_v.append(c["v"])
        x_BxSxD = x_BxSxD + y
        h_BxSxD = norm(x_BxSxD, lp["ln2"], cfg.norm)
        if cfg.moe and j == k - 1:
            y, aux = moe_mlp(p["moe"], h_BxSxD, cfg)
        else:
            y = mlp(jax.tree.map(lambda a: a[j], p["mlp"]), h_BxSxD, cfg)
        x_BxSxD = constrain(x_BxSxD + y, ("batch", "seq", "act_embed"))
    new_kv = None if kv_g is None else {"k": jnp.stack(new_k), "v": jnp.stack(new_v)}
    return x_BxSxD, (aux, new_kv)
