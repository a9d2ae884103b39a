"""Random mutations of the shipped experiment files: ``validate`` accepts the file (exit 0) or
rejects it (exit 2) with every problem naming the file and a key; it never raises."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.__main__ import main

REPO = Path(__file__).resolve().parents[1]
TABLES = {path.name: tomllib.loads(path.read_text()) for path in sorted((REPO / "experiments").glob("*.toml"))}

# No ':' in generated text: 'module:Class' names are imported, and the fuzzer must not import
# whatever module a random string names.  The fixed odd names below cover ':' instead.
TEXT = st.text(alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), max_size=20)
ODD_NAMES = st.sampled_from(["", ".", "..", "../../tmp/escape", "x/b", "a b", "a\nb", "\x00", "café", "x" * 300,
                             ":", ".rel:X", "no_such_module_q:Y", "sim.config:Experiment", "content",
                             "follower", "-r0"]) | TEXT
NUMBERS = st.sampled_from([0, -1, 1, 2, -(10**9), 10**12, 2**63, 2**64, 10**30, math.nan, math.inf, -math.inf,
                           1e308, -0.0, 1e-300, 0.5]) | st.integers() | st.floats()
SCALARS = NUMBERS | ODD_NAMES | st.booleans()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=6)


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(table: dict[str, Any]) -> str:
    """Every top-level key as one line with inline tables (valid TOML for any nesting)."""
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in table.items())


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``node`` (dict keys and list indices), the root excluded."""
    out = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def at(table: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        table = table[key]
    return table


def mutate(table: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    kind = data.draw(st.sampled_from(["drop", "replace", "insert", "name", "label"]))
    everywhere = paths(table)
    if kind == "drop":
        path = data.draw(st.sampled_from(everywhere))
        del at(table, path[:-1])[path[-1]]
    elif kind == "replace":
        path = data.draw(st.sampled_from(everywhere))
        at(table, path[:-1])[path[-1]] = data.draw(VALUES)
    elif kind == "insert":
        tables = [()] + [p for p in everywhere if isinstance(at(table, p), dict)]
        where = at(table, data.draw(st.sampled_from(tables)))
        where[data.draw(TEXT.filter(bool))] = data.draw(VALUES)
    elif kind == "name":
        table["name"] = data.draw(ODD_NAMES)
    else:
        rankers = [r for r in table.get("rankers", []) if isinstance(r, dict)]
        if rankers:
            data.draw(st.sampled_from(rankers))["label"] = data.draw(ODD_NAMES)
    return table


PROBLEM = re.compile(r"[^\n]*?\S: ")  # '<key>: <what is wrong>' (a key may hold dots, brackets, quotes)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(TABLES)), data=st.data())
def test_mutated_experiment_validates_or_fails_cleanly(name: str, data: st.DataObject, workdir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    table = tomllib.loads(to_toml(TABLES[name]))  # a deep copy, through the writer under test
    for _ in range(data.draw(st.integers(1, 3))):
        table = mutate(table, data)
    path = workdir / name
    path.write_text(to_toml(table))
    capsys.readouterr()
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    if rc == 0:
        assert out.startswith(f"{path}: ok (")
        return
    assert rc == 2, (rc, err)
    assert err.startswith("error: "), err
    for line in err.removeprefix("error: ").rstrip("\n").split("\n"):
        assert line.startswith(f"{path}: "), err
        assert "TOML syntax error" not in line, err  # the writer above must write valid TOML
        assert PROBLEM.match(line.removeprefix(f"{path}: ")), err
