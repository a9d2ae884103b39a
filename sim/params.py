"""Documented, ranged dataclass fields: :func:`knob`, and the field table read from them.

A leaf module: it imports nothing from ``sim``, so that configuration (:mod:`sim.config`) and
rankers (:mod:`sim.rankers`, whose ``Params`` are dataclasses of knobs) can both use it without
importing each other.  A knob keeps its description, unit and allowed range in the field's
metadata, where validation (:func:`sim.config.build`), ``python -m sim schema`` and
``check-ranker`` read them::

    @dataclass(frozen=True)
    class NewestParams:
        window_hours: float = knob(24.0, "how far back candidates reach", lo=0, unit="h")
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import field
from typing import Any

#: One row of :func:`reference`: key, type, default, allowed range (or choices), description.
ReferenceRow = tuple[str, str, str, str, str]


def knob(default: Any = dataclasses.MISSING, desc: str = "", *, lo: float | None = None,
         hi: float | None = None, choices: tuple[str, ...] | None = None, unit: str = "",
         default_factory: Callable[[], Any] | None = None) -> Any:
    """A documented dataclass field: description, unit and allowed range live here.

    Parameters
    ----------
    default, default_factory
        The field's default, as for :func:`dataclasses.field`; neither makes the key required.
    desc
        A one-line description (``sim schema`` prints it; ``check-ranker`` requires one).
    lo, hi
        Inclusive bounds of the allowed range; None: unbounded on that side.
    choices
        The allowed strings, where the field is one of a fixed set.
    unit
        The unit the value is in (``s``, ``h``, ``1/day``), shown after the description.

    >>> from dataclasses import dataclass, fields
    >>> @dataclass(frozen=True)
    ... class Window:
    ...     hours: float = knob(24.0, "how far back candidates reach", lo=0, unit="h")
    >>> fields(Window)[0].metadata["lo"], Window().hours
    (0, 24.0)
    """
    meta = {"desc": desc, "lo": lo, "hi": hi, "choices": choices, "unit": unit}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def reference(cls: type, prefix: str = "") -> list[ReferenceRow]:
    """Rows (key, type, default, range, description) for every field of dataclass ``cls``,
    recursively: a nested dataclass adds its fields under ``key.``, a list of them under ``key[].``.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Window:
    ...     hours: float = knob(24.0, "how far back candidates reach", lo=0, unit="h")
    >>> reference(Window, "params")
    [('params.hours', 'float', '24.0', '[0, ∞]', 'how far back candidates reach (h)')]
    """
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = join_key(prefix, f.name)
        meta = f.metadata
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        if is_dataclass_type(tp):
            rows.extend(reference(tp, key))
            continue
        if inner is not None and is_dataclass_type(inner):
            rows.extend(reference(inner, f"{key}[]"))
            continue
        default = "(required)"
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        allowed = ""
        if meta.get("lo") is not None or meta.get("hi") is not None:
            allowed = f"[{meta.get('lo', '')}, {meta.get('hi', '') if meta.get('hi') is not None else '∞'}]"
        if meta.get("choices"):
            allowed = " | ".join(meta["choices"])
        desc = meta.get("desc", "") + (f" ({meta['unit']})" if meta.get("unit") else "")
        rows.append((key, type_name(tp), default, allowed, desc))
    return rows


def is_dataclass_type(tp: Any) -> bool:
    """Whether ``tp`` is a dataclass (the class, not an instance): a nested TOML table."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def type_name(tp: Any) -> str:
    """How a field's type reads to a user writing TOML.

    >>> type_name(tuple[str, ...]), type_name(float)
    ('list of str', 'float')
    """
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if is_dataclass_type(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def join_key(prefix: str, key: str) -> str:
    """The dotted key path of ``key`` inside the table at ``prefix`` ('' is the top level)."""
    return f"{prefix}.{key}" if prefix else key
