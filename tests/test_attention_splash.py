"""Splash, the Pallas TPU attention kernel (model.attention "splash", and "auto" on TPU where it fits).

On CPU the kernel's Pallas program runs in interpret mode, so the wrapper the model calls (query scaling,
head-major layout, grouped kv-heads, shard_map over batch and tensor axes) is checked against the XLA path's
numbers here; that it lowers to a Mosaic kernel for TPU is tests/test_export.py's. Selection: "auto" takes it
on TPU only for sequence lengths and head dims that fit its 128-lane blocks; forcing it where it cannot run
is a one-line error (exit 2) before anything is written.
"""
import jax
import jax.numpy as jnp
import pytest

from scaling.cli.main import main
from scaling.config.base import validate
from scaling.config.model import MeshConfig, ModelConfig
from scaling.errors import UserError
from scaling.model.attention_impl import describe_attention, resolve_attention
from scaling.model.layers import _xla_attention
from scaling.model.splash import splash_attention
from scaling.parallel import make_mesh

B, S, E = 4, 128, 16


def model(**changes) -> ModelConfig:
    return validate(ModelConfig, {"name": "s", "D": 256, "L": 1, "H": 2, "F": 64, "max_seq_len": 256, **changes})


@pytest.mark.parametrize("H,K,mesh_fields", [(4, 2, None), (4, 2, {"data": 2, "tensor": 2, "fsdp": 2}),
                                             (8, 2, {"tensor": 4, "fsdp": 2})],
                         ids=["gqa-one-device", "gqa-kv-heads-split", "kv-heads-fewer-than-tensor-shards"])
def test_splash_computes_the_xla_paths_attention_and_gradients(H, K, mesh_fields):
    kq, kk, kv, kw = jax.random.split(jax.random.key(0), 4)
    q, k, v = (jax.random.normal(key, (B, S, n, E)) for key, n in ((kq, H), (kk, K), (kv, K)))
    weights = jax.random.normal(kw, (B, S, H, E))  # a loss whose gradient reaches every output element

    def loss(attend):
        return lambda q, k, v: (attend(q, k, v) * weights).sum()

    def splash(q, k, v):
        return splash_attention(q, k, v, interpret=True)

    def xla(q, k, v):
        return _xla_attention(q, k, v, 0, None)

    run = jax.jit(jax.value_and_grad(loss(splash), argnums=(0, 1, 2)))
    if mesh_fields is None:
        got = run(q, k, v)
    else:
        mesh = make_mesh(MeshConfig(**mesh_fields))
        with jax.set_mesh(mesh):
            assert "manual_computation" in run.lower(q, k, v).as_text()  # the kernel runs per shard
            got = run(q, k, v)
    want = jax.value_and_grad(loss(xla), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert jnp.allclose(g, w, atol=1e-4, rtol=1e-4), float(jnp.abs(g - w).max())


def test_auto_takes_splash_on_tpu_only_where_its_blocks_fit():
    assert [resolve_attention(model(), p) for p in ("cpu", "tpu", "rocm")] == ["xla", "splash", "xla"]
    assert resolve_attention(model(), "tpu", seq_len=384) == "splash"  # 3 blocks of 128
    assert resolve_attention(model(), "tpu", seq_len=200) == "xla"
    assert resolve_attention(model(H=4), "tpu") == "xla"  # head_dim 64: only a forced "splash" takes it
    assert resolve_attention(model(H=4, attention="splash"), "tpu") == "splash"
    assert resolve_attention(model(dtype="float32"), "tpu") == "splash"
    assert describe_attention(model(), "tpu", 256) == "splash (auto on tpu)"
    assert describe_attention(model(), "tpu", 200) == \
        "xla (auto on tpu; not splash: it needs a sequence length that is a multiple of 128, not 200)"
    assert "a run here is refused" in describe_attention(model(attention="splash"), "tpu", 200)


@pytest.mark.parametrize("platform,seq_len,words", [("cpu", 256, "needs a TPU"), ("cuda", 256, "needs a TPU"),
                                                    ("tpu", 100, "multiple of 128, not 100")])
def test_forced_splash_where_it_cannot_run_is_a_one_line_error(platform, seq_len, words):
    with pytest.raises(UserError, match="model.attention: 'splash'") as e:
        resolve_attention(model(attention="splash"), platform, seq_len)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_splash_on_cpu_exits_2_before_the_run_directory_exists_and_flops_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    for command in (["train", "tiny-math", "--out", str(out)], ["train", "tiny-math", "--dry-run", "--out", str(out)]):
        assert main([*command, "--set", "model.attention=splash"]) == 2
        err = capsys.readouterr().err.strip()
        assert "model.attention: 'splash'" in err and "cpu" in err and "\n" not in err
        assert not out.exists()
    assert main(["flops", "dense-1m", "--set", "attention=splash"]) == 0
    assert "splash (set in model.attention), which cpu does not have" in capsys.readouterr().out
