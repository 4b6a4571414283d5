"""Load a policy (parameters + non-trainable variables) from a pretraining or an RL run directory."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from flax import nnx

from scaling.config.base import validate
from scaling.config.model import MeshConfig, ModelConfig
from scaling.config.rl import RLConfig, is_rl_config
from scaling.config.run import RunConfig
from scaling.data import get_tokenizer
from scaling.errors import UserError
from scaling.model import build_model
from scaling.parallel import make_mesh
from scaling.train.checkpoint import Checkpointer, abstract_like, quiet_stderr_on_failure


@dataclass
class Policy:
    graphdef: Any
    params: Any  # the nnx.Param variables: what RL trains
    non_trainable: Any  # every other nnx variable (e.g. the router's load-balancing bias)
    model_cfg: ModelConfig
    pretrain_cfg: RunConfig  # the pretraining recipe at the root of this run's lineage
    tokenizer: Any
    run_dir: Path
    step: int

    @property
    def states(self) -> tuple[Any, Any]:
        """What `nnx.merge(graphdef, *states)` takes (the sampler's `states`)."""
        return self.params, self.non_trainable


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


def load_policy(run_dir: str | Path, mesh_cfg: MeshConfig | None = None, init_dir: Path | None = None) -> Policy:
    """The newest checkpoint's policy. An RL run's model comes from its `init_run` (recursively), or from
    `init_dir` where the caller knows it: a split sweep's RL runs record init_run relative to the sweep
    directory they were launched in, which need not be the working directory."""
    run_dir = Path(run_dir)
    raw = read_run_config(run_dir)
    if is_rl_config(raw):
        init = init_dir or Path(validate(RLConfig, raw, source=str(run_dir / "config.yaml")).init_run)
        base = load_policy_config(init)
    else:
        base = validate(RunConfig, raw, source=str(run_dir / "config.yaml"))
    ckpt_dir = run_dir / "checkpoints"
    ckpt = Checkpointer(ckpt_dir, read_only=True) if ckpt_dir.is_dir() else None
    if ckpt is None or not ckpt.steps():
        raise UserError(f"{run_dir}: has no checkpoint to load")
    mesh = make_mesh(mesh_cfg or MeshConfig(devices=1))
    graphdef, params, non_trainable = nnx.split(build_model(base.model, mesh, seed=base.train.seed), nnx.Param, ...)
    step = ckpt.steps()[-1]
    target = {"params": abstract_like(params), "non_trainable": abstract_like(non_trainable)}
    try:
        mismatch = ckpt.first_mismatch(step, target)
        if mismatch:  # refused from the metadata: a failed restore would spill hundreds of lines
            raise UserError(f"{run_dir}: its checkpoint at step {step} does not match the model of its config.yaml "
                            f"({mismatch})")
        with quiet_stderr_on_failure():
            restored = ckpt.restore_part(step, target)  # the policy alone, not the optimizer state
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - Orbax raises many types; all mean "not this model's checkpoint"
        raise UserError(f"{run_dir}: its checkpoint at step {step} cannot be restored for the model of its "
                        f"config.yaml ({_first_line(e)})") from None
    finally:
        ckpt.close()
    return Policy(graphdef, restored["params"], restored["non_trainable"], base.model, base, get_tokenizer(base.data),
                  run_dir, step)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def load_policy_config(run_dir: Path) -> RunConfig:
    """The pretraining RunConfig at the root of a run's lineage."""
    raw = read_run_config(run_dir)
    if is_rl_config(raw):
        return load_policy_config(Path(validate(RLConfig, raw).init_run))
    return validate(RunConfig, raw, source=str(run_dir / "config.yaml"))


def rl_config_of(run_dir: Path) -> RLConfig:
    """An RL run's own config; for a pretraining run, the RL defaults (what an RL run from it would use)."""
    raw = read_run_config(run_dir)
    return validate(RLConfig, raw, source=str(run_dir / "config.yaml")) if is_rl_config(raw) else RLConfig()
