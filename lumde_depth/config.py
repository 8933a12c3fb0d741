"""Typed, strictly validated configuration from yaml files and ``key=value`` overrides.

A configuration is a (possibly nested) ``dataclass``. Fields may carry a range or a choice list
through :func:`field`::

    @dataclass
    class Optim:
        lr: float = field(1e-3, low=0.0, high=1.0, doc="Adam learning rate")
        kind: str = field("adam", choices=("adam", "sgd"))

An unknown or misspelled key is an error naming the key and the closest valid one; a value of the
wrong type or out of range is an error naming the key and the accepted range. :func:`load` reads a
yaml file plus command-line ``key=value`` overrides (``stages.0.lr=3e-4`` or ``stages[0].lr=3e-4``
index lists) and says which of the two a bad key or value came from.
"""
from __future__ import annotations

import dataclasses
import difflib
import copy
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the fix."""


class ConfigWarning(UserWarning):
    """A configuration option has no effect in this configuration (e.g. one that belongs to a switch
    that is off); the message names it and why. ``python -W error::...ConfigWarning`` makes it fatal."""


def warn(message: str) -> None:
    """Issue a :class:`ConfigWarning` (the ``lumde`` command prints it as ``lumde: warning: ...``)."""
    warnings.warn(message, ConfigWarning, stacklevel=2)


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


def _unknown_key_error(where: str, key: str, valid: list[str], root: Any = None) -> ConfigError:
    """``where`` is the dotted prefix of the section (``optim.``). When nothing in the section is
    close, keys of the same name elsewhere in ``root`` (the top-level class) are suggested."""
    guess = closest_key(key, valid)
    if guess is not None:
        hint = f"; did you mean '{where}{guess}'?"
    else:
        elsewhere = [k for k in leaf_keys(root) if k.rsplit(".", 1)[-1] == key] if root is not None else []
        hint = f"; did you mean {' or '.join(repr(k) for k in elsewhere[:3])}?" if elsewhere else ""
    section = f" of '{where[:-1]}'" if where else ""
    return ConfigError(f"unknown key '{where}{key}'{hint} (valid keys{section}: {', '.join(sorted(valid))})")


def leaf_keys(cls: Any, prefix: str = "") -> list[str]:
    """Every settable dotted key of a configuration class, a list of sections written with index 0
    (``stages.0.lr``); a free-form mapping (a ``dict`` field) is one key."""
    keys: list[str] = []
    if not dataclasses.is_dataclass(cls):
        return keys
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = _strip_optional(hints[f.name])[0]
        if typing.get_origin(tp) in (list, tuple) and dataclasses.is_dataclass(_item_type(tp)):
            keys += leaf_keys(_item_type(tp), f"{prefix}{f.name}.0.")
        elif dataclasses.is_dataclass(tp):
            keys += leaf_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def example_override(cls: Any = None) -> str:
    """A valid ``key=value`` of ``cls`` for messages: its first numeric key inside a section."""
    try:
        defaults = cls() if dataclasses.is_dataclass(cls) else None
    except TypeError:  # required fields: no defaults to show
        defaults = None
    for key in leaf_keys(cls) if defaults is not None else ():
        value = defaults
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else getattr(value, part)
        if "." in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{key}={value}"
    return "section.key=value"


def _item_type(tp: Any) -> Any:
    args = typing.get_args(tp)
    return _strip_optional(args[0])[0] if args else Any


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def _coerce(value: Any, tp: Any, name: str, root: Any = None) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"'{name}' must not be empty (expected {getattr(tp, '__name__', tp)})")
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"'{name}' must be a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, prefix=f"{name}.", root=root)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{name}' must be a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{name}[{i}]", root) for i, v in enumerate(value)]
        return type(value)(items) if origin is list else tuple(items)
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


def _build(cls: type[T], data: typing.Mapping[str, Any], prefix: str = "", root: Any = None) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _unknown_key_error(prefix, str(key), list(fields), root)
    kwargs = {}
    for key, value in data.items():
        value = _coerce(value, hints[key], prefix + key, root)
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
    return _build(cls, data or {}, root=cls)


_KEY_PART = re.compile(r"([^\[\]]+)((?:\[\d+\])*)")


def parse_override(text: str, cls: Any = None) -> tuple[list[str | int], Any]:
    """``'stages[0].lr=1e-4'`` -> (['stages', 0, 'lr'], 1e-4); the value is parsed as yaml.

    ``stages.0.lr`` is the same key: a number indexes the list it lands on. ``cls`` (the
    configuration class) only provides the example of a valid override in errors."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. {example_override(cls)})")
    key, raw = text.split("=", 1)
    parts: list[str | int] = []
    for token in key.strip().split("."):
        match = _KEY_PART.fullmatch(token.strip())
        if match is None:
            raise ConfigError(f"override '{text}': cannot read the key part {token!r} (write keys as "
                              f"section.key, lists as key.0 or key[0], e.g. {example_override(cls)})")
        parts.append(match.group(1))
        parts += [int(i) for i in re.findall(r"\d+", match.group(2))]
    return parts, yaml.safe_load(raw) if raw.strip() else None


def _dotted(parts: typing.Sequence[str | int]) -> str:
    return ".".join(str(p) for p in parts)


def _section_type(tp: Any, key: str, parts: list[str | int], root: Any) -> Any:
    """The declared type of ``key`` in the section of type ``tp`` (None below a free-form mapping)."""
    tp = _strip_optional(tp)[0] if tp is not None else None
    if not dataclasses.is_dataclass(tp):
        return None
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    if key not in fields:
        raise _unknown_key_error(f"{_dotted(parts)}." if parts else "", key, list(fields), root)
    return typing.get_type_hints(tp)[key]


def _default_of(tp: Any, key: str) -> Any:
    """The plain (yaml-like) default value of field ``key`` of section type ``tp``; {} if it has none."""
    tp = _strip_optional(tp)[0] if tp is not None else None
    if dataclasses.is_dataclass(tp):
        f = next(f for f in dataclasses.fields(tp) if f.name == key)
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if value is not dataclasses.MISSING and value is not None:
            return ([_plain(v) for v in value] if isinstance(value, (list, tuple)) else _plain(value))
    return {}


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)


def _list_index(part: str | int, items: list[Any], parts: list[str | int]) -> int:
    where = _dotted(parts)
    if isinstance(part, str) and not part.isdigit():
        raise ConfigError(f"'{where}' is a list: index it with a number ({where}.0 or {where}[0]), not '{part}'")
    index = int(part)
    if index >= len(items):
        have = f"indices 0 to {len(items) - 1}" if items else "no items"
        raise ConfigError(f"'{where}' has {len(items)} item(s) ({have}); to change its length give the whole "
                          f"list: {where}=[...]")
    return index


def _set(data: dict[str, Any], path: list[str | int], value: Any, root: Any) -> None:
    """Set ``data`` at ``path``, checking every key against ``root`` (the configuration class)."""
    node: Any = data
    tp: Any = root
    for depth, part in enumerate(path):
        done, last = path[:depth], depth == len(path) - 1
        if isinstance(node, list):
            index = _list_index(part, node, done)
            tp = _item_type(_strip_optional(tp)[0]) if tp is not None else None
            if last:
                node[index] = value
                return
            child = node[index]
        else:
            if isinstance(part, int):
                raise ConfigError(f"'{_dotted(done)}' is a section, not a list: write {_dotted(done)}.<key>")
            child_tp = _section_type(tp, part, done, root)
            if last:
                node[part] = value
                return
            if node.get(part) is None:
                node[part] = _default_of(tp, part)
            child, tp = node[part], child_tp
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"'{_dotted(path[:depth + 1])}' is a value ({child!r}), not a section or a list")
        node = child


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str], cls: Any = None) -> dict[str, Any]:
    """Return a copy of ``data`` with the ``key=value`` overrides applied.

    With ``cls`` (the configuration class) every key is checked as it is set: an unknown key is an
    error naming the override and the closest valid key, and a list missing from ``data`` is filled
    with its default first (so ``stages.0.lr=1e-4`` works on a file without ``stages``)."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text, cls)
        try:
            _set(out, path, value, cls)
        except ConfigError as exc:
            raise ConfigError(f"command line '{text}': {exc}") from None
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


def load(cls: type[T], path: str | Path | None = None, overrides: typing.Iterable[str] = (),
         check: typing.Callable[[T], None] | None = None) -> T:
    """Load ``cls`` from an optional yaml file plus ``key=value`` overrides, validated (then ``check``,
    further checks raising :class:`ConfigError`). An error names where the bad key or value came
    from: the file, or the command line when the file alone is valid."""
    overrides = list(overrides)
    data = load_yaml(path) if path is not None else {}
    merged = apply_overrides(data, overrides, cls)
    try:
        return _validated(cls, merged, check)
    except ConfigError as exc:
        source = _source(cls, path, data, overrides, check, exc)
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None


def _validated(cls: type[T], data: dict[str, Any], check: typing.Callable[[T], None] | None) -> T:
    config = from_dict(cls, data)
    if check is not None:
        check(config)
    return config


def _source(cls: type[T], path: str | Path | None, data: dict[str, Any], overrides: list[str],
            check: typing.Callable[[T], None] | None, error: ConfigError) -> str | None:
    """Where ``error`` comes from: the file when it has the same error alone, else the command line."""
    if not overrides:
        return None if path is None else str(path)
    if path is not None:
        try:
            _validated(cls, data, check)
        except ConfigError as own:
            if str(own) == str(error):
                return str(path)
    return f"command line ({' '.join(overrides)})"


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (yaml-serialisable) of a configuration dataclass."""
    return dataclasses.asdict(config)
