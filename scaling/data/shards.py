"""Prepared token shards (`scaling data prepare`) as a training corpus: `data: {source: shards, paths: [DIR]}`.

A prepared directory holds `manifest.json`, a copy of the `tokenizer.json` it was made with, and raw
little-endian token files `train-NNNNN.bin` / `eval-NNNNN.bin` (dtype in the manifest). Each split is
one stream, its shards in order; several directories (same tokenizer) are read as one stream each.
Shards are memory-mapped, so every process on a machine shares the page cache and reads only the
windows it is asked for.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from scaling.config.data import DataConfig
from scaling.data.cache import stable_hash
from scaling.errors import UserError

FORMAT = "scaling-token-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
SPLITS = ("train", "eval")


def read_manifest(directory: str | Path, label: str = "data.paths") -> dict[str, Any]:
    """The manifest of a finished preparation; anything else is a one-line UserError naming the directory."""
    path = Path(directory).expanduser() / MANIFEST
    if not path.is_file():
        unfinished = (path.parent / ".prepare").is_dir()
        hint = " (an unfinished preparation: rerun `scaling data prepare`)" if unfinished else ""
        raise UserError(f"{label}: {directory} holds no {MANIFEST}{hint}; make one with `scaling data prepare`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{label}: {path} is not readable JSON ({type(e).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{label}: {path} is not a token-shard manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise UserError(f"{label}: {path} has format version {manifest.get('version')}; "
                        f"this scaling reads version {FORMAT_VERSION}: prepare it again")
    return manifest


class ShardTokenizer:
    """The tokenizer a preparation was made with (its copied tokenizer.json), with the manifest's EOS.
    There is no padding token in a pretrained vocabulary in general, so padding reuses EOS: consumers
    that pad (samplers) mask padded positions, so the id only has to be valid."""

    def __init__(self, directory: Path, manifest: dict[str, Any]):
        import tokenizers as hf_tokenizers

        info = manifest["tokenizer"]
        blob = (directory / TOKENIZER_FILE).read_bytes()
        if hashlib.sha256(blob).hexdigest() != info["sha256"]:
            raise UserError(f"data.paths: {directory / TOKENIZER_FILE} differs from the one the shards were made "
                            "with (sha256 mismatch)")
        self._tok = hf_tokenizers.Tokenizer.from_str(blob.decode("utf-8"))
        self._tok.encode_special_tokens = True  # as in prepare: text that spells a special token stays text
        self.vocab_size = int(info["vocab_size"])
        self.eos_id = int(info["eos_id"])
        self.pad_id = self.eos_id
        self.name = f"hf{self.vocab_size}-{info['sha256'][:10]}"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)


class TokenStream:
    """Shards of one split read as one flat array: `len()` and `stream[a:b]` (a copy, as np.ndarray)."""

    def __init__(self, files: list[Path], dtype: np.dtype):
        self.arrays = [np.memmap(f, dtype=dtype, mode="r") for f in files]
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays])
        self.dtype = dtype

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a TokenStream is read by contiguous slices")
        start, stop, _ = index.indices(len(self))
        pieces = []
        shard = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < stop:
            base = int(self.starts[shard])
            take = min(stop, int(self.starts[shard + 1])) - start
            pieces.append(self.arrays[shard][start - base : start - base + take])
            start += take
            shard += 1
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=self.dtype)


@dataclass
class ShardCorpus:
    """Same fields as corpora.TokenCorpus, so the pipeline cuts windows from either alike."""

    train: TokenStream
    eval: TokenStream
    meta: dict[str, Any]
    path: Path
    cache_hit: bool = True


def _directories(cfg: DataConfig) -> list[Path]:
    return [Path(p).expanduser() for p in cfg.paths]


def _manifests(cfg: DataConfig) -> list[tuple[Path, dict[str, Any]]]:
    found = [(d, read_manifest(d)) for d in _directories(cfg)]
    first_dir, first = found[0]
    for directory, manifest in found[1:]:
        if manifest["tokenizer"]["sha256"] != first["tokenizer"]["sha256"]:
            raise UserError(f"data.paths: {directory} and {first_dir} were prepared with different tokenizers")
    return found


def shard_tokenizer(cfg: DataConfig) -> ShardTokenizer:
    directory, manifest = _manifests(cfg)[0]
    return ShardTokenizer(directory, manifest)


def shards_identity(cfg: DataConfig) -> str:
    """What the windows depend on besides the config: the shards' contents as their manifests describe them.
    A directory prepared again from other inputs under the same path is then a different data pipeline."""
    return stable_hash([{k: m[k] for k in ("tokenizer", "dtype", "splits", "inputs")} for _, m in _manifests(cfg)])


def load_shard_corpus(cfg: DataConfig) -> ShardCorpus:
    found = _manifests(cfg)
    streams, meta = {}, {"split": found[0][1]["split"]["rule"]}
    for split in SPLITS:
        files = []
        for directory, manifest in found:
            for shard in manifest["splits"][split]["shards"]:
                path = directory / shard["file"]
                expected = shard["tokens"] * np.dtype(manifest["dtype"]).itemsize
                if not path.is_file() or path.stat().st_size != expected:
                    raise UserError(f"data.paths: {path} is missing or not the size its manifest records "
                                    f"({expected} bytes)")
                files.append(path)
        streams[split] = TokenStream(files, np.dtype(found[0][1]["dtype"]))
        for key in ("tokens", "documents", "bytes"):
            meta[f"{split}_{key}"] = sum(m["splits"][split][key] for _, m in found)
    return ShardCorpus(train=streams["train"], eval=streams["eval"], meta=meta, path=found[0][0])
