"""Typed data config: which corpus a run trains on, how it is tokenized, and where caches live.

Embedded as the `data:` field of the run config. `cache_dir: null` means "the user cache dir"
(resolved at use time by `scaling.data.cache.resolve_cache_dir`), so the resolved config, and hence
the run id, does not depend on whose home directory the run happens on.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from scaling.config.base import StrictModel

# Above this, operands and chained results get too long to fit in the tiny contexts this corpus is for.
MAX_DIGITS = 12
MAX_STEPS = 8


class MathConfig(StrictModel):
    """Difficulty of the procedural arithmetic corpus (and of the `arithmetic` RL task).

    A problem chains `steps` operations (drawn from `operations`) over operands of `digits` digits,
    both drawn uniformly from their ranges per problem.
    """

    min_digits: int = Field(1, ge=1, le=MAX_DIGITS)
    max_digits: int = Field(3, ge=1, le=MAX_DIGITS)
    min_steps: int = Field(1, ge=1, le=MAX_STEPS)
    max_steps: int = Field(3, ge=1, le=MAX_STEPS)
    operations: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+", "-", "*"], min_length=1)
    # Share of multi-step documents that show their intermediate results (`3+4=7; 7*5=35. #### 35`);
    # the rest answer directly (`#### 35`). A mix is what makes RL interesting: a model pretrained
    # on it can answer either way, and reward tells it which way is right more often.
    worked_fraction: float = Field(1.0, ge=0, le=1)
    seed: int = Field(0, ge=0)

    @field_validator("operations")
    @classmethod
    def _operations_unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"lists an operation twice: {v}")
        return v

    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name in ("digits", "steps"):
            lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if hi < lo:
                raise ValueError(f"max_{name}: must be at least min_{name}={lo}, got {hi}")
        return self


class DataConfig(StrictModel):
    """Where tokens come from: the stdlib's Python sources, procedural arithmetic, user files, or token
    shards made by `scaling data prepare` (whose tokenizer and held-out split come with them: `tokenizer`,
    the bpe fields and `eval_fraction` are not read for `shards`)."""

    source: Literal["stdlib-code", "synthetic-math", "files", "shards"] = "stdlib-code"
    paths: list[str] = Field(default_factory=list, validate_default=True)  # files, dirs or globs; shards: dirs
    text_field: str = Field("text", min_length=1)  # the jsonl key / parquet column holding a document's text
    tokenizer: Literal["byte", "bpe"] = "byte"
    # 256 byte symbols + the special tokens must fit; tokens are cached as uint16.
    bpe_vocab_size: int = Field(4096, ge=300, le=65536)
    bpe_train_bytes: int = Field(8_000_000, ge=1000)  # size of the corpus sample the BPE merges are learned from
    cache_dir: str | None = None  # None: $XDG_CACHE_HOME/scaling/data (or ~/.cache/scaling/data)
    eval_fraction: float = Field(0.05, ge=0, le=0.5)  # share of documents (stdlib: files) held out for evaluation
    stdlib_include_tests: bool = False  # the stdlib's test/ dirs (many distros do not ship them)
    shuffle_seed: int = Field(0, ge=0, lt=2**32)
    math: MathConfig = Field(default_factory=MathConfig)

    @field_validator("paths")
    @classmethod
    def _paths_only_for_files(cls, v: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("source")
        if source == "files" and not v:
            raise ValueError("source 'files' needs at least one path or glob")
        if source == "shards" and not v:
            raise ValueError("source 'shards' needs the folder(s) `scaling data prepare` wrote")
        if source is not None and source not in ("files", "shards") and v:
            raise ValueError(f"paths are only read when source is 'files' or 'shards' (source is {source!r})")
        if any(not p.strip() for p in v):
            raise ValueError("contains an empty path")
        return v

    @model_validator(mode="after")
    def _shards_bring_their_tokenizer(self):
        if self.source == "shards" and self.tokenizer != "byte":
            raise ValueError("tokenizer: shards are read with the tokenizer they were prepared with; "
                             f"leave tokenizer unset (got {self.tokenizer!r})")
        return self
