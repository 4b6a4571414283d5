"""Training and eval batches: grain pipelines whose every batch is a pure function of (config, seed, step).

Packing. Documents are concatenated with EOS and cut into windows of `seq_len + 1` tokens
(inputs = w[:-1], targets = w[1:]), so there is no padding and `mask` is all ones.
  * file-backed corpora (stdlib-code, files): windows tile the cached token array. The window order
    is a grain global shuffle, reshuffled every epoch (grain folds the epoch into the seed), and each
    epoch after the first shifts all window starts by a pseudo-random offset so that repeated epochs
    do not cut the text at the same places.
  * synthetic-math: window k is filled with fresh problems drawn from a generator seeded by k, so the
    unbounded corpus still has random access, and every window starts at a problem's beginning.
  * token shards (`scaling data prepare`): the same tiling, over the train shards read as one stream.

Processes. Each process builds only its rows of every global batch (a contiguous block, by process index),
so the global batch, and the iterator state below, do not depend on how many processes share it.

Resume. Because a batch depends only on its index, the grain iterator's state is one integer
(`next_index`), and `set_state` on a fresh iterator continues exactly where the old one stopped.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import grain
import numpy as np

from scaling.config.data import DataConfig
from scaling.data import arithmetic
from scaling.data.cache import bucket_of, stable_hash
from scaling.data.corpora import load_token_corpus
from scaling.data.tokenizers import Tokenizer, encode_documents
from scaling.errors import UserError

Batch = dict[str, np.ndarray]
# One worker thread overlaps batch assembly with the device step; more only fight over the GIL.
_READ_OPTIONS = grain.ReadOptions(num_threads=1, prefetch_buffer_size=4)
_EVAL_PROBLEM_POOL = 4096  # distinct held-out problems behind a synthetic-math eval set
# Drawing a synthetic-math eval set scans the small problem space for held-out problems (~0.7 s): a sweep
# worker that trains many runs on one task builds it once. Token corpora have their own on-disk cache.
_MATH_EVAL_SETS: dict[tuple, EvalSet] = {}


class TrainIterator(grain.DatasetIterator):
    """An infinite iterator of training batches; checkpoint it with `get_state` (or grain's Orbax
    handler, which accepts it as a `grain.DatasetIterator`)."""

    def __init__(self, parent: grain.DatasetIterator, fingerprint: str, tokens_per_batch: int):
        super().__init__(parent)
        self.fingerprint = fingerprint
        self.tokens_per_batch = tokens_per_batch

    def __next__(self) -> Batch:
        return next(self._parent)

    def get_state(self) -> dict[str, Any]:
        return {"grain": self._parent.get_state(), "pipeline": self.fingerprint}

    def set_state(self, state: dict[str, Any]) -> None:
        saved = state.get("pipeline")
        if saved is not None and saved != self.fingerprint:
            raise UserError(
                f"data: the checkpointed data pipeline ({saved}) differs from this run's ({self.fingerprint}); "
                "the data config, seq_len, batch_size or seed changed since the checkpoint"
            )
        self._parent.set_state(state.get("grain", state))


@dataclass
class EvalSet:
    """A fixed list of held-out batches; bits/byte = nats/token / ln 2 / bytes_per_token."""

    batches: list[Batch]
    bytes_per_token: float
    n_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_tokens = int(sum(b["mask"].sum() for b in self.batches))

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _seed32(*parts: Any) -> int:
    """Mix seeds by hashing: grain reshuffles epoch e with seed+e, so raw seeds 0,1,2 would share orders."""
    return int(stable_hash(list(parts)), 16) % 2**32


def _to_model_batch(windows: np.ndarray) -> Batch:
    windows = np.asarray(windows, dtype=np.int32)
    return {
        "inputs": np.ascontiguousarray(windows[:, :-1]),
        "targets": np.ascontiguousarray(windows[:, 1:]),
        "mask": np.ones(windows[:, 1:].shape, dtype=np.float32),
    }


def _check_shapes(seq_len: int, batch_size: int) -> None:
    if seq_len < 1 or batch_size < 1:
        raise UserError(f"data: seq_len and batch_size must be positive (got {seq_len}, {batch_size})")


def build_train_iterator(data_cfg: DataConfig, *, seq_len: int, batch_size: int, seed: int, tokenizer: Tokenizer,
                         process_index: int | None = None, process_count: int | None = None) -> TrainIterator:
    """Infinite, deterministic, exactly resumable stream of {"inputs", "targets", "mask"} batches.

    Each of `process_count` processes gets rows [i*B/P, (i+1)*B/P) of every global batch of B = batch_size
    sequences and reads only the windows of those rows; the default is this JAX process's share. The
    global batch, and so the checkpointed state, is the same whatever the number of processes.
    """
    _check_shapes(seq_len, batch_size)
    process_index, process_count = _process_share(process_index, process_count, batch_size)
    mixed_seed = _seed32(data_cfg.shuffle_seed, seed)
    if data_cfg.source == "synthetic-math":
        windows = grain.MapDataset.range(sys.maxsize).map(_math_window_fn(data_cfg, mixed_seed, seq_len, tokenizer))
    else:
        windows = _token_windows(data_cfg, tokenizer, seq_len, mixed_seed)
    local = batch_size // process_count
    if process_count > 1:
        every_window, first_row = windows, process_index * local

        def window_of_row(j: int) -> np.ndarray:  # row j of this process = a row of global batch j // local
            return every_window[(j // local) * batch_size + first_row + j % local]

        windows = grain.MapDataset.range(sys.maxsize).map(window_of_row)
    batches = windows.batch(local, drop_remainder=True).map(_to_model_batch)
    parent = batches.to_iter_dataset(_READ_OPTIONS).__iter__()
    identity = [data_cfg.model_dump(exclude={"cache_dir"}), seq_len, batch_size, seed, tokenizer.name]
    if data_cfg.source == "shards":  # the same folder prepared again from other inputs is other data
        from scaling.data.shards import shards_identity

        identity.append(shards_identity(data_cfg))
    return TrainIterator(parent, stable_hash(identity, 12), tokens_per_batch=batch_size * seq_len)


def _process_share(index: int | None, count: int | None, batch_size: int) -> tuple[int, int]:
    if index is None or count is None:
        import jax

        index, count = jax.process_index(), jax.process_count()
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is outside 0..{count - 1}")
    if batch_size % count:
        raise UserError(f"train.batch_size: {batch_size} sequences do not split evenly over {count} processes")
    return index, count


def _token_windows(cfg: DataConfig, tokenizer: Tokenizer, seq_len: int, seed: int) -> grain.MapDataset:
    tokens = load_token_corpus(cfg, tokenizer).train
    window = seq_len + 1
    # Leave room for a start offset of up to seq_len tokens in later epochs.
    n_windows = (len(tokens) - seq_len) // window
    if n_windows < 1:
        raise UserError(f"data: the training split has {len(tokens)} tokens, too few for one window of seq_len+1={window}")

    def read_window(index: int, window_id: int) -> np.ndarray:
        epoch = index // n_windows
        offset = 0 if epoch == 0 else bucket_of(f"{seed}:{epoch}", window)
        start = window_id * window + offset
        return np.asarray(tokens[start : start + window], dtype=np.int32)

    return grain.MapDataset.range(n_windows).shuffle(seed=seed).repeat(None).map_with_index(read_window)


def _math_window_fn(cfg: DataConfig, seed: int, seq_len: int, tokenizer: Tokenizer) -> Callable[[int], np.ndarray]:
    def make_window(index: int) -> np.ndarray:
        return _fill_window(arithmetic.corpus_documents(cfg.math, seed, index), seq_len + 1, tokenizer)

    return make_window


def _fill_window(documents: Iterator[str], length: int, tokenizer: Tokenizer) -> np.ndarray:
    """Concatenate EOS-terminated documents until `length` tokens; the last one is cut off."""
    pieces, total = [], 0
    eos = np.array([tokenizer.eos_id], dtype=np.int32)
    while total < length:
        tokens = encode_documents(tokenizer, [next(documents)])[0]
        pieces += [tokens.astype(np.int32), eos]
        total += len(tokens) + 1
    return np.concatenate(pieces)[:length]


def build_eval_set(data_cfg: DataConfig, *, seq_len: int, batch_size: int, n_batches: int, tokenizer: Tokenizer) -> EvalSet:
    """The same `n_batches` held-out batches on every call (and on every machine)."""
    _check_shapes(seq_len, batch_size)
    if n_batches < 1:
        raise UserError(f"data: n_batches for evaluation must be positive (got {n_batches})")
    n_windows = n_batches * batch_size
    if data_cfg.source == "synthetic-math":
        key = (data_cfg.model_dump_json(), seq_len, batch_size, n_batches, tokenizer.name)
        if key not in _MATH_EVAL_SETS:
            windows, bytes_per_token = _math_eval_windows(data_cfg, tokenizer, seq_len + 1, n_windows)
            _MATH_EVAL_SETS[key] = _eval_set(windows, batch_size, bytes_per_token)
        return _MATH_EVAL_SETS[key]
    else:
        windows, bytes_per_token = _token_eval_windows(data_cfg, tokenizer, seq_len + 1, n_windows)
    return _eval_set(windows, batch_size, bytes_per_token)


def _eval_set(windows: np.ndarray, batch_size: int, bytes_per_token: float) -> EvalSet:
    batches = [_to_model_batch(windows[i : i + batch_size]) for i in range(0, len(windows), batch_size)]
    for array in (a for batch in batches for a in batch.values()):
        array.setflags(write=False)  # a synthetic-math set is shared by every run of a process that asks for it
    return EvalSet(batches, bytes_per_token)


def _token_eval_windows(cfg: DataConfig, tokenizer: Tokenizer, window: int, n_windows: int):
    if cfg.eval_fraction == 0 and cfg.source != "shards":
        raise UserError("data.eval_fraction: is 0, so there is no held-out split to evaluate on")
    corpus = load_token_corpus(cfg, tokenizer)
    available = len(corpus.eval) // window
    if available < 1 and cfg.source == "shards":
        raise UserError(f"data.paths: the shards' held-out split has {len(corpus.eval)} tokens, fewer than "
                        f"seq_len+1={window}: prepare them with more documents or a larger --eval-fraction")
    if available < 1:
        raise UserError(
            f"data.eval_fraction: the held-out split has {len(corpus.eval)} tokens, fewer than seq_len+1={window}"
        )
    # Spread the windows over the whole split (not just its first files); repeat if it is small.
    if available >= n_windows:
        ids = np.linspace(0, available - 1, n_windows).round().astype(np.int64)
    else:
        ids = np.arange(n_windows) % available
    windows = np.stack([corpus.eval[i * window : (i + 1) * window] for i in ids]).astype(np.int32)
    return windows, corpus.meta["eval_bytes"] / corpus.meta["eval_tokens"]


def _math_eval_windows(cfg: DataConfig, tokenizer: Tokenizer, window: int, n_windows: int):
    used: list[str] = []

    def held_out_documents() -> Iterator[str]:
        for problem in itertools.islice(arithmetic.iter_eval_problems(cfg.math), _EVAL_PROBLEM_POOL):
            used.append(problem.held_out_document(cfg.math.worked_fraction))
            yield used[-1]
        while True:  # small problem spaces (or huge eval sets) cycle through the pool
            yield from list(used)

    stream = held_out_documents()  # shared: each window continues with the next held-out problem
    windows = np.stack([_fill_window(stream, window, tokenizer) for _ in range(n_windows)])
    n_tokens = sum(len(t) + 1 for t in encode_documents(tokenizer, used))
    return windows, sum(len(d.encode("utf-8")) for d in used) / n_tokens


def corpus_stats(data_cfg: DataConfig, tokenizer: Tokenizer) -> dict[str, Any]:
    """Sizes for `--dry-run` tables. synthetic-math is unbounded: its train token count is None."""
    stats: dict[str, Any] = {"source": data_cfg.source, "tokenizer": tokenizer.name, "vocab_size": tokenizer.vocab_size}
    if data_cfg.source == "synthetic-math":
        sample = [p.held_out_document(data_cfg.math.worked_fraction) for p in arithmetic.eval_problems(data_cfg.math, 256)]
        tokens = sum(len(t) + 1 for t in encode_documents(tokenizer, sample))
        return stats | {
            "unbounded": True,
            "n_train_tokens": None,
            "n_eval_tokens": None,
            "n_documents": None,
            "mean_tokens_per_document": tokens / len(sample),
            "bytes_per_token": sum(len(d.encode()) for d in sample) / tokens,
        }
    corpus = load_token_corpus(data_cfg, tokenizer)
    meta = corpus.meta
    return stats | {
        "unbounded": False,
        "n_train_tokens": meta["train_tokens"],
        "n_eval_tokens": meta["eval_tokens"],
        "n_documents": meta["train_documents"] + meta["eval_documents"],
        "n_train_documents": meta["train_documents"],
        "n_eval_documents": meta["eval_documents"],
        "train_bytes": meta["train_bytes"],
        "eval_bytes": meta["eval_bytes"],
        "bytes_per_token": (meta["train_bytes"] + meta["eval_bytes"]) / max(1, meta["train_tokens"] + meta["eval_tokens"]),
        "split": meta["split"],
        "cache_path": str(corpus.path),
    }
