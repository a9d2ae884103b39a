"""Validation: an experiment's TOML table built into an :class:`~sim.config.Experiment`, with every
check.

Building collects *every* problem before failing, each named by file and key path::

    experiments/x.toml: world.users: must be >= 2 (got -5)

Field checks (types, ranges, unknown and missing keys) come first, then cross-field checks (every
name an entry refers to exists, labels and names are unique and safe as folder names), then the
variants a run may use: the first and last sweep points and the ``--quick`` table.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from sim.config.overrides import apply_overrides, quick_overrides
from sim.config.schema import Claim, ConfigError, Experiment, PlantedAccount, Product, WorldConfig, default_label
from sim.config.sweep import sweep_points
from sim.params import is_dataclass_type, join_key, type_name

T = TypeVar("T")

# Names that become folder names (results/<name>/, runs/<label>-r0/): one path component, no more.
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SAFE_NAME_RULE = "letters, digits, _ . - only"
INT64_MAX = 2**63 - 1  # counts and ids end up in int64 arrays and Parquet columns
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- fields


def build(cls: type[T], table: Mapping[str, Any], prefix: str, problems: list[str]) -> T:
    """Build dataclass ``cls`` from a TOML table; append every problem to ``problems``.

    Unknown keys and missing required keys are problems.  Returns a best-effort
    instance (defaults where values were bad) so that later checks can go on.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key in table:
        if key not in fields:
            known = ", ".join(fields)
            shown = key if re.fullmatch(r"[A-Za-z0-9_.\[\]-]{1,60}", key) else brief_repr(key)  # one line, short
            problems.append(f"{join_key(prefix, shown)}: unknown key (known: {known})")
    for name, f in fields.items():
        key = join_key(prefix, name)
        if name in table:
            value = _coerce(table[name], hints[name], key, problems, f.metadata)
            if value is not None:
                kwargs[name] = value
                continue
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{key}: required ({f.metadata.get('desc', '')})")
        kwargs[name] = _placeholder(f, hints[name])
    return cls(**kwargs)


def _placeholder(f: dataclasses.Field[Any], tp: Any) -> Any:
    """The value a field keeps when its own is bad or missing, so that later checks can go on."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return {int: 0, float: 0.0, str: "", bool: False}.get(tp)


def _coerce(value: Any, tp: Any, key: str, problems: list[str], meta: Mapping[str, Any]) -> Any:
    """Convert a TOML value to ``tp``, appending a problem (and returning None) on failure."""
    origin = typing.get_origin(tp)
    if is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            problems.append(f"{key}: expected a table (got {brief_repr(value)})")
            return None
        return build(tp, value, key, problems)
    if origin is tuple:
        (inner,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            problems.append(f"{key}: expected a list of {type_name(inner)} (got {brief_repr(value)})")
            return None
        items = [_coerce(v, inner, f"{key}[{i}]", problems, meta) for i, v in enumerate(value)]
        if is_dataclass_type(inner):
            # A bad entry keeps its index (so later messages name the right one) as a
            # placeholder; its problem is already reported.
            return tuple(build(inner, {}, "", []) if item is None else item for item in items)
        return None if any(item is None for item in items) else tuple(items)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key}: expected true or false (got {brief_repr(value)})")
            return None
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{key}: expected an integer (got {brief_repr(value)})")
            return None
        if not -INT64_MAX <= value <= INT64_MAX:
            problems.append(f"{key}: {brief_repr(value)} is too large (at most {INT64_MAX:,} in magnitude)")
            return None
    elif tp is float:
        number = _finite(value)
        if number is None:
            problems.append(f"{key}: expected a finite number (got {brief_repr(value)})")
            return None
        value = number
    elif tp is str:
        if not isinstance(value, str):
            problems.append(f"{key}: expected a string (got {brief_repr(value)})")
            return None
        if key != "description" and CONTROL_CHARACTERS.search(value):
            problems.append(f"{key}: control characters (newline, tab, NUL, ...) are not allowed "
                            f"(got {brief_repr(value)})")
            return None
    problem = _range_problem(value, key, meta)
    if problem:
        problems.append(problem)
        return None  # the caller keeps the default, so later checks see a sane value
    return value


def _range_problem(value: Any, key: str, meta: Mapping[str, Any]) -> str | None:
    """Why ``value`` lies outside the knob's range or choices (``meta``), or None."""
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if lo is not None and value < lo:
        return f"{key}: must be >= {lo:g} (got {brief_repr(value)})"
    if hi is not None and value > hi:
        return f"{key}: must be <= {hi:g} (got {brief_repr(value)})"
    if choices is not None and value not in choices:
        return f"{key}: must be one of {', '.join(choices)} (got {brief_repr(value)})"
    return None


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN, infinite, or too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond 1.8e308
        return None
    return number if math.isfinite(number) else None


def brief_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value cannot flood the message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


# --------------------------------------------------------------------------- cross-field checks


def _check_references(exp: Experiment, problems: list[str]) -> None:
    """Every name an entry refers to exists and names are unique; resolves each ranker's params
    into its ``Params`` (in ``exp.rankers``) on the way."""
    accounts, products = _check_world(exp.world, problems)
    names = _check_events(exp, accounts, products, problems)
    if exp.focal and exp.focal not in names:
        problems.append(f"focal: unknown event {exp.focal!r} (known: {', '.join(sorted(names)) or 'none'})")
    labels = _check_rankers(exp, problems)
    try:
        n_points = len(sweep_points(exp.sweep)) if isinstance(exp.sweep, Mapping) and exp.sweep else 0
    except ConfigError:
        n_points = 0  # reported by _check_sweep
    if exp.baseline_point >= max(n_points, 1) or (exp.baseline_point >= 0 and not n_points):
        problems.append(f"baseline_point: {exp.baseline_point} is not a sweep point "
                        f"(the file has {n_points or 'no'} sweep points)")
    if exp.baseline and exp.baseline not in labels:
        problems.append(f"baseline: unknown ranker label {exp.baseline!r} (known: {', '.join(sorted(labels))})")
    _check_claims(exp, labels, n_points, problems)


def _check_claims(exp: Experiment, labels: set[str], n_points: int, problems: list[str]) -> None:
    """Every ``[[claims]]`` table names one subject (a ranker, or two for a difference or ratio) of
    known labels, the bounds its statistic needs, and a sweep point where the file has a sweep."""
    known = ", ".join(sorted(labels))
    for i, claim in enumerate(exp.claims):
        key = f"claims[{i}]"
        subjects = [name for name in ("ranker", "difference", "ratio") if getattr(claim, name)]
        if len(subjects) != 1:
            problems.append(f"{key}: set exactly one of ranker, difference = [a, b] or ratio = [a, b] "
                            f"(got {', '.join(subjects) or 'none'})")
        if claim.ranker and claim.ranker not in labels:
            problems.append(f"{key}.ranker: unknown ranker label {claim.ranker!r} (known: {known})")
        for name in ("difference", "ratio"):
            pair = getattr(claim, name)
            if pair and (len(pair) != 2 or pair[0] == pair[1]):
                problems.append(f"{key}.{name}: expected two different ranker labels [a, b] (got {list(pair)})")
            for j, label in enumerate(pair):
                if label not in labels:
                    problems.append(f"{key}.{name}[{j}]: unknown ranker label {label!r} (known: {known})")
        for name in ("at_least", "at_most"):
            bound = getattr(claim, name)
            if bound is not None and _finite(bound) is None:
                problems.append(f"{key}.{name}: expected a finite number (got {brief_repr(bound)})")
            elif bound is not None and claim.statistic != "share_of_replicates":
                problems.append(f"{key}.{name}: only statistic = 'share_of_replicates' takes it")
        if claim.statistic == "share_of_replicates" and claim.at_least is None and claim.at_most is None:
            problems.append(f"{key}.statistic: share_of_replicates needs at_least and/or at_most")
        if claim.relative_to and claim.statistic.startswith("point_rel"):
            problems.append(f"{key}.relative_to: not with statistic = {claim.statistic!r} (the summary has no "
                            "relative-change row for a quotient of metrics)")
        if claim.statistic.startswith("point_rel") and (not claim.ranker or exp.baseline_point < 0):
            problems.append(f"{key}.statistic: {claim.statistic} needs ranker and the file's baseline_point")
        if claim.points:
            _check_claim_points(claim, key, n_points, problems)
        elif n_points > 1 and not 0 <= claim.point < n_points:
            problems.append(f"{key}.point: required in a file with a sweep: a point index 0-{n_points - 1} "
                            f"(got {claim.point})")
        elif n_points <= 1 and claim.point > 0:
            problems.append(f"{key}.point: {claim.point} is not a sweep point (the file has no sweep)")


def _check_claim_points(claim: Claim, key: str, n_points: int, problems: list[str]) -> None:
    """``points = [a, b]``: two different sweep points, instead of ``point``, with a statistic over
    replicates."""
    if n_points <= 1:
        problems.append(f"{key}.points: the file has no sweep")
        return
    if len(claim.points) != 2 or claim.points[0] == claim.points[1]:
        problems.append(f"{key}.points: expected two different point indices [a, b] (got {list(claim.points)})")
    for j, index in enumerate(claim.points):
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_points:
            problems.append(f"{key}.points[{j}]: expected a point index 0-{n_points - 1} (got {brief_repr(index)})")
    if claim.point >= 0:
        problems.append(f"{key}.point: not with points (the claim is about the change from point b to a)")
    if claim.statistic.startswith("point_rel"):
        problems.append(f"{key}.statistic: {claim.statistic} is a change against baseline_point; with points "
                        "use median, mean, min, max, share_of_replicates, ci_low or ci_high")


def _check_world(world: WorldConfig, problems: list[str]) -> tuple[dict[str, PlantedAccount], dict[str, Product]]:
    """Check the world's topics, planted accounts and products; return the accounts and products
    by name."""
    topics = set(world.topics)
    if len(world.topics) < 1:
        problems.append("world.topics: need at least one topic")
    if len(topics) != len(world.topics):
        problems.append("world.topics: names must be unique")
    if len(set(world.formats)) != len(world.formats):
        problems.append("world.formats: names must be unique")
    if len(world.diurnal) != 24 or any(w < 0 for w in world.diurnal) or sum(world.diurnal) <= 0:
        problems.append(f"world.diurnal: expected 24 non-negative weights with a positive sum "
                        f"(got {len(world.diurnal)} values)")
    accounts: dict[str, PlantedAccount] = {}
    for i, acc in enumerate(world.accounts):
        key = f"world.accounts[{i}]"
        if acc.name in accounts:
            problems.append(f"{key}.name: duplicate account name {acc.name!r}")
        accounts[acc.name] = acc
        if acc.topic not in topics:
            problems.append(f"{key}.topic: unknown topic {acc.topic!r} (known: {', '.join(world.topics)})")
        if acc.followers > world.users - len(world.accounts):
            problems.append(f"{key}.followers: {acc.followers} followers cannot be planted among "
                            f"{world.users} users (at most {world.users - len(world.accounts)})")
    if len(world.accounts) > world.users:
        problems.append(f"world.accounts: {len(world.accounts)} planted accounts exceed world.users")
    products: dict[str, Product] = {}
    for i, prod in enumerate(world.products):
        if prod.seller not in accounts:
            problems.append(f"world.products[{i}].seller: unknown account {prod.seller!r}")
        if prod.name in products:
            problems.append(f"world.products[{i}].name: duplicate product name {prod.name!r}")
        products[prod.name] = prod
    for i, acc in enumerate(world.accounts):
        for j, topic in enumerate(acc.topics):
            if topic not in topics:
                problems.append(f"world.accounts[{i}].topics[{j}]: unknown topic {topic!r}")
        if acc.listen_rate > 0 and not acc.topics:
            problems.append(f"world.accounts[{i}].listen_rate: a listening account needs 'topics' to choose among")
        if acc.product and acc.product not in products:
            problems.append(f"world.accounts[{i}].product: unknown product {acc.product!r} "
                            f"(known: {', '.join(products) or 'none'})")
    return accounts, products


def _check_events(exp: Experiment, accounts: Mapping[str, PlantedAccount], products: Mapping[str, Product],
                  problems: list[str]) -> set[str]:
    """Check the scheduled posts against the world's accounts, topics and products, their sounds'
    appeal and the horizon; return the events' names."""
    topics = set(exp.world.topics)
    names = set()
    for i, ev in enumerate(exp.events):
        key = f"events[{i}]"
        names.add(ev.name)
        if ev.account not in accounts:
            problems.append(f"{key}.account: unknown account {ev.account!r} "
                            f"(known: {', '.join(accounts) or 'none planted'})")
        if ev.topic and ev.topic not in topics:
            problems.append(f"{key}.topic: unknown topic {ev.topic!r}")
        if ev.product and ev.product not in products:
            problems.append(f"{key}.product: unknown product {ev.product!r}")
        if ev.appeal_quantile != -1 and not 1e-6 <= ev.appeal_quantile < 1:
            problems.append(f"{key}.appeal_quantile: expected -1 (the post's own quality) or a quantile in "
                            f"[1e-06, 1), got {ev.appeal_quantile:g}")
        elif ev.appeal_quantile >= 0:
            first = min((e.at_hours, j) for j, e in enumerate(exp.events) if e.sound == ev.sound)
            if not ev.sound or first[1] != i:
                why = "has no sound" if not ev.sound else f"reuses the sound of events[{first[1]}]"
                problems.append(f"{key}.appeal_quantile: only the post that releases a sound gives it an appeal "
                                f"(this one {why})")
        if ev.at_hours * 3600 >= exp.horizon_s:
            problems.append(f"{key}.at_hours: {ev.at_hours} h is not before the horizon "
                            f"({exp.horizon_days:g} days = {exp.horizon_s / 3600:g} h)")
    return names


def _check_rankers(exp: Experiment, problems: list[str]) -> set[str]:
    """Resolve every ``[[rankers]]`` table's class, label and params (replacing ``exp.rankers``);
    return the labels."""
    if not exp.rankers:
        problems.append("rankers: at least one [[rankers]] table is required")
    labels: set[str] = set()
    folded: dict[str, int] = {}  # label.casefold() -> index: folders named by label must differ in more than case
    specs = []
    for i, spec in enumerate(exp.rankers):
        key = f"rankers[{i}]"
        ranker_cls = _resolve(spec.name, f"{key}.name", problems)
        label = spec.label or default_label(spec.name)
        unsafe = name_problem(label)
        if unsafe and spec.label:
            problems.append(f"{key}.label: {unsafe}")
        elif unsafe and ranker_cls is not None:
            problems.append(f"{key}.label: the label defaults to the name, and {unsafe}: set label")
        elif label.casefold() in folded:
            j = folded[label.casefold()]
            same = "" if label in labels else " (labels name folders, so they must differ in more than letter case)"
            problems.append(f"{key}.label: duplicate ranker label {label!r}: rankers[{j}] has it{same}; "
                            f"set a distinct label")
        folded.setdefault(label.casefold(), i)
        labels.add(label)
        if ranker_cls is None:
            specs.append(spec)
            continue
        params = spec.params
        if not isinstance(params, Mapping):
            problems.append(f"{key}.params: expected a table (got {brief_repr(params)})")
            params = {}
        try:
            built: Any = build(ranker_cls.Params, params, f"{key}.params", problems)
        except Exception as exc:  # a user's Params that is not a plain dataclass of knobs
            problems.append(f"{key}.params: cannot build {spec.name}'s Params: {type(exc).__name__}: {exc}")
            built = params
        specs.append(dataclasses.replace(spec, label=label, params=built))
    object.__setattr__(exp, "rankers", tuple(specs))
    return labels


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a folder (an experiment's results, a ranker's runs), or None.

    >>> name_problem("content-24h") is None
    True
    >>> name_problem("../../tmp/escape")
    "'../../tmp/escape' is not a safe name (letters, digits, _ . - only)"
    """
    if name in (".", ".."):
        return f"{name!r} is not a safe name (it means a folder itself or its parent)"
    if len(name) > 100:
        return f"{brief_repr(name)} is not a safe name (at most 100 characters, got {len(name)})"
    if not SAFE_NAME.fullmatch(name):
        return f"{brief_repr(name)} is not a safe name ({SAFE_NAME_RULE})"
    return None


def _resolve(name: str, key: str, problems: list[str]) -> Any:
    """The ranker class ``name`` names, or None with a problem (a missing name is reported by build)."""
    # Imported on use: the registry lies downstream (sim.rankers imports sim.model, which imports
    # sim.config), so importing it at the top would make a cycle.
    from sim.rankers import resolve_ranker

    if not name:
        return None
    try:
        return resolve_ranker(name)
    except (KeyError, ImportError, AttributeError) as exc:
        problems.append(f"{key}: {exc.args[0] if exc.args else exc}")
    except Exception as exc:  # a user's module that fails on import, or a malformed 'module:Class'
        problems.append(f"{key}: cannot load ranker {brief_repr(name)}: {type(exc).__name__}: {exc}")
    return None


# --------------------------------------------------------------------------- the whole file


def parse(table: Mapping[str, Any], source: str = "<config>") -> Experiment:
    """Validate a parsed TOML table into an :class:`Experiment` (raises :class:`ConfigError`).

    Besides the table itself, the first and last sweep points and the ``--quick`` variant are
    checked, so that neither a sweep nor ``run --quick`` can fail on a file that validated."""
    return _parse(table, source, variants=True)


def parse_variant(table: Mapping[str, Any], source: str) -> Experiment:
    """Validate a variant of an experiment (a sweep point, or its ``--quick`` table) like
    :func:`parse`, without checking the variant's own sweep points and ``--quick`` table."""
    return _parse(table, source, variants=False)


def _parse(table: Mapping[str, Any], source: str, variants: bool) -> Experiment:
    """:func:`parse`, checking the sweep points and ``--quick`` table too where ``variants``."""
    problems: list[str] = []
    exp = build(Experiment, table, "", problems)
    # build() leaves defaults where values were bad, so cross-field checks can still run and
    # every problem is reported at once.
    if not exp.name:
        object.__setattr__(exp, "name", Path(source).stem)
        unsafe = name_problem(exp.name)
        if unsafe:
            problems.append(f"name: the file name's stem {unsafe}: set name, or rename the file")
    else:
        unsafe = name_problem(exp.name)
        if unsafe:
            problems.append(f"name: {unsafe}")
    _check_references(exp, problems)
    if not isinstance(exp.sweep, Mapping):
        problems.append(f"sweep: expected a table of 'dotted.key' = [values] (got {brief_repr(exp.sweep)})")
        object.__setattr__(exp, "sweep", {})
    if not isinstance(exp.quick, Mapping):
        problems.append(f"quick: expected a table of 'dotted.key' = value (got {brief_repr(exp.quick)})")
        object.__setattr__(exp, "quick", {})
    elif variants:
        _check_sweep(table, source, problems)
        _check_quick(table, source, problems)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    if not exp.focal and exp.events:
        object.__setattr__(exp, "focal", exp.events[0].name)
    object.__setattr__(exp, "_table", dict(table))
    object.__setattr__(exp, "_source", source)
    return exp


def _check_sweep(table: Mapping[str, Any], source: str, problems: list[str]) -> None:
    """The sweep must expand, and its first and last points must be valid, so that a sweep cannot
    fail part way where ``validate`` passed."""
    sweep = table.get("sweep") or {}
    if not isinstance(sweep, Mapping):
        return  # reported by _parse
    try:
        points = sweep_points(sweep)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point", "claims")}
    for point in points[:1] + points[-1:]:
        for key in point:
            _check_variant(base, {key: point[key]}, f"sweep.{key}", source, problems)


def _check_quick(table: Mapping[str, Any], source: str, problems: list[str]) -> None:
    """The ``--quick`` variant must be valid too, so that ``run --quick`` cannot fail where ``validate``
    passed."""
    base = {k: v for k, v in table.items() if k != "quick"}
    _check_variant(base, quick_overrides(table), "quick", source, problems)


def _check_variant(base: Mapping[str, Any], overrides: Mapping[str, Any], where: str, source: str,
                   problems: list[str]) -> None:
    """Parse ``base`` with ``overrides``; add its problems, as ``<where>: <problem>``, that the base
    table does not already have."""
    prefix = f"{source}: "
    try:
        parse_variant(apply_overrides(base, overrides, source), source)
    except ConfigError as exc:
        for problem in exc.problems:
            problem = problem.removeprefix(prefix)
            if problem not in problems:
                problems.append(f"{where}: {problem}")

