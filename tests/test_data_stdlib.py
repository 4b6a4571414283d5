"""The default corpus: the stdlib's own Python sources, split by file, packed by a grain pipeline."""
import json

import numpy as np
import pytest

from scaling.config.data import DataConfig
from scaling.data import build_eval_set, build_train_iterator, corpus_stats
from scaling.data.corpora import load_token_corpus
from scaling.data.sources import is_eval_document, stdlib_files
from scaling.data.tokenizers import ByteTokenizer

SEQ, BATCH = 64, 4


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return DataConfig(cache_dir=str(tmp_path_factory.mktemp("cache")))


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


def test_stdlib_file_list_is_sorted_and_skips_site_packages_and_tests():
    files = stdlib_files(include_tests=False)
    keys = [f.key for f in files]
    assert keys == sorted(keys) and len(keys) > 200
    assert "os.py" in keys and "json/decoder.py" in keys
    assert not any(part in ("site-packages", "test", "tests") for k in keys for part in k.split("/"))


def test_split_is_by_file_deterministic_and_disjoint():
    keys = [f.key for f in stdlib_files(include_tests=False)]
    held_out = {k for k in keys if is_eval_document(k, 0.05)}
    again = {k for k in keys if is_eval_document(k, 0.05)}
    assert held_out == again and 0 < len(held_out) < len(keys) / 5
    # A larger fraction only moves files into the held-out side (nested splits).
    assert held_out <= {k for k in keys if is_eval_document(k, 0.2)}


def test_corpus_is_tokenized_once_and_cached(cfg):
    tok = ByteTokenizer()
    first = load_token_corpus(cfg, tok)
    second = load_token_corpus(cfg, tok)
    assert second.cache_hit and second.path == first.path
    meta = json.loads((first.path / "meta.json").read_text())
    assert meta["train_tokens"] == len(second.train) > 1_000_000
    assert meta["eval_tokens"] == len(second.eval) > 10_000
    assert (second.train == tok.eos_id).sum() == meta["train_documents"]
    assert second.train.dtype == np.uint16


def test_corpus_stats_report_split_sizes(cfg):
    stats = corpus_stats(cfg, ByteTokenizer())
    assert stats["n_documents"] == stats["n_train_documents"] + stats["n_eval_documents"]
    assert stats["n_train_tokens"] > 20 * stats["n_eval_tokens"] / 2
    assert 0.99 < stats["bytes_per_token"] <= 1.0  # bytes, plus one EOS per file
    # `scaling data stats --json` prints this dict: plain JSON values (no numpy scalars), unchanged by a round trip.
    assert json.loads(json.dumps(stats)) == stats
    assert all(type(v).__module__ == "builtins" for v in stats.values()), {k: type(v) for k, v in stats.items()}


def test_batches_have_shapes_dtypes_and_shifted_targets(cfg):
    it = build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=0, tokenizer=ByteTokenizer())
    batch = next(it)
    assert batch["inputs"].shape == batch["targets"].shape == batch["mask"].shape == (BATCH, SEQ)
    assert batch["inputs"].dtype == batch["targets"].dtype == np.int32
    assert batch["mask"].dtype == np.float32 and batch["mask"].min() == 1.0
    np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
    assert it.tokens_per_batch == BATCH * SEQ


def test_same_seed_same_batches_other_seed_other_batches(cfg):
    tok = ByteTokenizer()
    a = _take(build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=3, tokenizer=tok), 5)
    b = _take(build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=3, tokenizer=tok), 5)
    c = _take(build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=4, tokenizer=tok), 5)
    _assert_same_batches(a, b)
    assert not np.array_equal(a[0]["inputs"], c[0]["inputs"])


def test_set_state_resumes_exactly_where_the_stream_was(cfg):
    tok = ByteTokenizer()
    uninterrupted = _take(build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=1, tokenizer=tok), 12)
    first = build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=1, tokenizer=tok)
    _take(first, 7)
    state = json.loads(json.dumps(first.get_state()))  # survives a JSON round trip, as in a checkpoint
    resumed = build_train_iterator(cfg, seq_len=SEQ, batch_size=BATCH, seed=1, tokenizer=tok)
    resumed.set_state(state)
    _assert_same_batches(_take(resumed, 5), uninterrupted[7:])


def test_eval_set_is_identical_across_calls(cfg):
    tok = ByteTokenizer()
    a = build_eval_set(cfg, seq_len=SEQ, batch_size=BATCH, n_batches=3, tokenizer=tok)
    b = build_eval_set(cfg, seq_len=SEQ, batch_size=BATCH, n_batches=3, tokenizer=tok)
    assert len(a) == 3 and a.n_tokens == 3 * BATCH * SEQ
    _assert_same_batches(a.batches, b.batches)
    assert 0.99 < a.bytes_per_token <= 1.0
    # Held-out windows come from held-out files: none of them appears in the training array.
    train = load_token_corpus(cfg, tok).train
    window = np.asarray(a.batches[0]["inputs"][0], dtype=train.dtype)
    starts = np.flatnonzero(train[: len(train) - SEQ] == window[0])[:20000]
    assert not any(np.array_equal(train[s : s + SEQ], window) for s in starts)
