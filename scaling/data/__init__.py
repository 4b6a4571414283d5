"""Data room: tokenizers, corpora (stdlib code, synthetic arithmetic, user files, prepared token shards) and grain
pipelines.

Names are resolved lazily: `scaling.rl.tasks` only needs `scaling.data.arithmetic`, and importing grain
(about 3 s) just to generate arithmetic problems would slow every task user and test.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalSet": "scaling.data.pipeline",
    "TrainIterator": "scaling.data.pipeline",
    "build_eval_set": "scaling.data.pipeline",
    "build_train_iterator": "scaling.data.pipeline",
    "corpus_stats": "scaling.data.pipeline",
    "BpeTokenizer": "scaling.data.tokenizers",
    "ByteTokenizer": "scaling.data.tokenizers",
    "Tokenizer": "scaling.data.tokenizers",
    "get_tokenizer": "scaling.data.tokenizers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling.data' has no attribute {name!r}")
