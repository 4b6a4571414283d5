"""User corpora: .txt, .jsonl and .parquet files (or globs), tokenized once into a reusable cache."""
import json

import numpy as np
import pytest

from scaling.config.data import DataConfig
from scaling.data import build_eval_set, build_train_iterator, corpus_stats
from scaling.data import corpora
from scaling.data.corpora import load_token_corpus
from scaling.data.tokenizers import ByteTokenizer
from scaling.errors import UserError

TOK = ByteTokenizer()


def _files_cfg(tmp_path, *paths, **kw):
    return DataConfig(source="files", paths=[str(p) for p in paths], cache_dir=str(tmp_path / "cache"), **kw)


PARQUET_SKIP = "reading .parquet needs the optional 'parquet' extra (pyarrow); the dev extra, and so CI, installs it"


def _make_corpus(tmp_path, parquet: bool = False):
    """6 .txt files and 30 .jsonl lines (+ 30 parquet rows with `parquet`: only the tests that read them
    need pyarrow)."""
    root = tmp_path / "data"
    root.mkdir()
    for i in range(6):
        (root / f"story{i}.txt").write_text(f"Story number {i}. " * 40)
    with open(root / "notes.jsonl", "w") as f:
        for i in range(30):
            f.write(json.dumps({"text": f"note {i}: " + "jsonl text " * 10, "id": i}) + "\n")
        f.write("\n")  # blank lines are allowed
    if parquet:
        pa = pytest.importorskip("pyarrow", reason=PARQUET_SKIP)
        pq = pytest.importorskip("pyarrow.parquet", reason=PARQUET_SKIP)
        table = pa.table({"text": [f"row {i} " + "parquet text " * 8 for i in range(30)], "n": list(range(30))})
        pq.write_table(table, root / "rows.parquet")
    return root


def test_txt_jsonl_and_parquet_are_all_ingested(tmp_path):
    root = _make_corpus(tmp_path, parquet=True)
    cfg = _files_cfg(tmp_path, root / "*.txt", root / "notes.jsonl", root / "rows.parquet", eval_fraction=0.2)
    corpus = load_token_corpus(cfg, TOK)
    stats = corpus_stats(cfg, TOK)
    assert stats["n_documents"] == 6 + 30 + 30
    assert stats["n_train_documents"] > 0 and stats["n_eval_documents"] > 0
    text = TOK.decode(np.concatenate([corpus.train, corpus.eval]).tolist())
    for needle in ("Story number 5.", "note 29: jsonl text", "row 29 parquet text"):
        assert needle in text


def test_a_directory_expands_to_its_supported_files(tmp_path):
    root = _make_corpus(tmp_path, parquet=True)
    assert corpus_stats(_files_cfg(tmp_path, root), TOK)["n_documents"] == 66


def test_second_build_reuses_the_cache_without_tokenizing(tmp_path, monkeypatch):
    root = _make_corpus(tmp_path)
    cfg = _files_cfg(tmp_path, root)
    first = load_token_corpus(cfg, TOK)
    assert not first.cache_hit

    def must_not_tokenize(*args, **kwargs):
        raise AssertionError("tokenized again despite a valid cache")

    monkeypatch.setattr(corpora, "_tokenize_into", must_not_tokenize)
    second = load_token_corpus(cfg, TOK)
    assert second.cache_hit and second.path == first.path
    np.testing.assert_array_equal(first.train, second.train)
    build_train_iterator(cfg, seq_len=32, batch_size=2, seed=0, tokenizer=TOK)  # also served from cache


def test_editing_a_file_invalidates_the_cache(tmp_path):
    root = _make_corpus(tmp_path)
    cfg = _files_cfg(tmp_path, root)
    before = load_token_corpus(cfg, TOK)
    (root / "story0.txt").write_text("A rewritten story. " * 50)
    after = load_token_corpus(cfg, TOK)
    assert not after.cache_hit and after.path != before.path


def test_single_file_is_split_at_the_tail_and_resumes_exactly(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(400)))
    cfg = _files_cfg(tmp_path, path, eval_fraction=0.1)
    stats = corpus_stats(cfg, TOK)
    assert stats["split"] == "tail-of-stream" and stats["n_eval_tokens"] > 0
    it = build_train_iterator(cfg, seq_len=32, batch_size=4, seed=0, tokenizer=TOK)
    # Far beyond one epoch (~300 windows): the stream is infinite, later epochs reshuffled.
    stream = [next(it) for _ in range(200)]
    state = it.get_state()
    tail = [next(it) for _ in range(3)]
    resumed = build_train_iterator(cfg, seq_len=32, batch_size=4, seed=0, tokenizer=TOK)
    resumed.set_state(state)
    for expected in tail:
        np.testing.assert_array_equal(next(resumed)["inputs"], expected["inputs"])
    first_epoch = np.concatenate([b["inputs"] for b in stream[:50]])
    second_epoch = np.concatenate([b["inputs"] for b in stream[100:150]])
    assert not np.array_equal(first_epoch, second_epoch)
    evals = build_eval_set(cfg, seq_len=32, batch_size=4, n_batches=2, tokenizer=TOK)
    assert "line 399" in TOK.decode(np.concatenate([b["inputs"].ravel() for b in evals]).tolist())


def _user_error(cfg) -> str:
    with pytest.raises(UserError) as e:
        load_token_corpus(cfg, TOK)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_missing_path_is_a_one_line_error(tmp_path):
    assert "nope.txt: no such file" in _user_error(_files_cfg(tmp_path, tmp_path / "nope.txt"))


def test_glob_matching_nothing_is_a_one_line_error(tmp_path):
    assert "matches no files" in _user_error(_files_cfg(tmp_path, tmp_path / "*.jsonl"))


def test_empty_corpus_is_a_one_line_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in _user_error(_files_cfg(tmp_path, tmp_path / "empty.txt"))


def test_jsonl_line_without_the_text_field_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "wrong key"}\n')
    message = _user_error(_files_cfg(tmp_path, path))
    assert f"{path}:2" in message and "'text'" in message


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{not json\n')
    assert f"{path}:2: invalid JSON" in _user_error(_files_cfg(tmp_path, path))


def test_parquet_without_the_column_names_file_and_columns(tmp_path):
    pa = pytest.importorskip("pyarrow", reason=PARQUET_SKIP)
    pq = pytest.importorskip("pyarrow.parquet", reason=PARQUET_SKIP)
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    message = _user_error(_files_cfg(tmp_path, path))
    assert str(path) in message and "'text'" in message and "body" in message


def test_unsupported_extension_is_a_one_line_error(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n")
    message = _user_error(_files_cfg(tmp_path, path))
    assert "table.csv" in message and "unsupported" in message


def test_text_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    assert "latin1.txt: not valid UTF-8" in _user_error(_files_cfg(tmp_path, path))


def test_grain_orbax_checkpoint_handler_restores_the_train_iterator(tmp_path):
    from etils import epath
    from grain.checkpoint import CheckpointHandler

    root = _make_corpus(tmp_path)
    cfg = _files_cfg(tmp_path, root)
    it = build_train_iterator(cfg, seq_len=16, batch_size=2, seed=9, tokenizer=TOK)
    [next(it) for _ in range(5)]
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    CheckpointHandler().save(epath.Path(ckpt), item=it)
    expected = next(it)
    fresh = build_train_iterator(cfg, seq_len=16, batch_size=2, seed=9, tokenizer=TOK)
    restored = CheckpointHandler().restore(epath.Path(ckpt), item=fresh)
    np.testing.assert_array_equal(next(restored)["inputs"], expected["inputs"])


def test_state_from_a_different_pipeline_is_refused(tmp_path):
    root = _make_corpus(tmp_path)
    cfg = _files_cfg(tmp_path, root)
    state = build_train_iterator(cfg, seq_len=16, batch_size=2, seed=0, tokenizer=TOK).get_state()
    other = build_train_iterator(cfg, seq_len=32, batch_size=2, seed=0, tokenizer=TOK)
    with pytest.raises(UserError, match="differs"):
        other.set_state(state)


def test_concurrent_builds_of_one_cache_entry_both_succeed(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    root = _make_corpus(tmp_path)
    cfg = _files_cfg(tmp_path, root)
    with ThreadPoolExecutor(4) as pool:
        corpora_ = list(pool.map(lambda _: load_token_corpus(cfg, TOK), range(4)))
    assert len({c.path for c in corpora_}) == 1
    for c in corpora_[1:]:
        np.testing.assert_array_equal(c.train, corpora_[0].train)
    leftovers = [p.name for p in corpora_[0].path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
