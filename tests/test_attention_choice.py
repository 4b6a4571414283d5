"""Attention picks its kernel per platform (issue #18): "auto" is cuDNN's flash attention on NVIDIA GPUs where
the kernel takes the model, XLA elsewhere. On CPU "auto" traces exactly the XLA program (the loss curves other
tests pin stay bit-identical); a kernel the platform lacks is refused with exit 2 before anything is written;
`scaling flops` and `scaling train --dry-run` say which kernel a run gets; run ids do not depend on it."""
import json

import jax
import jax.numpy as jnp
import pytest

from scaling.cli.main import main
from scaling.config.base import validate
from scaling.config.model import ModelConfig
from scaling.config.run import load_run_config
from scaling.bundled import locate
from scaling.errors import UserError
from scaling.model import build_model
from scaling.model.attention_impl import resolve_attention
from scaling.sweep.plan import run_id_of

TINY = {"name": "tiny", "D": 32, "L": 1, "H": 2, "F": 64, "max_seq_len": 16}


def model(**changes) -> ModelConfig:
    return validate(ModelConfig, {**TINY, **changes})


def test_auto_is_cudnn_only_on_nvidia_gpus_and_only_for_shapes_its_kernel_takes():
    bf16 = model()  # head_dim 16, bfloat16
    assert [resolve_attention(bf16, p) for p in ("cpu", "tpu", "rocm", "cuda")] == ["xla", "xla", "xla", "cudnn"]
    assert resolve_attention(model(dtype="float32"), "cuda") == "xla"
    assert resolve_attention(model(head_dim=12), "cuda") == "xla"  # not a multiple of 8
    assert resolve_attention(model(D=512, H=2), "cuda") == "xla"  # head_dim 256: Hopper only, so not "auto"
    assert resolve_attention(model(attention="xla"), "cuda") == "xla"
    assert resolve_attention(model(attention="cudnn"), "cuda") == "cudnn"
    assert resolve_attention(model(), None) == "xla"  # this machine


@pytest.mark.parametrize("changes,words", [
    ({"attention": "cudnn", "dtype": "float32"}, "dtype bfloat16"),
    ({"attention": "cudnn", "head_dim": 12}, "head_dim"),
    ({"attention": "flash"}, "attention"),
], ids=["cudnn-float32", "cudnn-head-dim", "unknown"])
def test_attention_settings_no_platform_can_run_are_config_errors(changes, words):
    with pytest.raises(UserError, match="attention") as e:
        model(**changes)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_auto_on_cpu_traces_exactly_the_xla_program():
    tokens = jnp.zeros((2, 8), jnp.int32)
    programs = {}
    for setting in ("auto", "xla"):
        m = build_model(model(attention=setting))
        programs[setting] = str(jax.make_jaxpr(lambda t: m(t)[0])(tokens))
    assert programs["auto"] == programs["xla"]
    assert "dot_product_attention" not in programs["auto"]


def test_cudnn_on_cpu_exits_2_before_the_run_directory_exists(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "tiny-math", "--out", str(out), "--set", "model.attention=cudnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.attention" in err and "cpu" in err and "\n" not in err
    assert not out.exists()


def test_dry_run_and_flops_say_which_kernel_a_run_gets(tmp_path, capsys):
    assert main(["train", "tiny-math", "--dry-run", "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "attention: xla (auto on cpu)" in lines
    assert any(line.startswith("mesh: data 1 x fsdp") for line in lines)
    assert any("a new run" in line for line in lines) and not (tmp_path / "run").exists()
    assert main(["flops", "dense-1m", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["attention"] == {"set": "auto", "platform": "cpu", "chosen": "xla",
                                                                  "note": "xla (auto on cpu)"}
    assert main(["flops", "dense-1m", "--set", "attention=cudnn"]) == 0  # accounting works anywhere; it warns
    assert "cpu does not have: a run here is refused" in capsys.readouterr().out


def test_the_attention_kernel_is_not_part_of_a_runs_identity():
    """Runs made before "auto" existed hashed attention "xla": their ids, and so their sweeps, are kept."""
    cfg = load_run_config(locate("tiny-math", "train"), [])
    assert cfg.model.attention == "auto"
    ids = {run_id_of(load_run_config(locate("tiny-math", "train"), [f"model.attention={a}"]))
           for a in ("auto", "xla", "dot_product", "cudnn", "splash")}
    assert ids == {run_id_of(cfg)}
