"""Load a policy (parameters + non-trainable variables) from a pretraining or an RL run directory."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scaling.config.base import validate
from scaling.config.model import MeshConfig, ModelConfig
from scaling.config.rl import RLConfig
from scaling.config.run import RunConfig
from scaling.data import get_tokenizer
from scaling.errors import UserError
from scaling.model import build_model
from scaling.parallel import make_mesh
from scaling.train.checkpoint import Checkpointer, abstract_like, quiet_stderr_on_failure
from scaling.train.optim import make_optimizer
from scaling.train.step import init_train_state


@dataclass
class Policy:
    graphdef: Any
    params: Any
    rest: Any
    model_cfg: ModelConfig
    pretrain_cfg: RunConfig  # the pretraining recipe at the root of this run's lineage
    tokenizer: Any
    run_dir: Path
    step: int


def read_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UserError(f"{path}: unreadable (not valid YAML text)") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping, got {type(raw).__name__}")
    return raw


def load_policy(run_dir: str | Path, mesh_cfg: MeshConfig | None = None) -> Policy:
    """The newest checkpoint's policy. An RL run's model comes from its `init_run` (recursively)."""
    run_dir = Path(run_dir)
    raw = read_run_config(run_dir)
    if "task" in raw:  # an RL run
        rl_cfg = validate(RLConfig, raw, source=str(run_dir / "config.yaml"))
        base = load_policy_config(Path(rl_cfg.init_run))
        optimizer = rl_cfg.optimizer
    else:
        base = validate(RunConfig, raw, source=str(run_dir / "config.yaml"))
        optimizer = base.optimizer
    ckpt_dir = run_dir / "checkpoints"
    ckpt = Checkpointer(ckpt_dir, read_only=True) if ckpt_dir.is_dir() else None
    if ckpt is None or not ckpt.steps():
        raise UserError(f"{run_dir}: has no checkpoint to load")
    mesh = make_mesh(mesh_cfg or MeshConfig(devices=1))
    model = build_model(base.model, mesh, seed=base.train.seed)
    tx, _ = make_optimizer(optimizer, 2)
    graphdef, state, _ = init_train_state(model, tx, mesh)
    step = ckpt.steps()[-1]
    abstract = abstract_like(state)
    try:
        mismatch = ckpt.first_mismatch(step, abstract)
        if mismatch:  # refused from the metadata: a failed restore would spill hundreds of lines
            raise UserError(f"{run_dir}: its checkpoint at step {step} does not match the model of its config.yaml "
                            f"({mismatch})")
        with quiet_stderr_on_failure():
            restored = ckpt.restore_state_only(step, abstract)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - Orbax raises many types; all mean "not this model's checkpoint"
        raise UserError(f"{run_dir}: its checkpoint at step {step} cannot be restored for the model of its "
                        f"config.yaml ({_first_line(e)})") from None
    finally:
        ckpt.close()
    return Policy(graphdef, restored["params"], restored["rest"], base.model, base, get_tokenizer(base.data),
                  run_dir, step)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def load_policy_config(run_dir: Path) -> RunConfig:
    """The pretraining RunConfig at the root of a run's lineage."""
    raw = read_run_config(run_dir)
    if "task" in raw:
        return load_policy_config(Path(validate(RLConfig, raw).init_run))
    return validate(RunConfig, raw, source=str(run_dir / "config.yaml"))
