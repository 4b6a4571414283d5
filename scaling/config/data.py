"""Typed data config: which corpus a run trains on, how it is tokenized, and where caches live.

Embedded as the `data:` field of the run config. `cache_dir: null` means "the user cache dir"
(resolved at use time by `scaling.data.cache.resolve_cache_dir`), so the resolved config, and hence
the run id, does not depend on whose home directory the run happens on.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from scaling.config.base import StrictModel

# Above this, operands and chained results get too long to fit in the tiny contexts this corpus is for.
MAX_DIGITS = 12
MAX_STEPS = 8


class MathConfig(StrictModel):
    """Difficulty of the procedural arithmetic corpus (and of the `arithmetic` RL task).

    A problem chains `steps` operations (drawn from `operations`) over operands of `digits` digits,
    both drawn uniformly from their ranges per problem.
    """

    min_digits: int = 1
    max_digits: int = Field(3, validate_default=True)
    min_steps: int = 1
    max_steps: int = Field(3, validate_default=True)
    operations: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+", "-", "*"])
    # Share of multi-step documents that show their intermediate results (`3+4=7; 7*5=35. #### 35`);
    # the rest answer directly (`#### 35`). A mix is what makes RL interesting: a model pretrained
    # on it can answer either way, and reward tells it which way is right more often.
    worked_fraction: float = 1.0
    seed: int = 0

    @field_validator("worked_fraction")
    @classmethod
    def _fraction_in_unit_interval(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"must be between 0 and 1, got {v}")
        return v

    @field_validator("min_digits")
    @classmethod
    def _min_digits_positive(cls, v: int) -> int:
        if not 1 <= v <= MAX_DIGITS:
            raise ValueError(f"must be between 1 and {MAX_DIGITS}, got {v}")
        return v

    @field_validator("max_digits")
    @classmethod
    def _max_digits_in_range(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min_digits", 1)
        if not lo <= v <= MAX_DIGITS:
            raise ValueError(f"must be between min_digits={lo} and {MAX_DIGITS}, got {v}")
        return v

    @field_validator("min_steps")
    @classmethod
    def _min_steps_positive(cls, v: int) -> int:
        if not 1 <= v <= MAX_STEPS:
            raise ValueError(f"must be between 1 and {MAX_STEPS}, got {v}")
        return v

    @field_validator("max_steps")
    @classmethod
    def _max_steps_in_range(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min_steps", 1)
        if not lo <= v <= MAX_STEPS:
            raise ValueError(f"must be between min_steps={lo} and {MAX_STEPS}, got {v}")
        return v

    @field_validator("operations")
    @classmethod
    def _operations_nonempty_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one of '+', '-', '*'")
        if len(set(v)) != len(v):
            raise ValueError(f"lists an operation twice: {v}")
        return v

    @field_validator("seed")
    @classmethod
    def _seed_non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be >= 0, got {v}")
        return v


class DataConfig(StrictModel):
    """Where tokens come from: the stdlib's Python sources, procedural arithmetic, or user files."""

    source: Literal["stdlib-code", "synthetic-math", "files"] = "stdlib-code"
    paths: list[str] = Field(default_factory=list, validate_default=True)  # files, dirs or globs
    text_field: str = "text"  # the jsonl key / parquet column holding a document's text
    tokenizer: Literal["byte", "bpe"] = "byte"
    bpe_vocab_size: int = 4096
    bpe_train_bytes: int = 8_000_000  # size of the corpus sample the BPE merges are learned from
    cache_dir: str | None = None  # None: $XDG_CACHE_HOME/scaling/data (or ~/.cache/scaling/data)
    eval_fraction: float = 0.05  # share of documents (stdlib: files) held out for evaluation
    stdlib_include_tests: bool = False  # the stdlib's test/ dirs (many distros do not ship them)
    shuffle_seed: int = 0
    math: MathConfig = Field(default_factory=MathConfig)

    @field_validator("paths")
    @classmethod
    def _paths_only_for_files(cls, v: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("source")
        if source == "files" and not v:
            raise ValueError("source 'files' needs at least one path or glob")
        if source is not None and source != "files" and v:
            raise ValueError(f"paths are only read when source is 'files' (source is {source!r})")
        if any(not p.strip() for p in v):
            raise ValueError("contains an empty path")
        return v

    @field_validator("text_field")
    @classmethod
    def _text_field_nonempty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("bpe_vocab_size")
    @classmethod
    def _vocab_fits(cls, v: int) -> int:
        # 256 byte symbols + the special tokens must fit; tokens are cached as uint16.
        if not 300 <= v <= 65536:
            raise ValueError(f"must be between 300 and 65536, got {v}")
        return v

    @field_validator("bpe_train_bytes")
    @classmethod
    def _train_bytes_positive(cls, v: int) -> int:
        if v < 1000:
            raise ValueError(f"must be at least 1000 bytes, got {v}")
        return v

    @field_validator("eval_fraction")
    @classmethod
    def _eval_fraction_in_range(cls, v: float) -> float:
        if not 0.0 <= v <= 0.5:
            raise ValueError(f"must be between 0 and 0.5, got {v}")
        return v

    @field_validator("shuffle_seed")
    @classmethod
    def _shuffle_seed_range(cls, v: int) -> int:
        if not 0 <= v < 2**32:
            raise ValueError(f"must be between 0 and 2**32-1, got {v}")
        return v
