"""Tokenized corpora, built once per (content, tokenizer) and memory-mapped by every later run.

A corpus is two flat token arrays, `train.npy` and `eval.npy`: the documents of each split in
corpus order, each followed by EOS. Packing windows are cut from these arrays by the pipeline.
The cache entry's name hashes the corpus fingerprint (file names, sizes, mtimes) and the tokenizer,
so editing a file or switching tokenizer rebuilds it, and nothing else does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from scaling.config.data import DataConfig
from scaling.data import cache
from scaling.data.sources import corpus_fingerprint, is_eval_document, iter_documents
from scaling.data.tokenizers import ByteTokenizer, Tokenizer, encode_documents, token_dtype
from scaling.errors import UserError

_FORMAT_VERSION = 1
_ENCODE_CHUNK_BYTES = 4_000_000  # documents are tokenized in batches of about this much text


@dataclass
class TokenCorpus:
    train: np.ndarray
    eval: np.ndarray
    meta: dict[str, Any]  # document and byte counts per split, tokenizer name, fingerprint
    path: Path
    cache_hit: bool  # False when this call tokenized the corpus


def token_cache_dir(cfg: DataConfig, tokenizer: Tokenizer) -> Path:
    key = cache.stable_hash([corpus_fingerprint(cfg), tokenizer.name, cfg.eval_fraction, _FORMAT_VERSION])
    return cache.resolve_cache_dir(cfg) / "tokens" / f"{cfg.source}-{tokenizer.name}-{key}"


def load_token_corpus(cfg: DataConfig, tokenizer: Tokenizer) -> TokenCorpus:
    """The cached token arrays of a file-backed corpus, tokenizing it first if no process has yet."""
    if cfg.source == "synthetic-math":
        raise ValueError("synthetic-math is generated on the fly; it has no token cache")
    if cfg.source == "shards":  # already tokenized by `scaling data prepare`: read in place
        from scaling.data.shards import load_shard_corpus

        return load_shard_corpus(cfg)
    final = token_cache_dir(cfg, tokenizer)
    cache_hit = True
    meta = cache.read_json(final / "meta.json")
    if meta is None:
        cache_hit = False
        build = cache.private_build_dir(final)
        _tokenize_into(build, cfg, tokenizer)
        cache.publish_dir(build, final)
        meta = cache.read_json(final / "meta.json")
    return TokenCorpus(
        train=cache.open_tokens(final / "train.npy"),
        eval=cache.open_tokens(final / "eval.npy"),
        meta=meta,
        path=final,
        cache_hit=cache_hit,
    )


class _SplitWriter:
    """Appends EOS-terminated documents of one split to a raw file, then converts it to .npy."""

    def __init__(self, raw_path: Path, dtype: type, eos_id: int):
        self.raw_path, self.dtype, self.eos = raw_path, dtype, np.array([eos_id], dtype=dtype)
        self._file: BinaryIO = open(raw_path, "wb")
        self.n_tokens = self.n_documents = self.n_bytes = 0

    def add(self, tokens: np.ndarray, n_bytes: int) -> None:
        if len(tokens) == 0:
            return
        self._file.write(np.concatenate([tokens.astype(self.dtype, copy=False), self.eos]).tobytes())
        self.n_tokens += len(tokens) + 1
        self.n_documents += 1
        self.n_bytes += n_bytes

    def raw_tokens(self) -> np.ndarray:
        self._file.close()
        if self.n_tokens == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(self.raw_path, dtype=self.dtype, mode="r")


def _tokenize_into(build: Path, cfg: DataConfig, tokenizer: Tokenizer) -> None:
    dtype = token_dtype(tokenizer.vocab_size)
    train = _SplitWriter(build / "train.raw", dtype, tokenizer.eos_id)
    held_out = _SplitWriter(build / "eval.raw", dtype, tokenizer.eos_id)
    pending: list[tuple[_SplitWriter, str]] = []
    pending_bytes = 0

    def flush() -> None:
        texts = [text for _, text in pending]
        for (writer, text), tokens in zip(pending, encode_documents(tokenizer, texts)):
            writer.add(tokens, len(text.encode("utf-8")))
        pending.clear()

    for doc in iter_documents(cfg):
        writer = held_out if is_eval_document(doc.split_key, cfg.eval_fraction) else train
        pending.append((writer, doc.text))
        pending_bytes += len(doc.text)
        if pending_bytes >= _ENCODE_CHUNK_BYTES:
            flush()
            pending_bytes = 0
    flush()

    train_tokens, eval_tokens = train.raw_tokens(), held_out.raw_tokens()
    if train.n_tokens + held_out.n_tokens == 0:
        raise UserError(f"data.paths: the corpus is empty (no text in {', '.join(cfg.paths) or cfg.source})")
    meta = {
        "source": cfg.source,
        "tokenizer": tokenizer.name,
        "fingerprint": corpus_fingerprint(cfg),
        "split": "by-document-hash",
        "train_tokens": train.n_tokens,
        "eval_tokens": held_out.n_tokens,
        "train_documents": train.n_documents,
        "eval_documents": held_out.n_documents,
        "train_bytes": train.n_bytes,
        "eval_bytes": held_out.n_bytes,
    }
    if cfg.eval_fraction > 0 and (train.n_tokens == 0 or held_out.n_tokens == 0):
        train_tokens, eval_tokens = _split_tail(train_tokens, eval_tokens, cfg.eval_fraction, tokenizer, meta)
    np.save(build / "train.npy", train_tokens)
    np.save(build / "eval.npy", eval_tokens)
    del train_tokens, eval_tokens
    (build / "train.raw").unlink()
    (build / "eval.raw").unlink()
    # meta.json last: its presence is what marks an entry as complete.
    (build / "meta.json").write_text(json.dumps(meta, indent=1))


def _split_tail(train: np.ndarray, held_out: np.ndarray, fraction: float, tokenizer: Tokenizer, meta: dict):
    """Too few documents for a document-level split (e.g. one .txt file): hold out the stream's tail."""
    everything = train if len(train) else held_out
    total_bytes = meta["train_bytes"] + meta["eval_bytes"]
    cut = int(len(everything) * (1.0 - fraction))
    train, held_out = everything[:cut], everything[cut:]
    if isinstance(tokenizer, ByteTokenizer):
        eval_bytes = int(np.count_nonzero(held_out < 256))
    else:  # approximate: bytes per token is nearly uniform along one text
        eval_bytes = round(total_bytes * len(held_out) / max(1, len(everything)))
    docs = meta["train_documents"] + meta["eval_documents"]
    meta.update(
        split="tail-of-stream",
        train_tokens=len(train),
        eval_tokens=len(held_out),
        train_documents=docs,
        eval_documents=0,
        train_bytes=total_bytes - eval_bytes,
        eval_bytes=eval_bytes,
    )
    return train, held_out
