"""Dense and mixture-of-experts decoders (Flax NNX), their losses, and parameter/FLOP accounting.

The JAX parts load on first use: planning a sweep needs only the accounting (pure Python), and a
`scaling sweep submit` that imported JAX and Flax to plan would spend ~2 s before its first run starts.
"""
from __future__ import annotations

import importlib

from scaling.model.accounting import ModelCounts, count_model

_LAZY = {"abstract_model": "build", "build_model": "build", "Decoder": "decoder", "RouterBias": "moe",
         "lm_objective": "loss", "token_logprobs": "loss"}

__all__ = ["Decoder", "RouterBias", "ModelCounts", "abstract_model", "build_model", "count_model",
           "lm_objective", "token_logprobs"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"scaling.model.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scaling.model' has no attribute {name!r}")
