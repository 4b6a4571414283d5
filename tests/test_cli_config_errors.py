"""Bad configs are refused before anything is built: exit code 2 and one line naming the field."""
import json
import subprocess
import sys

import pytest

from scaling.cli.main import main

BAD = [
    (["--set", "H=3"], "H:"),  # width 128 not divisible by 3 heads
    (["--set", "KV=3"], "KV:"),  # kv-heads do not divide heads
    (["--set", "foo=1"], "foo: unknown key"),
    (["--set", "D=wide"], "D:"),
    (["--set", "mlp=relu"], "mlp:"),
    (["--set", "moe.n_experts=2", "--set", "moe.top_k=4", "--set", "moe.d_expert=8"], "moe.top_k:"),
    (["--set", "moe.every=3", "--set", "moe.d_expert=8"], "moe.every:"),
]


@pytest.mark.parametrize("extra,field", BAD, ids=[b[1] for b in BAD])
def test_bad_model_config_exits_2_with_one_line_naming_the_field(extra, field, capsys):
    assert main(["flops", "configs/models/dense-1m.yaml", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and field in err and "Traceback" not in err


def test_missing_config_file_and_bad_yaml(tmp_path, capsys):
    assert main(["flops", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("D: [1,\n")
    assert main(["flops", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.yaml" in err and "\n" not in err


def test_mesh_not_matching_devices_is_refused():
    from scaling.config.model import MeshConfig
    from scaling.errors import UserError
    from scaling.parallel import make_mesh

    with pytest.raises(UserError, match="mesh.*needs 6 devices, 8 present"):
        make_mesh(MeshConfig(data=3, fsdp=2))
    with pytest.raises(UserError, match="does not divide 8"):
        make_mesh(MeshConfig(data=3, fsdp=-1))


def test_flops_cli_in_a_fresh_process_prints_a_table_and_bad_input_has_no_traceback():
    ok = subprocess.run([sys.executable, "-m", "scaling", "flops", "configs/models/moe-2m.yaml"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "active non-embedding" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "scaling", "flops", "configs/models/moe-2m.yaml", "--set", "moe.top_k=9"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "moe.top_k" in bad.stderr


def test_flops_takes_a_bundled_run_recipes_name_like_train_does(capsys):
    """`scaling train tiny-math` works, so `scaling flops tiny-math` must too: the recipe's model at its seq_len."""
    assert main(["flops", "tiny-math", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "dense-100k" and out["seq_len"] == 64
    assert main(["flops", "dense-1m", "--json"]) == 0  # a ladder name still means the ladder's model
    assert json.loads(capsys.readouterr().out)["model"] == "dense-1m"
