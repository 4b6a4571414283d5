"""DataConfig validation: bad values become one-line errors that name the field."""
import pytest

from scaling.config.base import validate
from scaling.config.data import DataConfig, MathConfig
from scaling.errors import UserError


def _error(data: dict) -> str:
    with pytest.raises(UserError) as e:
        validate(DataConfig, data, prefix="data")
    message = str(e.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_stdlib_corpus_with_byte_tokens():
    cfg = DataConfig()
    assert (cfg.source, cfg.tokenizer, cfg.paths, cfg.cache_dir) == ("stdlib-code", "byte", [], None)
    assert isinstance(cfg.math, MathConfig)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"source": "files"}, "data.paths"),
        ({"source": "stdlib-code", "paths": ["a.txt"]}, "data.paths"),
        ({"source": "web"}, "data.source"),
        ({"tokenizer": "wordpiece"}, "data.tokenizer"),
        ({"bpe_vocab_size": 100}, "data.bpe_vocab_size"),
        ({"eval_fraction": 0.9}, "data.eval_fraction"),
        ({"eval_fraction": -0.1}, "data.eval_fraction"),
        ({"shuffle_seed": -1}, "data.shuffle_seed"),
        ({"math": {"min_digits": 3, "max_digits": 2}}, "data.math.max_digits"),
        ({"math": {"min_digits": 0}}, "data.math.min_digits"),
        ({"math": {"max_steps": 99}}, "data.math.max_steps"),
        ({"math": {"min_steps": 2, "max_steps": 1}}, "data.math.max_steps"),
        ({"math": {"operations": []}}, "data.math.operations"),
        ({"math": {"operations": ["+", "+"]}}, "data.math.operations"),
        ({"math": {"operations": ["/"]}}, "data.math.operations"),
        ({"unknown_key": 1}, "data.unknown_key"),
    ],
)
def test_bad_values_name_the_field(data, field):
    assert _error(data).split(":")[0].startswith(field)


def test_files_source_accepts_paths():
    cfg = validate(DataConfig, {"source": "files", "paths": ["corpus/*.txt"], "text_field": "body"})
    assert cfg.paths == ["corpus/*.txt"]
