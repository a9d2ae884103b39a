"""Experiment configuration: frozen dataclasses built from TOML, and all validation.

Every field carries its documentation in its metadata (a one-line description
and, where it applies, an allowed range or set of choices), so the reference
printed by ``python -m sim schema`` is generated from this module and cannot
drift from it.  Loading collects *every* problem before failing, each named
by file and key path::

    experiments/x.toml: world.users: must be >= 2 (got -5)
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DAY = 86_400.0  # seconds in a simulated day

DEFAULT_TOPIC_NAMES = (
    "#beautytok", "#crafttok", "#planttok", "#DIYtok", "#booktok", "#foodtok", "#fittok",
    "#gamingtok", "#dancetok", "#comedytok", "#musictok", "#pettok", "#traveltok",
    "#fashiontok", "#sciencetok", "#cartok", "#momtok", "#techtok", "#arttok", "#sportstok",
)  # fmt: skip

# Share of a day's sessions starting in each hour (UTC-like local time); evening peak.
DEFAULT_DIURNAL = (
    0.020, 0.012, 0.008, 0.006, 0.006, 0.010, 0.022, 0.034, 0.040, 0.040, 0.042, 0.046,
    0.050, 0.048, 0.046, 0.046, 0.050, 0.056, 0.062, 0.068, 0.074, 0.076, 0.060, 0.038,
)  # fmt: skip


# Names that become folder names (results/<name>/, runs/<label>-r0/): one path component, no more.
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SAFE_NAME_RULE = "letters, digits, _ . - only"
INT64_MAX = 2**63 - 1  # counts and ids end up in int64 arrays and Parquet columns
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
MAX_SWEEP_POINTS = 10_000


class ConfigError(ValueError):
    """Raised with every problem found in an experiment file, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def knob(default: Any = dataclasses.MISSING, desc: str = "", *, lo: float | None = None,
         hi: float | None = None, choices: tuple[str, ...] | None = None, unit: str = "",
         default_factory: Callable[[], Any] | None = None) -> Any:
    """A documented dataclass field: description, unit and allowed range live here."""
    meta = {"desc": desc, "lo": lo, "hi": hi, "choices": choices, "unit": unit}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- world


@dataclass(frozen=True)
class PlantedAccount:
    """An account whose follower count the experiment fixes exactly."""

    name: str = knob(desc="label used by events, products and result tables")
    followers: int = knob(desc="exact number of (real, active) followers at t=0", lo=0)
    topic: str = knob(desc="the account's micro-community (a topic name)")
    posting_rate: float = knob(0.0, "background posts per day besides scenario posts, from t=0 (planted "
                               "accounts post nothing during the warm-up)", lo=0, unit="1/day")
    bought_followers: int = knob(0, "inactive (bought) followers added when the world is built; they never "
                                 "watch, but the follower count users see includes them", lo=0)
    authenticity: float = knob(-1.0, "authenticity of the account's background posts (-1: drawn like "
                               "everyone's; 0 = retouched, 1 = real)", lo=-1, hi=1)
    quality_quantile: float = knob(-1.0, "quality of its background posts as a population quantile (-1: its "
                                   "own creator skill, like everyone)", lo=-1, hi=1 - 1e-6)
    product: str = knob("", "a product its background posts sell (empty: none)")
    topics: tuple[str, ...] = knob(default_factory=tuple, desc="communities its background posts are spread "
                                   "over, evenly at first (empty: its own topic only)")
    listen_rate: float = knob(0.0, "how fast it shifts its topic mix (and its format mix, where the world has "
                              "formats) toward the topics and formats whose latest posts its audience rewarded "
                              "(likes, comments, shares and follows each earned); 0: never", lo=0, hi=10)


@dataclass(frozen=True)
class Product:
    """A product with finite inventory, sold through posts that carry it."""

    name: str = knob(desc="label used by events and result tables")
    seller: str = knob(desc="name of the planted account that sells it")
    price: float = knob(20.0, "unit price", lo=0, unit="currency")
    inventory: int = knob(100, "units in stock at t=0", lo=0, unit="units")
    restock_units: int = knob(0, "units added each time the product sells out (0: never restocked)", lo=0,
                              unit="units")
    restock_hours: float = knob(48.0, "time from a sell-out to its restock", lo=0, unit="h")


@dataclass(frozen=True)
class WorldConfig:
    """Users, creators, the follow graph and content supply."""

    users: int = knob(10_000, "number of users (every creator is also a user)", lo=2)
    topics: tuple[str, ...] = knob(default_factory=lambda: DEFAULT_TOPIC_NAMES,
                                   desc="names of the micro-communities (topics)")
    interest_concentration: float = knob(0.15, "Dirichlet concentration of user interests over topics "
                                         "(small: 1-3 dominant micro-communities)", lo=0.01, hi=10)
    attention_mean_minutes: float = knob(60.0, "mean daily attention budget on an active day", lo=1, hi=600,
                                         unit="min")
    attention_sigma: float = knob(0.8, "log-normal sigma of the daily attention budget (skew)", lo=0, hi=3)
    daily_active_share: float = knob(0.55, "mean probability that a user opens the app on a given day "
                                     "(a per-user Beta trait; DAU/MAU-like)", lo=0.01, hi=1)
    sessions_per_day: float = knob(6.0, "mean sessions on an active day", lo=0.1, hi=100, unit="1/day")
    diurnal: tuple[float, ...] = knob(default_factory=lambda: DEFAULT_DIURNAL,
                                      desc="relative session rate for each of the 24 hours of the day")
    posting_rate_mean: float = knob(0.04, "mean posts per user per day", lo=0, hi=50, unit="1/day")
    posting_rate_sigma: float = knob(2.0, "log-normal sigma of posting rates (heavy tail: few make most "
                                     "posts)", lo=0, hi=5)
    follows_mean: float = knob(40.0, "mean accounts followed per user", lo=0, hi=5000)
    follows_sigma: float = knob(1.0, "log-normal sigma of accounts followed per user", lo=0, hi=3)
    homophily: float = knob(0.7, "share of follows chosen within the user's main topic", lo=0, hi=1)
    preferential: float = knob(0.8, "share of follows chosen by preferential attachment (rest uniform)",
                               lo=0, hi=1)
    post_length_median_s: float = knob(30.0, "median post length", lo=1, hi=3600, unit="s")
    post_length_sigma: float = knob(0.8, "log-normal sigma of post length", lo=0, hi=3)
    authenticity_a: float = knob(6.0, "Beta(a, b) of post authenticity (1 = real, 0 = retouched): a", lo=0.01)
    authenticity_b: float = knob(2.0, "Beta(a, b) of post authenticity: b", lo=0.01)
    topic_fit_sd: float = knob(0.5, "sd of a planted account's quality offset per topic of its 'topics' "
                               "(creators are better at some subjects than others; drawn per replicate)",
                               lo=0, hi=3, unit="sd")
    formats: tuple[str, ...] = knob(default_factory=tuple,
                                    desc="ways of making a post (tutorial, story, behind the scenes, ...): a "
                                    "planted account with 'topics' spreads its posts over them evenly at first "
                                    "and is better at some than others (format_fit_sd); empty: none")
    format_fit_sd: float = knob(0.5, "sd of a planted account's quality offset per format of world.formats "
                                "(drawn per replicate)", lo=0, hi=3, unit="sd")
    sound_share: float = knob(0.3, "share of ordinary posts that carry an original sound (others can be "
                              "reused by derivative posts)", lo=0, hi=1)
    polish_sensitivity_mean: float = knob(1.0, "mean of the per-user sensitivity to polish (exponential)",
                                          lo=0, hi=20)
    accounts: tuple[PlantedAccount, ...] = knob(default_factory=tuple,
                                                desc="planted accounts ([[world.accounts]] tables)")
    products: tuple[Product, ...] = knob(default_factory=tuple, desc="products ([[world.products]] tables)")


# --------------------------------------------------------------------------- behaviour


@dataclass(frozen=True)
class BehaviorConfig:
    """Response-model coefficients (logistic links).  One calibrated set shared by
    every experiment; see docs/calibration.md."""

    watch_intercept: float = knob(-0.9, "watch-fraction logit at average quality and no interest")
    watch_quality: float = knob(0.55, "watch-fraction logit per unit of latent quality")
    watch_affinity: float = knob(1.2, "watch-fraction logit at full interest in the post's topic")
    watch_polish: float = knob(0.9, "watch-fraction logit lost per unit of polish x sensitivity")
    watch_length: float = knob(0.2, "watch-fraction logit lost per doubling of post length over 30 s")
    watch_noise: float = knob(1.0, "sd of the per-impression watch-fraction logit noise", lo=0)
    complete_at: float = knob(0.9, "watch fraction that counts as a completion", lo=0.01, hi=1)
    swipe_seconds: float = knob(1.5, "time to swipe to the next post", lo=0, unit="s")
    like_intercept: float = knob(-5.3, "like logit at zero watch, average quality")
    like_watch: float = knob(2.6, "like logit per unit of watch fraction")
    like_quality: float = knob(0.7, "like logit per unit of quality")
    like_polish: float = knob(1.0, "like logit lost per unit of polish x sensitivity")
    comment_intercept: float = knob(-8.1, "comment logit at zero watch")
    comment_watch: float = knob(2.4, "comment logit per unit of watch fraction")
    comment_quality: float = knob(0.6, "comment logit per unit of quality")
    share_intercept: float = knob(-8.4, "share logit at zero watch")
    share_watch: float = knob(2.6, "share logit per unit of watch fraction")
    share_quality: float = knob(0.9, "share logit per unit of quality")
    follow_intercept: float = knob(-8.8, "follow logit at zero watch (viewer not yet following)")
    follow_watch: float = knob(2.8, "follow logit per unit of watch fraction")
    follow_quality: float = knob(0.8, "follow logit per unit of quality")
    purchase_intercept: float = knob(-8.0, "purchase logit for a product post, no social proof")
    purchase_watch: float = knob(2.5, "purchase logit per unit of watch fraction")
    purchase_affinity: float = knob(1.0, "purchase logit at full interest in the topic")
    purchase_social_proof: float = knob(0.25, "purchase logit per unit of log1p(likes + 5 x comments)")
    like_social_proof: float = knob(0.08, "like logit per unit of log1p(visible likes): the bandwagon "
                                    "effect of a post's like count (bought likes included)")
    follow_social_proof: float = knob(0.05, "follow logit per unit of log1p(visible followers of the author)")
    derivative_intercept: float = knob(-11.0, "logit that a viewer of a post with a sound makes a derivative "
                                       "post (duet, stitch, 'use this sound') at zero watch, for an average "
                                       "poster")
    derivative_watch: float = knob(2.5, "derivative logit per unit of watch fraction")
    derivative_quality: float = knob(0.8, "derivative logit per unit of the sound's appeal")
    derivative_poster: float = knob(1.0, "derivative logit per unit of log(viewer's posting rate / mean "
                                    "posting rate): people who post make derivatives")
    derivative_delay_hours: float = knob(6.0, "mean delay from watching to posting the derivative "
                                         "(exponential)", lo=0, unit="h")
    derivative_at_posting: bool = knob(False, "a viewer moved to use a sound keeps it in mind (the latest, "
                                       "until used) and its next ordinary post uses it: a derivative in the "
                                       "creator's own topic; off: each derivative is an extra post in its "
                                       "parent's topic, made after derivative_delay_hours")
    sound_carry: float = knob(0.5, "share of a derivative post's quality that comes from its sound's appeal "
                              "(the rest from its author's skill)", lo=0, hi=1)
    sound_tap_intercept: float = knob(-5.0, "logit that a viewer opens a post's sound page, at zero watch")
    sound_tap_watch: float = knob(2.5, "sound-page logit per unit of watch fraction")
    sound_tap_quality: float = knob(0.8, "sound-page logit per unit of the sound's appeal")
    sound_page_posts: int = knob(3, "posts a viewer watches from a sound page it opened (the original "
                                 "first, then the sound's most viewed recent uses)", lo=1, hi=32)
    inspire_engagements: int = knob(20, "likes, comments and shares a user gives one topic's posts before "
                                    "they may start posting in it (experts breed experts)", lo=1)
    inspire_rate: float = knob(0.003, "daily probability that a user past that threshold starts posting in "
                               "the topic", lo=0, hi=1, unit="1/day")
    inspired_posting_rate: float = knob(0.3, "posts per day of an inspired user in their new topic", lo=0,
                                        hi=50, unit="1/day")
    engagement_polish_scale: float = knob(1.0, "how strongly polish x sensitivity acts on comment, share "
                                          "and follow (multiplies like_polish)", lo=0)


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class PostEvent:
    """A scheduled scenario post: account ``account`` posts at ``at_hours``."""

    name: str = knob(desc="label of the post in result tables (tracked)")
    account: str = knob(desc="name of the planted account that posts it")
    at_hours: float = knob(0.0, "simulated time of the post (0 = end of warm-up)", lo=0, unit="h")
    topic: str = knob("", "topic name; empty = the account's topic")
    quality_quantile: float = knob(0.5, "latent quality as a quantile of the population's quality "
                                   "distribution", lo=1e-6, hi=1 - 1e-6)
    authenticity: float = knob(0.9, "authenticity (1 = real, 0 = retouched)", lo=0, hi=1)
    length_s: float = knob(30.0, "post length", lo=1, hi=3600, unit="s")
    product: str = knob("", "name of a product the post sells; empty = none")
    sound: str = knob("", "name of the post's sound: the first post using a name releases it as an "
                      "original sound by its account; empty = none")
    appeal_quantile: float = knob(-1.0, "appeal of the sound the post releases (how much listeners take to "
                                  "the song: it carries into its derivatives and draws creators to use it), "
                                  "as a quantile like quality_quantile; -1: the post's own quality", lo=-1,
                                  hi=1 - 1e-6)
    bought_likes: int = knob(0, "likes bought for the post, added when it is posted (visible to users and "
                             "to the follower ranker's engagement order; pools see only real engagement)",
                             lo=0)


@dataclass(frozen=True)
class RankerSpec:
    """One ``[[rankers]]`` table: which ranker, its label and its params."""

    name: str = knob(desc="registered ranker name or 'module:Class'")
    label: str = knob("", "label in result tables (defaults to the name)")
    params: Any = knob(default_factory=dict, desc="ranker parameters, validated by the ranker's Params")


@dataclass(frozen=True)
class RecordingConfig:
    """What is written besides the per-post and per-run tables."""

    impression_sample_rate: float = knob(0.0005, "share of impressions written to impressions/ "
                                         "(impressions of tracked posts are always written)", lo=0, hi=1)
    snapshot_hours: float = knob(1.0, "interval of tracked-entity snapshots", lo=0.01, unit="h")
    topic_measures: bool = knob(False, "write per-topic measures (creators, inspired posters, core-audience "
                                "share) to the measures table")


@dataclass(frozen=True)
class Experiment:
    """An experiment file."""

    name: str = knob("", "experiment name (defaults to the file's stem); results/<name>/")
    description: str = knob("", "what the experiment shows, and why its world is sized as it is")
    seed: int = knob(1, "base seed; every random stream derives from it", lo=0)
    replicates: int = knob(2, "replicates per ranker (paired across rankers)", lo=1, hi=10_000)
    horizon_days: float = knob(1.0, "simulated time after warm-up", lo=0.001, hi=365, unit="day")
    warmup_hours: float = knob(12.0, "simulated time before t=0 that fills the platform with posts",
                               lo=0, hi=720, unit="h")
    tick_seconds: float = knob(60.0, "sessions starting inside one tick are served as one batch",
                               lo=0.5, hi=3600, unit="s")
    focal: str = knob("", "the primary tracked post (an event name) for focal_* columns; "
                      "empty = the first event")
    baseline: str = knob("", "label of the ranker paired differences are taken against")
    baseline_point: int = knob(-1, "index of the sweep point that paired differences across points are "
                               "taken against, per ranker (-1: none)", lo=-1)
    highlights: tuple[str, ...] = knob(default_factory=tuple, desc="the experiment's key metrics (a runs.parquet "
                                       "column or a <kind>.<entity>.<metric> measure): tabled first and plotted "
                                       "per ranker (or against the sweep) in the report")
    world: WorldConfig = knob(default_factory=WorldConfig, desc="[world]")
    behavior: BehaviorConfig = knob(default_factory=BehaviorConfig, desc="[behavior]")
    events: tuple[PostEvent, ...] = knob(default_factory=tuple, desc="scheduled posts ([[events]] tables)")
    rankers: tuple[RankerSpec, ...] = knob(default_factory=tuple, desc="rankers to compare ([[rankers]])")
    recording: RecordingConfig = knob(default_factory=RecordingConfig, desc="[recording]")
    sweep: Any = knob(default_factory=dict, desc="[sweep]: 'dotted.key' = [values] grids (all combinations); "
                      "[sweep.zip]: lists of equal length varied together")
    quick: Any = knob(default_factory=dict, desc="[quick]: 'dotted.key' = value overrides applied by --quick "
                      "(default: at most 50,000 users, 2 replicates, at most 1 day)")

    @property
    def warmup_s(self) -> float:
        return self.warmup_hours * 3600.0

    @property
    def horizon_s(self) -> float:
        return self.horizon_days * DAY


# --------------------------------------------------------------------------- parsing


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if _is_dataclass_type(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, problems: list[str], meta: Mapping[str, Any]) -> Any:
    """Convert a TOML value to ``tp``, appending a problem (and returning None) on failure."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            problems.append(f"{key}: expected a table (got {_shown(value)})")
            return None
        return build(tp, value, key, problems)
    if origin is tuple:
        (inner,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            problems.append(f"{key}: expected a list of {_type_name(inner)} (got {_shown(value)})")
            return None
        items = [_coerce(v, inner, f"{key}[{i}]", problems, meta) for i, v in enumerate(value)]
        if _is_dataclass_type(inner):
            # A bad entry keeps its index (so later messages name the right one) as a
            # placeholder; its problem is already reported.
            return tuple(build(inner, {}, "", []) if item is None else item for item in items)
        return None if any(item is None for item in items) else tuple(items)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key}: expected true or false (got {_shown(value)})")
            return None
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{key}: expected an integer (got {_shown(value)})")
            return None
        if not -INT64_MAX <= value <= INT64_MAX:
            problems.append(f"{key}: {_shown(value)} is too large (at most {INT64_MAX:,} in magnitude)")
            return None
    elif tp is float:
        number = _finite(value)
        if number is None:
            problems.append(f"{key}: expected a finite number (got {_shown(value)})")
            return None
        value = number
    elif tp is str:
        if not isinstance(value, str):
            problems.append(f"{key}: expected a string (got {_shown(value)})")
            return None
        if key != "description" and CONTROL_CHARACTERS.search(value):
            problems.append(f"{key}: control characters (newline, tab, NUL, ...) are not allowed "
                            f"(got {_shown(value)})")
            return None
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    problem = None
    if lo is not None and value < lo:
        problem = f"{key}: must be >= {lo:g} (got {_shown(value)})"
    elif hi is not None and value > hi:
        problem = f"{key}: must be <= {hi:g} (got {_shown(value)})"
    elif choices is not None and value not in choices:
        problem = f"{key}: must be one of {', '.join(choices)} (got {_shown(value)})"
    if problem:
        problems.append(problem)
        return None  # the caller keeps the default, so later checks see a sane value
    return value


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN, infinite, or too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond 1.8e308
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a huge value cannot flood the message."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


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
            shown = key if re.fullmatch(r"[A-Za-z0-9_.\[\]-]{1,60}", key) else _shown(key)  # one line, short
            problems.append(f"{_join(prefix, shown)}: unknown key (known: {known})")
    for name, f in fields.items():
        key = _join(prefix, name)
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
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return {int: 0, float: 0.0, str: "", bool: False}.get(tp)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# --------------------------------------------------------------------------- cross-field checks


def _check_references(exp: Experiment, problems: list[str]) -> None:
    world = exp.world
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
    accounts = {}
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
    products = {}
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
    if exp.focal and exp.focal not in names:
        problems.append(f"focal: unknown event {exp.focal!r} (known: {', '.join(sorted(names)) or 'none'})")
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
            problems.append(f"{key}.params: expected a table (got {_shown(params)})")
            params = {}
        try:
            built: Any = build(ranker_cls.Params, params, f"{key}.params", problems)
        except Exception as exc:  # a user's Params that is not a plain dataclass of knobs
            problems.append(f"{key}.params: cannot build {spec.name}'s Params: {type(exc).__name__}: {exc}")
            built = params
        specs.append(dataclasses.replace(spec, label=label, params=built))
    object.__setattr__(exp, "rankers", tuple(specs))
    try:
        n_points = len(sweep_points(exp.sweep)) if isinstance(exp.sweep, Mapping) and exp.sweep else 0
    except ConfigError:
        n_points = 0  # reported by _check_sweep
    if exp.baseline_point >= max(n_points, 1) or (exp.baseline_point >= 0 and not n_points):
        problems.append(f"baseline_point: {exp.baseline_point} is not a sweep point "
                        f"(the file has {n_points or 'no'} sweep points)")
    if exp.baseline and exp.baseline not in labels:
        problems.append(f"baseline: unknown ranker label {exp.baseline!r} (known: {', '.join(sorted(labels))})")


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
        return f"{_shown(name)} is not a safe name (at most 100 characters, got {len(name)})"
    if not SAFE_NAME.fullmatch(name):
        return f"{_shown(name)} is not a safe name ({SAFE_NAME_RULE})"
    return None


def default_label(name: str) -> str:
    """The label of a ``[[rankers]]`` table that sets none: the registered name, or for a
    user's ``'package.module:Class'`` the class name, which is a safe folder name.

    >>> default_label("content"), default_label("mypkg.rankers:Newest")
    ('content', 'Newest')
    """
    return name.rpartition(":")[2] if ":" in name else name


def _resolve(name: str, key: str, problems: list[str]) -> Any:
    """The ranker class ``name`` names, or None with a problem (a missing name is reported by build)."""
    from sim.rankers import resolve_ranker  # local: rankers import config

    if not name:
        return None
    try:
        return resolve_ranker(name)
    except (KeyError, ImportError, AttributeError) as exc:
        problems.append(f"{key}: {exc.args[0] if exc.args else exc}")
    except Exception as exc:  # a user's module that fails on import, or a malformed 'module:Class'
        problems.append(f"{key}: cannot load ranker {_shown(name)}: {type(exc).__name__}: {exc}")
    return None


def sweep_points(sweep: Mapping[str, Any], where: str = "sweep") -> list[dict[str, Any]]:
    """Expand a ``[sweep]`` table into points: the product of every grid list, times the
    ``zip`` lists taken together.

    >>> sweep_points({"a": [1, 2], "zip": {"b": [3, 4], "c": [5, 6]}})
    [{'a': 1, 'b': 3, 'c': 5}, {'a': 1, 'b': 4, 'c': 6}, {'a': 2, 'b': 3, 'c': 5}, {'a': 2, 'b': 4, 'c': 6}]
    """
    problems = []
    axes: list[list[dict[str, Any]]] = []
    for key, values in sweep.items():
        if key == "zip":
            if not isinstance(values, Mapping) or not values:
                problems.append(f"{where}.zip: expected a table of equal-length lists")
                continue
            lengths = {len(v) if isinstance(v, list) else -1 for v in values.values()}
            if len(lengths) != 1 or -1 in lengths or 0 in lengths:
                problems.append(f"{where}.zip: expected non-empty lists of equal length")
                continue
            axes.append([dict(zip(values, combo, strict=True)) for combo in zip(*values.values(), strict=True)])
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}.{key}: expected a non-empty list of values")
        else:
            axes.append([{key: v} for v in values])
    if not problems and math.prod(len(axis) for axis in axes) > MAX_SWEEP_POINTS:
        problems.append(f"{where}: {math.prod(len(axis) for axis in axes):,} points (the product of the grid "
                        f"lists) exceed {MAX_SWEEP_POINTS:,}")
    if problems:
        raise ConfigError(problems)
    points: list[dict[str, Any]] = [{}]
    for axis in axes:
        points = [{**p, **q} for p in points for q in axis]
    return points


def _check_sweep(table: Mapping[str, Any], source: str, problems: list[str]) -> None:
    sweep = table.get("sweep") or {}
    if not isinstance(sweep, Mapping):
        return  # reported by _parse
    try:
        points = sweep_points(sweep)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point")}
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
        _parse(apply_overrides(base, overrides, source), source, variants=False)
    except ConfigError as exc:
        for problem in exc.problems:
            problem = problem.removeprefix(prefix)
            if problem not in problems:
                problems.append(f"{where}: {problem}")


def parse(table: Mapping[str, Any], source: str = "<config>") -> Experiment:
    """Validate a parsed TOML table into an :class:`Experiment` (raises :class:`ConfigError`).

    Besides the table itself, the first and last sweep points and the ``--quick`` variant are
    checked, so that neither a sweep nor ``run --quick`` can fail on a file that validated."""
    return _parse(table, source, variants=True)


def _parse(table: Mapping[str, Any], source: str, variants: bool) -> Experiment:
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
        problems.append(f"sweep: expected a table of 'dotted.key' = [values] (got {_shown(exp.sweep)})")
        object.__setattr__(exp, "sweep", {})
    if not isinstance(exp.quick, Mapping):
        problems.append(f"quick: expected a table of 'dotted.key' = value (got {_shown(exp.quick)})")
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


@dataclass(frozen=True)
class Point:
    """One sweep point: its parameters (dotted key -> value) and the experiment it resolves to."""

    index: int
    params: dict[str, Any]
    exp: Experiment


def points(exp: Experiment) -> list[Point]:
    """The experiment's sweep points (one point, with no parameters, when there is no sweep)."""
    table: dict[str, Any] = getattr(exp, "_table", {})
    source: str = getattr(exp, "_source", "<config>")
    if not exp.sweep:
        return [Point(0, {}, exp)]
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point")}
    out = []
    for i, params in enumerate(sweep_points(exp.sweep)):
        point_exp = parse(apply_overrides(base, params, source), source)
        object.__setattr__(point_exp, "name", exp.name)
        out.append(Point(i, params, point_exp))
    return out


def quick_overrides(table: Mapping[str, Any]) -> dict[str, Any]:
    """What ``--quick`` changes: the file's ``[quick]`` table, else a generic small variant
    (at most 50,000 users, 2 replicates, at most 1 simulated day)."""
    quick = table.get("quick")
    if quick and isinstance(quick, Mapping):
        return dict(quick)
    world = table.get("world") or {}
    users = world.get("users", WorldConfig.users) if isinstance(world, Mapping) else WorldConfig.users
    out: dict[str, Any] = {"replicates": 2}
    if isinstance(users, int) and users > 50_000:
        out["world.users"] = 50_000
    horizon = table.get("horizon_days", Experiment.horizon_days)
    if isinstance(horizon, int | float) and horizon > 1:
        out["horizon_days"] = 1.0
    return out


def load(path: str | Path, overrides: Mapping[str, Any] | None = None, quick: bool = False) -> Experiment:
    """Read, override (``--quick`` first, then ``--set``) and validate an experiment file.

    Also refuses an experiment whose run cannot fit in this machine's memory
    (:func:`estimate_peak_bytes` against :func:`machine_memory_bytes`)."""
    table = read_table(path)
    source = str(path)
    if quick:
        table = apply_overrides(table, quick_overrides(table), source)
    if overrides:
        table = apply_overrides(table, overrides, source)
    exp = parse(table, source)
    check_memory(exp)
    return exp


def read_table(path: str | Path) -> dict[str, Any]:
    """The TOML table of an experiment file; any failure is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not an experiment file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise ConfigError([f"{_shown(str(path))}: cannot read ({exc})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                           f"save it as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: TOML nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError([f"{path}: TOML value error: {exc}"]) from None


# ---------------------------------------------------------------------------- memory

# Peak resident memory of one run (one process).  Measured: the engine run in a child process
# (load + Simulation(exp, exp.rankers[0], 0).run() + its Parquet tables), then the child's
# resource.getrusage(RUSAGE_SELF).ru_maxrss, on experiments/calibration.toml (12 h warm-up, so
# days = horizon_days + 0.5, content ranker), e.g.
#   .venv/bin/python -c 'import resource; from sim.config import load; from sim.engine import Simulation
#   exp = load("experiments/calibration.toml", {"world.users": 5000, "horizon_days": 4})
#   Simulation(exp, exp.rankers[0], 0).run(); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)'
#   users    horizon_days  other                     peak RSS
#   2        0.001         warmup_hours=0            316 MiB  (libraries: numpy, numba, pyarrow, simpy)
#   5,000    0.25 / 4      (engine of commit d271e9a) 348 / 353 MiB
#   20,000   0.25          world.follows_mean=200    394 MiB, 378 MiB without  (+5.3M follow edges)
#   20,000   0.25          world.posting_rate_mean=5 433 MiB  (72,480 posts instead of 649)
#   400,000  5             trinidad.toml             1.5 GB   (README: GNU time, whole batch)
#   2,000,000 5            trinidad_scale.toml       6.2 GB   (docs/performance.md)
# Fit: 330 MiB + 1,000 B per user + 350 B per user-day (the seen-post filter, 12 bits per
# expected view, and the daily watch arrays) + 3.2 B per extra follow edge + 800 B per post;
# times MEMORY_MARGIN it lies 0-25% above every row (trinidad: 16% and 22%).
MEMORY_BASE = 330 * 2**20
MEMORY_PER_USER = 1_000
MEMORY_PER_FOLLOW = 3.2  # each follow edge beyond the default's
MEMORY_PER_USER_DAY = 350  # at the default attention and activity
MEMORY_PER_POST = 800
MEMORY_MARGIN = 1.1  # allocator slack and the spread between worlds drawn from different seeds


def estimate_peak_bytes(exp: Experiment) -> int:
    """An upper estimate of one run's peak resident memory in bytes.

    Linear in the world's size: users (with bought followers), follow edges, user-days of
    activity (scaled by how many posts a user-day watches) and posts made.  A batch of ``jobs``
    concurrent runs needs about ``jobs`` times this.

    >>> exp = parse({"world": {"users": 100_000}, "horizon_days": 0.25, "rankers": [{"name": "content"}]}, "x")
    >>> format_bytes(estimate_peak_bytes(exp))
    '498 MiB'
    """
    world, behavior = exp.world, exp.behavior
    days = exp.horizon_days + exp.warmup_hours / 24
    users = float(world.users)
    nodes = users + sum(float(a.bought_followers) for a in world.accounts)
    extra_follows = max(0.0, world.follows_mean * math.exp(world.follows_sigma**2 / 2) - _DEFAULT_FOLLOWS) * users
    views_scale = _views_per_active_second(world, behavior) / _views_per_active_second(WorldConfig(), BehaviorConfig())
    activity = world.daily_active_share * world.attention_mean_minutes
    default_activity = WorldConfig.daily_active_share * WorldConfig.attention_mean_minutes
    user_days = users * days * max(1.0, views_scale * activity / default_activity)
    posts = users * days * world.posting_rate_mean + sum(a.posting_rate * days for a in world.accounts)
    peak = (MEMORY_BASE + nodes * MEMORY_PER_USER + extra_follows * MEMORY_PER_FOLLOW
            + user_days * MEMORY_PER_USER_DAY + posts * MEMORY_PER_POST) * MEMORY_MARGIN
    return int(min(peak, 2.0**126))


_DEFAULT_FOLLOWS = WorldConfig.follows_mean * math.exp(WorldConfig.follows_sigma**2 / 2)


def _views_per_active_second(world: WorldConfig, behavior: BehaviorConfig) -> float:
    """Posts a user watches per second of attention (the seen filter is sized from it)."""
    mean_length = world.post_length_median_s * math.exp(world.post_length_sigma**2 / 2)
    return 1.0 / (0.4 * mean_length + behavior.swipe_seconds)


def machine_memory_bytes() -> int | None:
    """This machine's total memory in bytes (the smaller of physical memory and a cgroup limit),
    or None where it cannot be read."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit() and (total is None or int(limit) < total):
            total = int(limit)
    except OSError:
        pass
    return total if total and total > 0 else None


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size.

    >>> format_bytes(1.5 * 2**30), format_bytes(146 * 2**40)
    ('1.5 GiB', '146 TiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def check_memory(exp: Experiment, memory: int | None = None) -> int:
    """Raise :class:`ConfigError` if one run of ``exp`` (at any sweep point) cannot fit in
    ``memory`` bytes (default: :func:`machine_memory_bytes`); return the largest estimate."""
    peak, point = max(((estimate_peak_bytes(p.exp), p) for p in _memory_points(exp)), key=lambda pair: pair[0])
    memory = machine_memory_bytes() if memory is None else memory
    if memory is not None and peak > memory:
        source = getattr(exp, "_source", "<config>")
        where = f"sweep point {point.params}: " if point.params else ""
        raise ConfigError([f"{source}: {where}world.users: one run of {point.exp.world.users:,} users x "
                           f"{point.exp.horizon_days:g} days needs about {format_bytes(peak)} of memory; this "
                           f"machine has {format_bytes(memory)} (make world.users or horizon_days smaller)"])
    return peak


def _memory_points(exp: Experiment) -> list[Point]:
    """One point per distinct setting of the sweep's world and horizon keys (the rest do not
    change the memory a run needs)."""
    if not exp.sweep:
        return [Point(0, {}, exp)]
    table: dict[str, Any] = getattr(exp, "_table", {})
    source: str = getattr(exp, "_source", "<config>")
    base = {k: v for k, v in table.items() if k not in ("sweep", "quick", "baseline_point")}
    relevant: dict[str, dict[str, Any]] = {}
    for params in sweep_points(exp.sweep):
        sized = {k: v for k, v in params.items() if k.startswith(("world.", "horizon_days", "warmup_hours"))}
        relevant.setdefault(repr(sorted(sized.items())), sized)
    out = []
    for i, params in enumerate(relevant.values()):
        try:
            out.append(Point(i, params, _parse(apply_overrides(base, params, source), source, variants=False)))
        except ConfigError as exc:
            prefix = f"{source}: "
            raise ConfigError([f"{source}: sweep point {params}: {p.removeprefix(prefix)}"
                               for p in exc.problems]) from None
    return out


def apply_overrides(table: Mapping[str, Any], overrides: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Apply ``--set a.b=value`` overrides.

    ``rankers.<label>.k`` addresses a ranker's params; ``name[i]`` addresses the
    i-th table of a list (``world.accounts[0].bought_followers``).
    """
    import copy

    out: dict[str, Any] = copy.deepcopy(dict(table))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if parts[0] == "rankers" and len(parts) >= 3:
            rankers = out.get("rankers")
            tables = [r for r in rankers if isinstance(r, dict)] if isinstance(rankers, list) else []
            matches = [r for r in tables if _label_of(r) == parts[1]]
            if not matches:
                raise ConfigError([f"{source}: --set {dotted}: no ranker labelled {parts[1]!r}"])
            node = matches[0].setdefault("params", {})
            if not isinstance(node, dict):
                raise ConfigError([f"{source}: --set {dotted}: rankers {parts[1]!r}: params is not a table"])
            parts = parts[2:]
        else:
            node = out
        for part in parts[:-1]:
            node = _child(node, part, dotted, source)
        node[parts[-1]] = value
    return out


def _label_of(ranker: Mapping[str, Any]) -> Any:
    """The label a raw ``[[rankers]]`` table will get (its own, else :func:`default_label`)."""
    name = ranker.get("name")
    return ranker.get("label") or (default_label(name) if isinstance(name, str) else name)


def _child(node: dict[str, Any], part: str, dotted: str, source: str) -> dict[str, Any]:
    """The table under key ``part`` (``name`` or ``name[i]``) of ``node``, created if missing."""
    name, bracket, rest = part.partition("[")
    if not bracket:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError([f"{source}: --set {dotted}: {part} is not a table"])
        return child
    items = node.get(name)
    index = rest.removesuffix("]")
    if not index.isdigit() or not isinstance(items, list) or int(index) >= len(items):
        size = len(items) if isinstance(items, list) else 0
        raise ConfigError([f"{source}: --set {dotted}: {part}: no such entry ({name} has {size})"])
    child = items[int(index)]
    if not isinstance(child, dict):
        raise ConfigError([f"{source}: --set {dotted}: {part} is not a table"])
    return child


def parse_value(text: str) -> Any:
    """Parse the value of ``--set key=value`` as a TOML value (bare words are strings)."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return text
    return parsed["v"] if len(parsed) == 1 else text  # "1\nseed = 2" is one string, not two keys


def overrides_of(exp: Experiment) -> dict[str, Any]:
    """Behaviour fields that differ from the calibrated defaults (shown by ``validate``)."""
    base = BehaviorConfig()
    return {f"behavior.{f.name}": getattr(exp.behavior, f.name) for f in dataclasses.fields(BehaviorConfig)
            if getattr(exp.behavior, f.name) != getattr(base, f.name)}


def to_dict(obj: Any) -> Any:
    """A JSON-able view of a config object (for the manifest)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def reference(cls: type = Experiment, prefix: str = "") -> list[tuple[str, str, str, str, str]]:
    """Rows (key, type, default, range, description) for every field, recursively."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = _join(prefix, f.name)
        meta = f.metadata
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        if _is_dataclass_type(tp):
            rows.extend(reference(tp, key))
            continue
        if inner is not None and _is_dataclass_type(inner):
            rows.extend(reference(inner, f"{key}[]"))
            continue
        default = "(required)"
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        rng = ""
        if meta.get("lo") is not None or meta.get("hi") is not None:
            rng = f"[{meta.get('lo', '')}, {meta.get('hi', '') if meta.get('hi') is not None else '∞'}]"
        if meta.get("choices"):
            rng = " | ".join(meta["choices"])
        desc = meta.get("desc", "") + (f" ({meta['unit']})" if meta.get("unit") else "")
        rows.append((key, _type_name(tp), default, rng, desc))
    return rows

