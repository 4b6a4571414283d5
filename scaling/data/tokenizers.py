"""Tokenizers: raw UTF-8 bytes (the default: no training, no unknowns) or a locally trained byte-level BPE.

Both end every document with `eos_id`; `pad_id` exists for consumers that must pad (samplers,
eval batches of ragged prompts) and never appears inside packed training windows.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

from scaling.config.data import DataConfig
from scaling.data.cache import resolve_cache_dir, stable_hash
from scaling.files import write_atomic

if TYPE_CHECKING:
    import tokenizers as hf_tokenizers

EOS_TEXT = "<|eos|>"
PAD_TEXT = "<|pad|>"


@runtime_checkable
class Tokenizer(Protocol):
    name: str  # identifies the exact vocabulary; part of every token-cache key
    vocab_size: int
    eos_id: int
    pad_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class ByteTokenizer:
    """Token i < 256 is byte i; then EOS and PAD. 258 ids: the model pads its embedding itself."""

    name = "byte"
    vocab_size = 258
    eos_id = 256
    pad_id = 257

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        # frombuffer is a zero-copy view of the bytes; tokenizing 30 MB takes milliseconds.
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def decode(self, ids: Iterable[int]) -> str:
        raw = bytes(i for i in ids if 0 <= i < 256)
        return raw.decode("utf-8", errors="replace")


class BpeTokenizer:
    """A byte-level BPE from the `tokenizers` library, loaded from its saved JSON."""

    def __init__(self, path: str | Path):
        import tokenizers as hf_tokenizers

        self.path = Path(path)
        blob = self.path.read_text()
        self._tok: hf_tokenizers.Tokenizer = hf_tokenizers.Tokenizer.from_str(blob)
        # Text that happens to contain "<|eos|>" must stay text, not end the document.
        self._tok.encode_special_tokens = True
        self.vocab_size = self._tok.get_vocab_size()
        self.eos_id = self._tok.token_to_id(EOS_TEXT)
        self.pad_id = self._tok.token_to_id(PAD_TEXT)
        self.name = f"bpe{self.vocab_size}-{stable_hash(blob, 10)}"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)


def train_bpe(texts: Iterable[str], vocab_size: int, path: Path) -> BpeTokenizer:
    """Learn byte-level BPE merges from `texts` and save the tokenizer JSON atomically at `path`."""
    import tokenizers as hf_tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = hf_tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TEXT, PAD_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknowns
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    write_atomic(path, tok.to_str().encode())
    return BpeTokenizer(path)


def encode_documents(tokenizer: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids of each text (no EOS), as uint16/uint32 arrays; batched for BPE speed."""
    if isinstance(tokenizer, ByteTokenizer):
        return [tokenizer.encode_array(t) for t in texts]
    dtype = token_dtype(tokenizer.vocab_size)
    batch = tokenizer.encode_batch(texts) if hasattr(tokenizer, "encode_batch") else map(tokenizer.encode, texts)
    return [np.asarray(ids, dtype=dtype) for ids in batch]


def token_dtype(vocab_size: int) -> type:
    return np.uint16 if vocab_size <= 2**16 else np.uint32


def bpe_sample(texts: Iterator[str], budget_bytes: int) -> Iterator[str]:
    """The first documents of `texts` up to about `budget_bytes` of UTF-8 (training BPE on more is slow)."""
    used = 0
    for text in texts:
        if used >= budget_bytes:
            return
        text = text[: budget_bytes - used]
        used += len(text.encode("utf-8"))
        yield text


def get_tokenizer(cfg: DataConfig) -> Tokenizer:
    """The tokenizer named by `cfg.tokenizer`; BPE is trained on the first call and reused afterwards.
    Token shards bring their own: the tokenizer.json they were prepared with."""
    if cfg.source == "shards":
        from scaling.data.shards import shard_tokenizer

        return shard_tokenizer(cfg)
    if cfg.tokenizer == "byte":
        return ByteTokenizer()
    from scaling.data.sources import corpus_fingerprint, training_texts

    key = stable_hash([corpus_fingerprint(cfg), cfg.bpe_vocab_size, cfg.bpe_train_bytes])
    path = resolve_cache_dir(cfg) / "tokenizers" / f"bpe{cfg.bpe_vocab_size}-{key}.json"
    if path.is_file():
        return BpeTokenizer(path)
    return train_bpe(bpe_sample(training_texts(cfg), cfg.bpe_train_bytes), cfg.bpe_vocab_size, path)
