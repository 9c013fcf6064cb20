"""Typed configs: dataclasses with named presets, saved as JSON and overridable as ``key=value``.

Each component declares ``@dataclass class XConfig`` and a ``PRESETS = {"tiny": XConfig(...), "paper": ...}``
dict; :func:`preset` copies one, :func:`apply_overrides` edits it from the command line
(``--set lr=1e-4 --set model.hidden=256``), :func:`to_dict` / :func:`from_dict` round-trip it through JSON.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

from .errors import UserError

T = TypeVar("T")


def preset(presets: dict[str, T], name: str) -> T:
    if name not in presets:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return dataclasses.replace(presets[name])


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict) -> T:
    """Build ``cls`` from a dict (nested dataclasses included); unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise UserError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = from_dict(tp, value)
        elif isinstance(value, list) and _is_tuple(tp):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str] | None) -> T:
    """Return a copy of ``cfg`` with ``key=value`` (dotted keys reach nested configs) applied."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"override {item!r} must look like key=value")
        cfg = _set(cfg, key.strip().split("."), raw.strip(), item)
    return cfg


def _set(cfg: Any, keys: list[str], raw: str, item: str) -> Any:
    hints = typing.get_type_hints(type(cfg))
    head = keys[0]
    if head not in hints:
        names = ", ".join(f.name for f in dataclasses.fields(cfg))
        raise UserError(f"override {item!r}: {type(cfg).__name__} has no field {head!r} (fields: {names})")
    if len(keys) > 1:
        return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), keys[1:], raw, item)})
    return dataclasses.replace(cfg, **{head: _parse(hints[head], raw, item)})


def _parse(tp: Any, raw: str, item: str) -> Any:
    try:
        if tp is bool:
            if raw.lower() not in {"true", "false", "1", "0"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1"}
        if tp in (int, float, str):
            return tp(raw)
        value = json.loads(raw)
        return tuple(value) if _is_tuple(tp) and isinstance(value, list) else value
    except (ValueError, json.JSONDecodeError) as e:
        raise UserError(f"override {item!r}: cannot read {raw!r} as {getattr(tp, '__name__', tp)}") from e


def _is_tuple(tp: Any) -> bool:
    return tp is tuple or typing.get_origin(tp) is tuple
