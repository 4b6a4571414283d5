"""synthetic-math: procedural, deterministic, and in exactly the RL arithmetic task's format."""
import itertools
import json
import random

import numpy as np
import pytest

from scaling.config.data import DataConfig, MathConfig
from scaling.data import arithmetic, build_eval_set, build_train_iterator, corpus_stats
from scaling.data.tokenizers import ByteTokenizer
from scaling.rl.tasks import Problem, get_task

TOK = ByteTokenizer()


def _math_cfg(tmp_path, **math):
    return DataConfig(source="synthetic-math", cache_dir=str(tmp_path), math=MathConfig(**math))


def _documents(batch) -> list[str]:
    """Whole documents (EOS-delimited) inside a batch's windows; the cut-off last one is dropped."""
    docs = []
    for row in np.concatenate([batch["inputs"], batch["targets"][:, -1:]], axis=1):
        pieces = np.split(row, np.flatnonzero(row == TOK.eos_id))
        docs += [TOK.decode(p[p != TOK.eos_id].tolist()) for p in pieces[:-1]]
    return docs


@pytest.mark.parametrize("worked", [1.0, 0.0])
def test_corpus_documents_are_correct_answers_to_the_rl_task(tmp_path, worked):
    cfg = _math_cfg(tmp_path, max_digits=3, max_steps=3, worked_fraction=worked)
    task = get_task("arithmetic", max_digits=3, max_steps=3, worked_fraction=worked)
    docs = _documents(next(build_train_iterator(cfg, seq_len=128, batch_size=16, seed=0, tokenizer=TOK)))
    assert len(docs) > 30
    for doc in docs:
        head, completion = doc.split("\nA:")
        expression = head.removeprefix("Q: ").removesuffix("=?")
        problem = Problem(prompt=head + "\nA:", answer=str(eval(expression)))  # expressions are valid Python
        assert task.reward(completion, problem) == 1.0
        n_ops = sum(expression.count(op) for op in "+*") + expression.count("-")
        assert ("=" in completion) == (worked == 1.0 and n_ops > 1)


def test_worked_fraction_mixes_worked_and_direct_answers_in_that_share(tmp_path):
    cfg = _math_cfg(tmp_path, max_digits=1, min_steps=2, max_steps=3, worked_fraction=0.3)
    it = build_train_iterator(cfg, seq_len=128, batch_size=16, seed=0, tokenizer=TOK)
    docs = _documents(next(it)) + _documents(next(it))
    worked = sum("=" in d.split("\nA:")[1] for d in docs)
    assert len(docs) > 100 and 0.2 < worked / len(docs) < 0.4


def test_every_window_starts_at_a_problem_and_fits_a_tiny_context(tmp_path):
    cfg = _math_cfg(tmp_path)
    batch = next(build_train_iterator(cfg, seq_len=128, batch_size=16, seed=0, tokenizer=TOK))
    assert all(TOK.decode(row[:3].tolist()) == "Q: " for row in batch["inputs"])
    lengths = [len(p.document(True)) + 1 for p in arithmetic.eval_problems(MathConfig(), 500)]
    assert max(lengths) <= 128


def test_expressions_evaluate_to_the_answer_and_steps_chain(tmp_path):
    rng = random.Random(0)
    for _ in range(300):
        p = arithmetic.draw_problem(rng, MathConfig(max_digits=4, max_steps=5))
        assert eval(p.expression) == p.answer
        assert p.steps[-1].endswith(f"={p.answer}")


def test_same_seed_same_batches_and_exact_resume(tmp_path):
    cfg = _math_cfg(tmp_path)
    kw = dict(seq_len=64, batch_size=4, tokenizer=TOK)
    full = [next(it) for it in [build_train_iterator(cfg, seed=5, **kw)] for _ in range(9)]
    again = build_train_iterator(cfg, seed=5, **kw)
    for expected in full[:4]:
        np.testing.assert_array_equal(next(again)["inputs"], expected["inputs"])
    state = json.loads(json.dumps(again.get_state()))
    resumed = build_train_iterator(cfg, seed=5, **kw)
    resumed.set_state(state)
    for expected in full[4:]:
        np.testing.assert_array_equal(next(resumed)["targets"], expected["targets"])
    other = next(build_train_iterator(cfg, seed=6, **kw))
    assert not np.array_equal(other["inputs"], full[0]["inputs"])


def test_eval_set_is_fixed_and_held_out(tmp_path):
    cfg = _math_cfg(tmp_path, max_digits=2, max_steps=2)
    a = build_eval_set(cfg, seq_len=64, batch_size=4, n_batches=2, tokenizer=TOK)
    b = build_eval_set(cfg, seq_len=64, batch_size=4, n_batches=2, tokenizer=TOK)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["inputs"], y["inputs"])
    assert 0.9 < a.bytes_per_token < 1.0
    held_out = {p.prompt for p in itertools.islice(arithmetic.iter_eval_problems(cfg.math), 5000)}
    train_docs = _documents(next(build_train_iterator(cfg, seq_len=128, batch_size=32, seed=0, tokenizer=TOK)))
    assert not {d.split("\nA:")[0] + "\nA:" for d in train_docs} & held_out
    for doc in _documents(a.batches[0]):
        assert doc.split("\nA:")[0] + "\nA:" in held_out


def test_corpus_stats_mark_the_corpus_unbounded(tmp_path):
    stats = corpus_stats(_math_cfg(tmp_path), TOK)
    assert stats["unbounded"] and stats["n_train_tokens"] is None
    assert 10 < stats["mean_tokens_per_document"] < 100
