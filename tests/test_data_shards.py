"""Your own corpus: `scaling data prepare` makes token shards with a pretrained tokenizer; runs train on them.

Tokenizers are built here (a small BPE, and a word-level one padded past 65,536 entries), never downloaded.
"""
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from scaling.cli.main import main
from scaling.config.data import DataConfig
from scaling.config.run import run_config_from_dict
from scaling.data import build_eval_set, build_train_iterator, corpus_stats, get_tokenizer
from scaling.data.shards import TokenStream, read_manifest
from test_train import _kill_after_checkpoint, _train_subprocess, metrics, write_config

WORDS = ("the a cat dog sat ran on under mat hill green red quick slow river stone tree bird sang loud "
         "over small big house road night day sun moon and then away far near").split()
EOS = "<|endoftext|>"


def _document(rng: random.Random) -> str:
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + "."
                 for _ in range(rng.randint(1, 6))]
    return " ".join(sentences)


def _write_corpus(root: Path, n_jsonl: int, docs_per_file: int, seed: int = 0) -> list[Path]:
    """jsonl files, one multi-line .txt and one parquet file: every reader prepare supports."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    root.mkdir(parents=True)
    files = []
    for i in range(n_jsonl):
        path = root / f"part{i:02d}.jsonl"
        path.write_text("".join(json.dumps({"text": _document(rng), "id": j}) + "\n" for j in range(docs_per_file)))
        files.append(path)
    (root / "book.txt").write_text("\n".join(_document(rng) for _ in range(docs_per_file)))
    pq.write_table(pa.table({"text": [_document(rng) for _ in range(docs_per_file)]}), root / "rows.parquet")
    return files + [root / "book.txt", root / "rows.parquet"]


def _bpe_tokenizer(path: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=[EOS], show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(path))
    return path


def _big_word_tokenizer(path: Path) -> Path:
    """Word-level, 70,000 entries; the corpus's words get the ids above 65,536, so only uint32 holds them."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = sorted({w for w in WORDS} | {w.capitalize() for w in WORDS} | {"."})
    vocab = {f"filler{i}": i for i in range(66_000)}
    vocab |= {w: 66_000 + i for i, w in enumerate(words)}
    vocab |= {"[UNK]": len(vocab), "</s>": len(vocab) + 1}
    vocab |= {f"spare{i}": i for i in range(len(vocab), 70_000)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # "sat." is two words: "sat" and "."
    tok.decoder = decoders.WordPiece()
    tok.save(str(path))
    return path


def _prepare(*args) -> int:
    return main(["data", "prepare", *map(str, args), "--quiet"])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A BPE corpus in small shards (several per split, windows cross shard ends), prepared once."""
    root = tmp_path_factory.mktemp("small")
    files = _write_corpus(root / "corpus", n_jsonl=3, docs_per_file=150)
    texts = [json.loads(line)["text"] for line in files[0].read_text().splitlines()]
    tokenizer = _bpe_tokenizer(root / "tokenizer.json", texts)
    assert _prepare(*files, "--tokenizer", tokenizer, "--out", root / "shards", "--eval-fraction", "0.1",
                    "--shard-tokens", "1000") == 0
    return root, files, tokenizer, root / "shards"


def test_prepare_writes_uint16_shards_that_decode_back_to_the_documents(small):
    root, files, tokenizer, shards = small
    manifest = read_manifest(shards)
    tok = get_tokenizer(DataConfig(source="shards", paths=[str(shards)]))
    assert manifest["dtype"] == "uint16" and manifest["tokenizer"]["vocab_size"] == tok.vocab_size <= 400
    assert manifest["tokenizer"]["eos_token"] == EOS and tok.eos_id == manifest["tokenizer"]["eos_id"]
    assert [i["path"] for i in manifest["inputs"]] == [str(f.resolve()) for f in files]
    assert all(i["size"] == f.stat().st_size for i, f in zip(manifest["inputs"], files))
    for split in ("train", "eval"):
        info = manifest["splits"][split]
        assert len(info["shards"]) >= 2 and all(s["tokens"] <= 1000 for s in info["shards"])
        stream = np.concatenate([np.fromfile(shards / s["file"], dtype="<u2") for s in info["shards"]])
        assert len(stream) == info["tokens"] == sum(s["tokens"] for s in info["shards"])
        assert np.count_nonzero(stream == tok.eos_id) == info["documents"] and stream[-1] == tok.eos_id
    # 3 x 150 jsonl lines + 150 parquet rows + the .txt file (one block: one document, in one split).
    assert manifest["splits"]["train"]["documents"] + manifest["splits"]["eval"]["documents"] == 601
    assert 30 <= manifest["splits"]["eval"]["documents"] <= 100  # about 10% held out
    train = np.concatenate([np.fromfile(shards / s["file"], dtype="<u2")
                            for s in manifest["splits"]["train"]["shards"]])
    first_doc = train[: int(np.argmax(train == tok.eos_id))]
    jsonl_texts = [json.loads(line)["text"] for f in files[:3] for line in f.read_text().splitlines()]
    assert tok.decode(first_doc.tolist()) in jsonl_texts[:20]
    assert tok.decode(train.tolist()[:2000]).count(".") > 20  # real text, not ids of something else


def test_shards_read_as_one_stream_across_shard_files(small):
    *_, shards = small
    files = sorted(shards.glob("train-*.bin"))
    stream = TokenStream(files, np.dtype("<u2"))
    flat = np.concatenate([np.fromfile(f, dtype="<u2") for f in files])
    assert len(stream) == len(flat)
    rng = np.random.default_rng(0)
    for start in [0, 990, 999, 1000, len(flat) - 7] + rng.integers(0, len(flat), 20).tolist():
        np.testing.assert_array_equal(stream[start : start + 65], flat[start : start + 65])


def test_several_prepared_folders_train_as_one_corpus(small, tmp_path):
    *_, shards = small
    (tmp_path / "copy").symlink_to(shards)
    alone = DataConfig(source="shards", paths=[str(shards)])
    one = corpus_stats(alone, get_tokenizer(alone))
    cfg = DataConfig(source="shards", paths=[str(shards), str(tmp_path / "copy")])
    both = corpus_stats(cfg, get_tokenizer(cfg))
    assert both["n_train_tokens"] == 2 * one["n_train_tokens"] > 0 and both["vocab_size"] == one["vocab_size"]
    assert both["n_eval_tokens"] == 2 * one["n_eval_tokens"] and both["n_documents"] == 2 * one["n_documents"]


def test_rerunning_a_finished_prepare_changes_nothing_and_other_inputs_are_refused(small, capsys):
    root, files, tokenizer, shards = small
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in shards.iterdir()}
    assert _prepare(*files, "--tokenizer", tokenizer, "--out", shards, "--eval-fraction", "0.1",
                    "--shard-tokens", "1000") == 0
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in shards.iterdir()} == before
    capsys.readouterr()
    assert _prepare(*files[:2], "--tokenizer", tokenizer, "--out", shards, "--eval-fraction", "0.1",
                    "--shard-tokens", "1000") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different preparation" in err and "inputs" in err


def _no_eos_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "cat": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))
    return path


@pytest.mark.parametrize("case, expected", [
    ("missing input", "FILES: "),
    ("tokenizer missing", "--tokenizer: "),
    ("tokenizer unreadable", "is not a readable tokenizer.json"),
    ("no end-of-text token", "--eos"),
    ("unknown --eos", "--eos: '<nope>' is not a token"),
    ("out holds other files", "--out: "),
    ("parquet without the text column", "no column 'body'"),
])
def test_bad_prepare_input_is_one_line_and_exit_2(small, tmp_path, capsys, case, expected):
    _, files, tokenizer, _ = small
    args = [files[0], "--tokenizer", tokenizer, "--out", tmp_path / "out"]
    if case == "missing input":
        args[0] = tmp_path / "nope.jsonl"
    elif case == "tokenizer missing":
        args[2] = tmp_path / "nope.json"
    elif case == "tokenizer unreadable":
        (tmp_path / "bad.json").write_text('{"model": ')
        args[2] = tmp_path / "bad.json"
    elif case == "no end-of-text token":
        args[2] = _no_eos_tokenizer(tmp_path / "tok.json")
    elif case == "unknown --eos":
        args += ["--eos", "<nope>"]
    elif case == "parquet without the text column":
        args[0] = next(f for f in files if f.suffix == ".parquet")
        args += ["--text-field", "body"]
    else:
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _prepare(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert case == "out holds other files" or not (tmp_path / "out").exists()  # refused before writing


def test_killed_prepare_resumes_to_the_bytes_of_an_uninterrupted_one(tmp_path):
    files = _write_corpus(tmp_path / "corpus", n_jsonl=20, docs_per_file=800, seed=1)[:-1]
    tokenizer = _bpe_tokenizer(tmp_path / "tokenizer.json", [_document(random.Random(2)) for _ in range(500)])
    args = [*map(str, files), "--tokenizer", str(tokenizer), "--shard-tokens", "20000", "--quiet"]
    assert main(["data", "prepare", *args, "--out", str(tmp_path / "straight")]) == 0

    out = tmp_path / "killed"
    victim = subprocess.Popen([sys.executable, "-m", "scaling", "data", "prepare", *args, "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = out / ".prepare" / "progress.json"
    deadline = time.time() + 120
    while time.time() < deadline and not journal.is_file() and victim.poll() is None:
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (out / "manifest.json").exists(), "prepare finished before it could be killed"
    assert json.loads(journal.read_text())["done"] < len(files)

    assert main(["data", "prepare", *args, "--out", str(out)]) == 0
    straight = {p.relative_to(tmp_path / "straight"): p.read_bytes() for p in (tmp_path / "straight").rglob("*")
                if p.is_file()}
    resumed = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(straight) > 10 and resumed == straight


def _shards_run(shards: Path, vocab: int, **train) -> dict:
    return {
        "model": {"name": "tiny", "D": 32, "L": 2, "H": 2, "F": 64, "max_seq_len": 64, "V": vocab},
        "data": {"source": "shards", "paths": [str(shards)]},
        "mesh": {"devices": 1},
        "optimizer": {"lr": 1e-2, "warmup": 10},
        "train": {"tokens": 16 * 64 * 80, "seq_len": 64, "batch_size": 16, "log_every": 5, "eval_every": 20,
                  "checkpoint_every": 10, "eval_batches": 2, "progress": False, **train},
    }


def test_training_on_shards_resumes_exactly_after_sigkill(small, tmp_path):
    *_, shards = small
    vocab = read_manifest(shards)["tokenizer"]["vocab_size"]
    config = write_config(tmp_path / "run.yaml", _shards_run(shards, vocab))
    straight = _train_subprocess(config, tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    _kill_after_checkpoint(config, tmp_path / "killed", 30)
    resumed = _train_subprocess(config, tmp_path / "killed")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()

    a, b = metrics(tmp_path / "straight"), metrics(tmp_path / "killed")
    assert [r["step"] for r in a] == [r["step"] for r in b] and a[-1]["step"] == 80
    for ra, rb in zip(a, b):
        assert (ra["loss"], ra.get("eval_loss")) == (rb["loss"], rb.get("eval_loss")), ra["step"]
    assert a[-1]["eval_loss"] < np.log(vocab) - 1.5  # it learned from the shards


def test_a_model_smaller_than_the_shards_vocabulary_is_refused(small, tmp_path, capsys):
    *_, shards = small
    config = write_config(tmp_path / "run.yaml", _shards_run(shards, 258))
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.V: 258" in err and "at least" in err


def test_two_processes_read_disjoint_halves_that_make_the_global_batch(small):
    *_, shards = small
    cfg = DataConfig(source="shards", paths=[str(shards)])
    tok = get_tokenizer(cfg)

    def batches(index=None, count=None, state=None, n=6):
        it = build_train_iterator(cfg, seq_len=32, batch_size=8, seed=3, tokenizer=tok,
                                  process_index=index, process_count=count)
        if state is not None:
            it.set_state(state)
        return [next(it)["inputs"] for _ in range(n)], it.get_state()

    whole, state = batches(n=3)
    halves = [batches(i, 2, n=3)[0] for i in range(2)]
    for step in range(3):
        first, second = halves[0][step], halves[1][step]
        assert first.shape == second.shape == (4, 32)
        np.testing.assert_array_equal(np.concatenate([first, second]), whole[step])
        assert not {r.tobytes() for r in first} & {r.tobytes() for r in second}
    # The checkpointed state is the global batch position: a process resumes its own share from it.
    later, _ = batches(n=2, state=state)
    resumed = [batches(i, 2, state=state, n=2)[0] for i in range(2)]
    for step in range(2):
        np.testing.assert_array_equal(np.concatenate([resumed[0][step], resumed[1][step]]), later[step])


def test_eval_batches_come_from_the_held_out_shards(small):
    *_, shards = small
    cfg = DataConfig(source="shards", paths=[str(shards)])
    tok = get_tokenizer(cfg)
    manifest = read_manifest(shards)
    held_out = np.concatenate([np.fromfile(shards / s["file"], dtype="<u2")
                               for s in manifest["splits"]["eval"]["shards"]])
    eval_set = build_eval_set(cfg, seq_len=32, batch_size=4, n_batches=2, tokenizer=tok)
    windows = {held_out[i : i + 33].tobytes() for i in range(0, len(held_out) - 32)}
    for batch in eval_set:
        for row_in, row_out in zip(batch["inputs"], batch["targets"]):
            full = np.concatenate([row_in, row_out[-1:]]).astype("<u2")
            assert full.tobytes() in windows
    bytes_per_token = manifest["splits"]["eval"]["bytes"] / manifest["splits"]["eval"]["tokens"]
    assert eval_set.bytes_per_token == pytest.approx(bytes_per_token)


def test_a_vocabulary_above_65536_prepares_uint32_shards_and_trains(tmp_path):
    files = _write_corpus(tmp_path / "corpus", n_jsonl=2, docs_per_file=200, seed=3)[:2]
    tokenizer = _big_word_tokenizer(tmp_path / "tokenizer.json")
    assert _prepare(*files, "--tokenizer", tokenizer, "--out", tmp_path / "shards") == 0
    manifest = read_manifest(tmp_path / "shards")
    assert manifest["dtype"] == "uint32" and manifest["tokenizer"]["vocab_size"] == 70_000
    assert manifest["tokenizer"]["eos_token"] == "</s>"
    train = np.fromfile(tmp_path / "shards" / manifest["splits"]["train"]["shards"][0]["file"], dtype="<u4")
    unknown = 66_000 + len({w for w in WORDS} | {w.capitalize() for w in WORDS} | {"."})
    assert train.min() >= 66_000 and np.count_nonzero(train == unknown) == 0  # the words, not truncated ids

    # A 70,000-way output layer is slow on CPU (~0.5 s a step): a few steps show it learns.
    cfg = _shards_run(tmp_path / "shards", 70_000, tokens=8 * 32 * 16, seq_len=32, batch_size=8, eval_every=16,
                      checkpoint_every=16)
    summary = main_train(cfg, tmp_path / "run")
    assert summary["status"] == "done" and summary["step"] == 16
    assert summary["eval_loss"] < np.log(70_000) - 3.0  # learned which of the 70,000 ids the corpus uses


def main_train(cfg: dict, out: Path) -> dict:
    from scaling.train import run_training

    return run_training(run_config_from_dict(cfg), out, quiet=True)


def test_the_readme_run_config_for_shards_is_a_valid_recipe(small):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shown = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "source: shards" in b)
    raw = yaml.safe_load(shown)
    *_, shards = small
    raw["data"]["paths"] = [str(shards)]
    cfg = run_config_from_dict(raw)
    assert cfg.model.name == "dense-10m" and cfg.model.V == 50277 and cfg.train.seq_len <= cfg.model.max_seq_len
    assert get_tokenizer(cfg.data).vocab_size <= cfg.model.V
