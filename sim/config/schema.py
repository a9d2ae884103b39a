"""The experiment file's schema: frozen dataclasses whose fields are documented knobs.

Every field carries its documentation in its metadata (a one-line description and, where it
applies, an allowed range or set of choices; see :func:`sim.params.knob`), so the reference
printed by ``python -m sim schema`` is generated from these classes and cannot drift from them.
Building them from TOML, and every check, is :mod:`sim.config.validate`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sim.params import ReferenceRow, knob
from sim.params import reference as field_reference

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


class ConfigError(ValueError):
    """Raised with every problem found in an experiment file, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


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
    like_intercept: float = knob(-5.35, "like logit at zero watch, average quality, a like count as the "
                                 "viewer's feed usually shows (docs/calibration.md)")
    like_watch: float = knob(2.6, "like logit per unit of watch fraction")
    like_quality: float = knob(0.7, "like logit per unit of quality")
    like_polish: float = knob(1.0, "like logit lost per unit of polish x sensitivity")
    comment_intercept: float = knob(-8.1, "comment logit at zero watch")
    comment_watch: float = knob(2.4, "comment logit per unit of watch fraction")
    comment_quality: float = knob(0.6, "comment logit per unit of quality")
    share_intercept: float = knob(-8.4, "share logit at zero watch")
    share_watch: float = knob(2.6, "share logit per unit of watch fraction")
    share_quality: float = knob(0.9, "share logit per unit of quality")
    follow_intercept: float = knob(-8.54, "follow logit at zero watch (viewer not yet following), an "
                                   "author's follower count as the viewer's feed usually shows")
    follow_watch: float = knob(2.8, "follow logit per unit of watch fraction")
    follow_quality: float = knob(0.8, "follow logit per unit of quality")
    purchase_intercept: float = knob(-8.0, "purchase logit for a product post, no social proof")
    purchase_watch: float = knob(2.5, "purchase logit per unit of watch fraction")
    purchase_affinity: float = knob(1.0, "purchase logit at full interest in the topic")
    purchase_social_proof: float = knob(0.25, "purchase logit per unit of log1p(likes + 5 x comments)")
    like_social_proof: float = knob(0.08, "like logit per unit of log1p(visible likes): the bandwagon "
                                    "effect of a post's like count (bought likes included)")
    follow_social_proof: float = knob(0.05, "follow logit per unit of log1p(visible followers of the author)")
    proof_reference: float = knob(1.0, "how far viewers read the counts they are shown (a post's likes, its "
                                  "author's followers) against what their feed showed them lately: social "
                                  "proof acts on log1p(count) less this times the viewer's reference, the mean "
                                  "log1p of the counts of their last reference_memory impressions (1: fully, "
                                  "as quality is judged against the recent feed, so a bigger world's bigger "
                                  "counts do not raise engagement by themselves; 0: absolute counts)", lo=0, hi=1)
    derivative_intercept: float = knob(-4.0, "logit that a viewer of a post with a sound makes a derivative "
                                       "post (duet, stitch, 'use this sound') at zero watch, for an average "
                                       "poster")
    derivative_watch: float = knob(2.5, "derivative logit per unit of watch fraction")
    derivative_quality: float = knob(0.8, "derivative logit per unit of the sound's appeal")
    derivative_poster: float = knob(1.0, "derivative logit per unit of log(viewer's posting rate / mean "
                                    "posting rate): people who post make derivatives")
    derivative_delay_hours: float = knob(6.0, "mean delay from watching to posting the derivative "
                                         "(exponential)", lo=0, unit="h")
    derivative_at_posting: bool = knob(True, "a viewer moved to use a sound keeps it among its favourites and "
                                       "its next ordinary post uses one of the distinct sounds that moved it "
                                       "since its last post, each equally likely: a derivative in the creator's "
                                       "own topic; off: each derivative is an extra post in its parent's topic, "
                                       "made after derivative_delay_hours")
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
    quality_reference: float = knob(0.8, "how much viewers judge a post against what their feed showed them "
                                     "lately: watch and reactions respond to quality less this times how far "
                                     "the viewer's reference (the recent appeal of their feed, watch_quality x "
                                     "quality + watch_affinity x affinity) has moved from an average post of "
                                     "their interests (0: absolute judgement).  Adaptation level: contrast "
                                     "effects in sequential judgements (Bhargava & Fisman, REStat 2014); so "
                                     "engagement per view stays stable as feeds improve (Zannettou et al., "
                                     "CHI 2024: attention stable at ~45%)", lo=0, hi=1)
    reference_memory: float = knob(100.0, "impressions a viewer's reference averages over (exponential "
                                   "memory: about a day of viewing)", lo=1, unit="impressions")
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


#: Statistics a claim may take over its subject's per-replicate values (see :class:`Claim`).
CLAIM_STATISTICS = ("median", "mean", "min", "max", "share_of_replicates", "ci_low", "ci_high",
                    "point_rel_mean", "point_rel_ci_low", "point_rel_ci_high")
#: Comparisons of a claim's value with its threshold.
CLAIM_COMPARISONS = (">=", "<=", ">", "<")


@dataclass(frozen=True)
class Claim:
    """One ``[[claims]]`` table: what the experiment must show, judged on every run of it."""

    metric: str = knob(desc="a runs.parquet column or a <kind>.<entity>.<metric> measure (python -m sim "
                       "schema --results)")
    threshold: float = knob(desc="the value the statistic is compared with")
    sentence: str = knob(desc="what the claim shows, in words (the report's Claims section)")
    ranker: str = knob("", "the ranker label the claim is about (or set difference or ratio)")
    difference: tuple[str, ...] = knob(default_factory=tuple, desc="two ranker labels [a, b]: the claim is "
                                       "about a - b per replicate (paired)")
    ratio: tuple[str, ...] = knob(default_factory=tuple, desc="two ranker labels [a, b]: the claim is about "
                                  "a / b per replicate (paired)")
    relative_to: str = knob("", "a second metric: the claim is about metric / relative_to, per run of the "
                            "subject (e.g. a measure against the best it could have been); empty: none")
    statistic: str = knob("median", "over replicates: median, mean, min, max; share_of_replicates (with "
                          "at_least and/or at_most, per replicate); ci_low, ci_high (the 95% interval of the "
                          "mean; null below 5 replicates); point_rel_* (a ranker's paired relative change "
                          "versus the file's baseline_point, from summary.parquet); claims.parquet gives each its own "
                          "interval (a median's from order statistics, a share's exact binomial; none for min / max)",
                          choices=CLAIM_STATISTICS)
    compare: str = knob(">=", "how the statistic is compared with the threshold", choices=CLAIM_COMPARISONS)
    at_least: Any = knob(None, "share_of_replicates: a replicate counts where its value is >= this")
    at_most: Any = knob(None, "share_of_replicates: a replicate counts where its value is <= this")
    point: int = knob(-1, "sweep point index the claim is judged at (required in a file with a sweep, "
                      "unless points is set; -1: no sweep)", lo=-1)
    points: tuple[int, ...] = knob(default_factory=tuple, desc="two sweep point indices [a, b]: the claim is "
                                   "about the subject at point a less its value at point b, per replicate "
                                   "(a replicate's runs share their seed across points): how a sweep moves it")


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
    claims: tuple[Claim, ...] = knob(default_factory=tuple, desc="what the experiment must show ([[claims]] "
                                     "tables): evaluated into claims.parquet and the report")

    @property
    def warmup_s(self) -> float:
        """The warm-up in seconds (simulated time before t=0)."""
        return self.warmup_hours * 3600.0

    @property
    def horizon_s(self) -> float:
        """The horizon in seconds (simulated time after the warm-up)."""
        return self.horizon_days * DAY


def default_label(name: str) -> str:
    """The label of a ``[[rankers]]`` table that sets none: the registered name, or for a
    user's ``'package.module:Class'`` the class name, which is a safe folder name.

    >>> default_label("content"), default_label("mypkg.rankers:Newest")
    ('content', 'Newest')
    """
    return name.rpartition(":")[2] if ":" in name else name


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


def reference(cls: type = Experiment, prefix: str = "") -> list[ReferenceRow]:
    """Rows (key, type, default, range, description) for every field, recursively: by default
    the whole experiment file (``python -m sim schema``); see :func:`sim.params.reference`."""
    return field_reference(cls, prefix)
