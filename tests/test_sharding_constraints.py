"""The logical activation constraints act in the compiled steps: the train and eval steps are traced with
their mesh in context, so the lowered program carries a sharding constraint per `constrain` call
(residual stream, attention queries, MLP hidden, logits) instead of none (issue #18)."""
import jax
import jax.numpy as jnp
import pytest

from scaling.config.run import run_config_from_dict
from scaling.model import build_model
from scaling.parallel import make_mesh
from scaling.train.optim import make_optimizer
from scaling.train.step import compile_steps, init_train_state

B, S = 8, 16


@pytest.mark.parametrize("mesh_fields", [{"fsdp": 8}, {"data": 2, "tensor": 2, "fsdp": 2}], ids=["fsdp8", "dp2-tp2-fsdp2"])
def test_the_train_step_lowered_on_8_devices_holds_the_activation_constraints(mesh_fields):
    cfg = run_config_from_dict({"model": {"name": "t", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": S,
                                          "scan_layers": False},
                                "mesh": mesh_fields, "data": {"source": "synthetic-math"},
                                "train": {"tokens": 10_000, "seq_len": S, "batch_size": B}})
    mesh = make_mesh(cfg.mesh)
    model = build_model(cfg.model, mesh, seed=0)
    tx, _ = make_optimizer(cfg.optimizer, 10)
    graphdef, state, shardings = init_train_state(model, tx, mesh)
    steps = compile_steps(cfg.model, graphdef, shardings, tx, mesh, 1)
    batch = {k: jax.device_put(jnp.zeros((B, S), jnp.int32 if k != "mask" else jnp.float32), steps.batch_sharding)
             for k in ("inputs", "targets", "mask")}
    trained = steps.train_step.lower(state, batch, jnp.float32(1e-3)).as_text().count("sdy.sharding_constraint")
    lowered = steps.eval_step.lower(state["params"], state["non_trainable"], batch)
    evaluated = lowered.as_text().count("sdy.sharding_constraint")
    # Forward: the embedding output, per layer the residual after attention and after the MLP, and the
    # logits at least (the query and MLP-hidden ones where their logical axes map to mesh axes); the
    # training step's backward pass carries more.
    assert evaluated >= 2 + 2 * cfg.model.L, evaluated
    assert trained > evaluated, (trained, evaluated)
