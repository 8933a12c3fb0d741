"""Typed, strictly validated configuration from yaml files and ``key=value`` overrides.

A configuration is a (possibly nested) ``dataclass``. Fields may carry a range or a choice list
through :func:`field`::

    @dataclass
    class Optim:
        lr: float = field(1e-3, low=0.0, high=1.0, doc="Adam learning rate")
        kind: str = field("adam", choices=("adam", "sgd"))

An unknown or misspelled key is an error naming the key and the closest valid one; a value of the
wrong type or out of range is an error naming the key and the accepted range.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


def field(default: Any = dataclasses.MISSING, *, low: float | None = None, high: float | None = None,
          choices: typing.Sequence[Any] | None = None, doc: str = "",
          default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with validation metadata (inclusive ``low``/``high``, ``choices``)."""
    meta = {"low": low, "high": high, "choices": tuple(choices) if choices else None, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def closest_key(key: str, valid: typing.Iterable[str]) -> str | None:
    """The valid key that is most like ``key`` (None when nothing is close)."""
    matches = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def _unknown_key_error(where: str, key: str, valid: list[str]) -> ConfigError:
    guess = closest_key(key, valid)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return ConfigError(f"unknown key '{where}{key}'{hint} (valid keys: {', '.join(sorted(valid))})")


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def _coerce(value: Any, tp: Any, name: str) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"'{name}' must not be empty (expected {getattr(tp, '__name__', tp)})")
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{name}' must be a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, prefix=f"{name}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{name}' must be a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        return type(value)(_coerce(v, item_tp, f"{name}[{i}]") for i, v in enumerate(value)) \
            if origin is list else tuple(_coerce(v, item_tp, f"{name}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{name}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{name}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{name}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            value = _float_or_self(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{name}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"'{name}' must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{name}' must be a string, got {value!r}")
        return value
    return value


def _float_or_self(text: str) -> float | str:
    """yaml 1.1 reads ``1e-4`` (no dot) as a string: accept it where a number is expected."""
    try:
        return float(text)
    except ValueError:
        return text


def _check_range(value: Any, meta: typing.Mapping[str, Any], name: str) -> None:
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"'{name}' = {value!r} is not one of {list(choices)}")
    low, high = meta.get("low"), meta.get("high")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (low is not None and v < low) or (high is not None and v > high):
                rng = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ConfigError(f"'{name}' = {v!r} is out of range {rng}")


def _build(cls: type[T], data: typing.Mapping[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _unknown_key_error(prefix, str(key), list(fields))
    kwargs = {}
    for key, value in data.items():
        value = _coerce(value, hints[key], prefix + key)
        _check_range(value, fields[key].metadata, prefix + key)
        kwargs[key] = value
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required key(s) {', '.join(prefix + m for m in missing)}")
    return cls(**kwargs)


def from_dict(cls: type[T], data: typing.Mapping[str, Any] | None) -> T:
    """Build and validate ``cls`` from a mapping (unknown keys and bad values raise ConfigError)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"a {cls.__name__} configuration must be a mapping, got {type(data).__name__}")
    return _build(cls, data or {})


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'optim.lr=1e-4'`` -> (['optim', 'lr'], 1e-4); the value is parsed as yaml."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. optim.lr=1e-4)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    out = yaml.safe_load(yaml.safe_dump(data)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
        node[path[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a yaml mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid yaml: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: typing.Iterable[str] = ()) -> T:
    """Load ``cls`` from an optional yaml file plus overrides; errors name the file and key."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (yaml-serialisable) of a configuration dataclass."""
    return dataclasses.asdict(config)
