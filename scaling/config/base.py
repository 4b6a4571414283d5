"""Shared machinery for typed configs: strict pydantic models, safe YAML loading, --set overrides.

Every config object in the lab derives from `StrictModel`: unknown keys and wrong types are refused
before anything is built. `load_config` turns any validation problem into a `UserError` whose one-line
message names the offending field (e.g. `model.n_heads: width 100 is not divisible by 3 heads`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from scaling.errors import UserError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Refuses unknown keys; validates on assignment; immutable-by-convention (use model_copy)."""

    # inf/nan are refused everywhere: a budget of .inf or a learning rate of nan is always a mistake.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)


class StrictYamlLoader(yaml.SafeLoader):
    """Safe YAML with two fixes for hand-written configs: a key given twice in one mapping is an error
    (plain YAML keeps the last silently, so `model:` written twice trains the wrong model), and `1e6`
    is a number as in YAML 1.2 (YAML 1.1 wants `1.0e6` and reads `1e6` as a string)."""


def _unique_mapping(loader: StrictYamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
StrictYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                       re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                       list("-+0123456789"))


def load_yaml_text(text: str) -> Any:
    return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Safe-load a YAML mapping; a missing file or bad YAML is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        data = load_yaml_text(path.read_text())
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (it is not valid UTF-8)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} invalid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply `a.b=c` overrides; values are parsed as YAML scalars (`1e-3`, `true`, `[1, 2]`)."""
    data = _deep_copy(data)
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(data, key, value, where=f"--set {key}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=c` as ("a.b", c), the value parsed as a YAML scalar; a malformed item is a UserError."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. model.d_model=256")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--set {item!r}: {'no key' if not key else f'{key!r} is not a dotted key'} before "
                        "'='; expected KEY=VALUE, e.g. train.tokens=1e6")
    try:
        value = load_yaml_text(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """data['a']['b'] = value for key 'a.b', creating mappings on the way."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(f"{where}: {part} is not a mapping")
        node = child
    node[parts[-1]] = _deep_copy(value)


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """The first problem of a pydantic error as one line: `field.path: message`."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg = first["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.replace(noise, "")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    where = ".".join(p for p in (prefix, loc) if p)
    # Cross-field validators report "field: reason"; attach their field to the location.
    if ": " in msg and first["type"] == "value_error" and " " not in msg.split(": ", 1)[0]:
        field, msg = msg.split(": ", 1)
        where = ".".join(p for p in (where, field) if p)
    return f"{where}: {msg}" if where else msg


def validate(cls: type[T], data: dict[str, Any], source: str = "", prefix: str = "") -> T:
    """Build `cls` from a dict, or raise a one-line UserError naming the file and field."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        line = format_validation_error(e, prefix)
        raise UserError(f"{source}: {line}" if source else line) from None


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Read YAML, apply --set overrides, validate into `cls`."""
    data = apply_overrides(read_yaml(path), overrides)
    return validate(cls, data, source=str(path))
