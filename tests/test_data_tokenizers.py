"""Tokenizers round-trip text; BPE is trained once, saved beside the cache and reloaded."""
import pytest

from scaling.config.data import DataConfig
from scaling.data.tokenizers import BpeTokenizer, ByteTokenizer, Tokenizer, get_tokenizer

SAMPLES = ["", "hello world", "def f(x):\n    return x + 1\n", "naïve café — 数学 🚀", "<|eos|> stays text"]


@pytest.mark.parametrize("text", SAMPLES)
def test_byte_tokenizer_round_trips(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text.encode("utf-8"))
    assert all(0 <= i < 256 for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode(ids + [tok.eos_id, tok.pad_id]) == text  # specials decode to nothing


def test_byte_tokenizer_is_small_and_satisfies_the_protocol():
    tok = ByteTokenizer()
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == 258 and {tok.eos_id, tok.pad_id} == {256, 257}


def _write_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(12):
        lines = [f"def function_{i}_{j}(value):\n    return value * {j} + {i}\n" for j in range(40)]
        (corpus / f"doc{i}.txt").write_text("".join(lines) + "naïve café 数学\n")
    return corpus


def test_bpe_trains_saves_reloads_and_round_trips(tmp_path):
    corpus = _write_corpus(tmp_path)
    cfg = DataConfig(source="files", paths=[str(corpus)], tokenizer="bpe", bpe_vocab_size=320, cache_dir=str(tmp_path / "cache"))
    tok = get_tokenizer(cfg)
    assert isinstance(tok, BpeTokenizer) and isinstance(tok, Tokenizer)
    assert tok.path.is_file() and tok.path.is_relative_to(tmp_path / "cache")
    assert tok.vocab_size <= 320 and tok.eos_id != tok.pad_id
    for text in SAMPLES + ["def function_3_7(value):\n    return value * 7 + 3\n"]:
        ids = tok.encode(text)
        assert tok.eos_id not in ids and tok.decode(ids) == text
    # Merges were learned: repeated code compresses below one token per byte.
    code = "def function_1_2(value):\n    return value * 2 + 1\n"
    assert len(tok.encode(code)) < len(code.encode()) / 2

    mtime = tok.path.stat().st_mtime_ns
    again = get_tokenizer(cfg)  # reloaded from the saved JSON, not retrained
    assert again.path == tok.path and again.path.stat().st_mtime_ns == mtime
    assert again.name == tok.name and again.encode(code) == tok.encode(code)
