"""Typed, validated configs loaded from YAML with --set overrides."""
from scaling.config.base import StrictModel, apply_overrides, load_config, read_yaml, validate
from scaling.config.model import MeshConfig, MoEConfig, ModelConfig
from scaling.config.run import OptimizerConfig, RunConfig, TrainConfig, load_model_config, load_run_config

__all__ = ["StrictModel", "apply_overrides", "load_config", "read_yaml", "validate", "MeshConfig", "MoEConfig",
           "ModelConfig", "OptimizerConfig", "RunConfig", "TrainConfig", "load_model_config", "load_run_config"]
