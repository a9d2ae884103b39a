"""The world as arrays: users, the follow graph, posts and products.

Nothing here is a per-user Python object.  Users are rows of arrays; the follow
graph is a ``scipy.sparse`` CSR matrix (row = follower, column = followee);
posts live in a growable column store (:class:`Posts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtri

from sim.config import Experiment, PlantedAccount, Product, WorldConfig
from sim.model.graph import csr_from_edges, csr_pattern

NO_ID = -1

#: Per-user creator skill: sd of the author's share of post quality.
SKILL_SD = 0.5

#: Share of ordinary posts whose topic is drawn from the author's whole interest mix rather than
#: their main topic: creators post mostly in their own micro-community, now and then in another
#: they like (a modelling assumption, not calibrated; a draw from the mix can land on the main topic
#: too, so slightly fewer posts than this leave it).
OFF_TOPIC_SHARE = 0.2


@dataclass
class Users:
    """Per-user traits, each an array of shape ``(n_users,)`` unless noted.

    Bought (inactive) followers are users too: ``active`` is False for them and
    their session rate is 0, so they never watch.
    """

    interest: np.ndarray  # (n, T) float32, rows sum to 1
    affinity: np.ndarray  # (n, T) float32, interest / row max: 1 for the main topic
    main_topic: np.ndarray  # int16
    attention_s: np.ndarray  # float32, budget on an active day (s)
    active_share: np.ndarray  # float32, probability of being active on a day
    posting_rate: np.ndarray  # float32, posts per day
    skill: np.ndarray  # float32, author's mean post quality
    polish_sensitivity: np.ndarray  # float32, >= 0
    active: np.ndarray  # bool

    @property
    def n(self) -> int:
        """Number of users, bought followers included."""
        return len(self.main_topic)


class ColumnStore:
    """Growable column store: numpy columns with capacity doubling; ``len(store)`` rows are
    live.  ``STATIC`` columns are set on append (missing ones take ``DEFAULTS`` or 0);
    ``COUNTERS`` start at 0 and only ever increase."""

    STATIC: dict[str, type] = {}
    COUNTERS: dict[str, type] = {}
    DEFAULTS: dict[str, int] = {}

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.cols: dict[str, np.ndarray] = {}
        for name, dtype in {**self.STATIC, **self.COUNTERS}.items():
            self.cols[name] = np.zeros(capacity, dtype=dtype)

    def __len__(self) -> int:
        return self.n

    def __getattr__(self, name: str) -> np.ndarray:
        """Column ``name`` as a view of its live rows, shape ``(len(self),)``."""
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.__dict__["n"]]
        raise AttributeError(name)

    def append(self, **columns: np.ndarray) -> np.ndarray:
        """Append rows.

        Parameters
        ----------
        **columns : (m,) arrays
            Static columns of the new rows, all of one length ``m``.

        Returns
        -------
        (m,) int64
            The new rows' ids (consecutive, from the old length).
        """
        m = len(next(iter(columns.values())))
        need = self.n + m
        capacity = len(next(iter(self.cols.values())))
        if need > capacity:
            new = max(need, 2 * capacity)
            for name, col in self.cols.items():
                grown = np.zeros(new, dtype=col.dtype)
                grown[: self.n] = col[: self.n]
                self.cols[name] = grown
        ids = np.arange(self.n, need, dtype=np.int64)
        for name in self.STATIC:
            self.cols[name][self.n : need] = columns.get(name, self.DEFAULTS.get(name, 0))
        self.n = need
        return ids


class Posts(ColumnStore):
    """Posts and their counters.  A derivative post (duet, stitch, 'use this sound') has a
    ``parent`` and its parent's ``sound``; ``depth`` counts derivative steps from the original."""

    STATIC = {
        "author": np.int32, "topic": np.int16, "quality": np.float32, "authenticity": np.float32,
        "length_s": np.float32, "product": np.int32, "created_at": np.float64,
        "author_followers_at_post": np.int32, "event": np.int16, "sound": np.int32, "parent": np.int64,
        "depth": np.int16, "format": np.int16,
    }  # fmt: skip
    COUNTERS = {
        "views": np.int32, "likes": np.int32, "comments": np.int32, "shares": np.int32,
        "follows": np.int32, "purchases": np.int32, "completions": np.int32, "watch_s": np.float64,
        "views_following": np.int32, "views_reshare": np.int32, "views_pool": np.int32,
        "views_explore": np.int32, "views_other": np.int32, "bought_likes": np.int32, "derivatives": np.int32,
        "views_core": np.int32, "views_in_stock": np.int32, "views_first_day": np.int32,
    }  # fmt: skip
    DEFAULTS = {"product": NO_ID, "event": NO_ID, "sound": NO_ID, "parent": NO_ID, "format": NO_ID}


class Sounds(ColumnStore):
    """Sounds: the post that released each one (``origin``), its ``artist`` and its
    ``appeal`` (the origin post's quality).  ``names`` maps scenario sound names to ids."""

    STATIC = {"origin": np.int64, "artist": np.int32, "appeal": np.float32, "created_at": np.float64}

    def __init__(self, capacity: int = 1024):
        super().__init__(capacity)
        self.names: dict[str, int] = {}


#: The channel groups product sales are counted by (the impression that sold them), in the column
#: order of ``Products.sold_by_channel``: following (and reshare), for you (pools, retrieval,
#: exploration), sound (sound pages) and other.
SALES_CHANNELS = ("following", "for_you", "sound", "other")


@dataclass
class Products:
    """Products with finite inventory; arrays of shape ``(n_products,)``."""

    names: tuple[str, ...]
    seller: np.ndarray  # int64 user id
    price: np.ndarray  # float64
    inventory: np.ndarray  # int64, units left (never negative)
    initial: np.ndarray  # int64
    sold: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sellout_at: np.ndarray = field(default_factory=lambda: np.zeros(0))  # s, nan until sold out
    restock_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    restock_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # delay from sell-out to restock
    restocks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # restocks so far
    sellouts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sell-outs so far
    #: units sold by the channel of the impression that sold them (:data:`SALES_CHANNELS`), and
    #: units sold to viewers who did not follow the seller.  Shape (n_products, 4) and (n_products,).
    sold_by_channel: np.ndarray = field(default_factory=lambda: np.zeros((0, len(SALES_CHANNELS)), np.int64))
    sold_non_follower: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def from_config(cls, specs: tuple[Product, ...], sellers: np.ndarray) -> Products:
        """Products of ``specs`` at full stock; ``sellers`` (shape ``(n_products,)``) are user ids."""
        n = len(specs)
        return cls(
            names=tuple(spec.name for spec in specs), seller=sellers,
            price=np.array([spec.price for spec in specs], dtype=np.float64),
            inventory=np.array([spec.inventory for spec in specs], dtype=np.int64),
            initial=np.array([spec.inventory for spec in specs], dtype=np.int64),
            sold=np.zeros(n, dtype=np.int64), sellout_at=np.full(n, np.nan),
            restock_units=np.array([spec.restock_units for spec in specs], dtype=np.int64),
            restock_s=np.array([spec.restock_hours * 3600.0 for spec in specs]),
            restocks=np.zeros(n, dtype=np.int64), sellouts=np.zeros(n, dtype=np.int64),
            sold_by_channel=np.zeros((n, len(SALES_CHANNELS)), dtype=np.int64),
            sold_non_follower=np.zeros(n, dtype=np.int64),
        )  # fmt: skip


@dataclass
class World:
    """Everything the engine starts from.  ``accounts`` maps planted names to user ids."""

    users: Users
    follows: sp.csr_matrix  # (n, n) follower -> followee, data all 1
    topics: tuple[str, ...]
    accounts: dict[str, int]
    products: Products
    #: Planted accounts with ``topics``: user id -> quality offset per topic, shape (n_topics,).
    topic_fit: dict[int, np.ndarray] = field(default_factory=dict)
    format_fit: dict[int, np.ndarray] = field(default_factory=dict)  # likewise per format of world.formats

    @property
    def follower_counts(self) -> np.ndarray:
        """In-degree of every account, shape ``(n_users,)`` int32."""
        counts = np.zeros(self.users.n, dtype=np.int32)
        step = 1 << 22  # bincount copies its input to int64: count in slices, not all edges at once
        for start in range(0, self.follows.nnz, step):
            counts += np.bincount(self.follows.indices[start : start + step], minlength=self.users.n).astype(np.int32)
        return counts


def _lognormal_with_mean(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    """``n`` lognormal draws (log-sd ``sigma``) whose expectation is ``mean``, shape ``(n,)``."""
    return mean * rng.lognormal(-0.5 * sigma**2, sigma, n)


def make_users(cfg: WorldConfig, rng: np.random.Generator, n_extra_inactive: int = 0) -> Users:
    """Draw user traits.

    Parameters
    ----------
    cfg : WorldConfig
        ``cfg.users`` real users are drawn, with ``len(cfg.topics)`` topics.
    rng : Generator
        The ``world`` stream.
    n_extra_inactive : int
        Bought followers appended after the real users: inactive rows that draw nothing.

    Returns
    -------
    Users
        Arrays of shape ``(cfg.users + n_extra_inactive,)`` (``interest`` and ``affinity``:
        ``(n_users, n_topics)``); ``attention_s`` in seconds, ``posting_rate`` in posts per day.
    """
    n, n_topics = cfg.users, len(cfg.topics)
    gamma = rng.gamma(cfg.interest_concentration, 1.0, (n, n_topics)) + 1e-9
    interest = (gamma / gamma.sum(axis=1, keepdims=True)).astype(np.float32)
    affinity = (interest / interest.max(axis=1, keepdims=True)).astype(np.float32)
    active_share = rng.beta(2.0 * cfg.daily_active_share, 2.0 * (1 - cfg.daily_active_share) + 1e-9, n)
    posting = _lognormal_with_mean(rng, cfg.posting_rate_mean, cfg.posting_rate_sigma, n)
    real = Users(
        interest=interest,
        affinity=affinity,
        main_topic=interest.argmax(axis=1).astype(np.int16),
        attention_s=(_lognormal_with_mean(rng, cfg.attention_mean_minutes, cfg.attention_sigma, n) * 60)
        .astype(np.float32),
        active_share=active_share.astype(np.float32),
        posting_rate=posting.astype(np.float32),
        skill=rng.normal(0.0, SKILL_SD, n).astype(np.float32),
        polish_sensitivity=rng.exponential(cfg.polish_sensitivity_mean, n).astype(np.float32),
        active=np.ones(n, dtype=bool),
    )
    # Bought followers draw nothing from the stream, so a world with them is the world without
    # them plus inactive rows: paired runs with and without a purchase share every real user.
    k = n_extra_inactive
    bought = {"interest": np.full((k, n_topics), 1.0 / n_topics), "affinity": np.ones((k, n_topics)),
              "main_topic": np.zeros(k), "attention_s": np.zeros(k), "active_share": np.zeros(k),
              "posting_rate": np.zeros(k), "skill": np.zeros(k), "polish_sensitivity": np.zeros(k),
              "active": np.zeros(k, dtype=bool)}
    return Users(**{name: np.concatenate([getattr(real, name), rows.astype(getattr(real, name).dtype)])
                    for name, rows in bought.items()})


def preferential_follow_graph(users: Users, cfg: WorldConfig, rng: np.random.Generator,
                              n_chunks: int = 40) -> sp.csr_matrix:
    """Follow graph by preferential attachment with topic homophily.

    Users join in random order, in chunks.  Each follow of a joining user picks
    its target within the user's main topic with probability ``homophily``,
    and either preferentially (a uniformly drawn earlier follow edge's target,
    i.e. proportional to in-degree) with probability ``preferential`` or by
    fitness (proportional to posting rate: people follow those who post).

    Parameters
    ----------
    users : Users
        The world's users; inactive ones (bought followers) follow nobody and are never chosen
        by fitness.
    cfg : WorldConfig
        ``follows_mean``, ``follows_sigma``, ``homophily`` and ``preferential``.
    rng : Generator
        The ``world`` stream.
    n_chunks : int
        Joining rounds: a preferential draw sees the edges of earlier rounds.

    Returns
    -------
    csr_matrix, (n_users, n_users) int8
        Follower -> followee, without self-follows or duplicates.
    """
    n = users.n
    n_topics = users.interest.shape[1]
    topic = users.main_topic.astype(np.int64)
    real = np.flatnonzero(users.active)
    out_degree = np.zeros(n, dtype=np.int64)
    out_degree[real] = np.round(_lognormal_with_mean(rng, cfg.follows_mean, cfg.follows_sigma, len(real)))
    # The floor is read from the real users alone: bought followers must not move a single draw.
    fitness = users.posting_rate.astype(np.float64) + 1e-3 * (users.posting_rate[real].mean() + 1e-9)
    fitness[~users.active] = 0.0
    by_topic = [np.flatnonzero((topic == t) & users.active) for t in range(n_topics)]
    fit_cum_topic = [np.cumsum(fitness[m]) for m in by_topic]
    fit_cum_all = np.cumsum(fitness)
    # Each follower's follows are drawn in one chunk, so they are written straight to their CSR
    # row; earlier targets (for preferential draws) are kept as int32: a million-user graph has
    # tens of millions of edges and per-edge int64 copies would dominate memory.
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(out_degree, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    prior_all = np.empty(len(indices), dtype=np.int32)
    n_all = 0
    prior_topic = [np.empty(16, dtype=np.int32) for _ in range(n_topics)]  # grown by doubling
    n_topic = np.zeros(n_topics, dtype=np.int64)
    for chunk in np.array_split(rng.permutation(real), n_chunks):
        src = np.repeat(chunk, out_degree[chunk])
        if len(src) == 0:
            continue
        homo = rng.random(len(src)) < cfg.homophily
        pref = rng.random(len(src)) < cfg.preferential
        draw = rng.random(len(src))
        targets = _Targets(by_topic, fit_cum_topic, fit_cum_all, prior_all[:n_all],
                           [prior_topic[t][: n_topic[t]] for t in range(n_topics)])
        dst = targets.draw(topic[src], homo, pref, draw)
        prior_all[n_all : n_all + len(dst)] = dst
        n_all += len(dst)
        _append_by_topic(prior_topic, n_topic, dst, topic[dst])
        # src repeats each chunk member out_degree times: edge i of the chunk is follow number
        # i - first[i] of its follower.
        first = np.repeat(np.cumsum(out_degree[chunk]) - out_degree[chunk], out_degree[chunk])
        indices[np.repeat(indptr[chunk], out_degree[chunk]) + np.arange(len(src)) - first] = dst
    del prior_all, prior_topic
    return csr_pattern(indptr, indices, n)


@dataclass(frozen=True)
class _Targets:
    """Where a chunk's follows can go: users by main topic with their cumulative fitness, and
    the targets of earlier follows (all, and by the target's main topic) for preferential draws."""

    by_topic: list[np.ndarray]  # active user ids per main topic
    fit_cum_topic: list[np.ndarray]  # cumulative fitness over by_topic[t]
    fit_cum_all: np.ndarray  # cumulative fitness over every user, shape (n_users,)
    prior_all: np.ndarray  # targets of earlier follows
    prior_topic: list[np.ndarray]  # targets of earlier follows, by the target's main topic

    def by_fitness(self, u: np.ndarray) -> np.ndarray:
        """Users drawn proportionally to fitness from uniforms ``u``."""
        cum = self.fit_cum_all
        return np.searchsorted(cum, u * cum[-1], side="right").clip(0, len(cum) - 1)

    def draw(self, src_topic: np.ndarray, homo: np.ndarray, pref: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The target of each follow (shape ``(m,)``), from its follower's main topic, whether it
        stays in that topic (``homo``), is preferential (``pref``), and one uniform draw ``u``."""
        dst = np.empty(len(u), dtype=np.int64)
        n_all = len(self.prior_all)
        cross = ~homo
        pa = cross & pref & (n_all > 0)
        dst[pa] = self.prior_all[(u[pa] * n_all).astype(np.int64)]
        fit = cross & ~pa
        dst[fit] = self.by_fitness(u[fit])
        for t, members in enumerate(self.by_topic):
            in_t = homo & (src_topic == t)
            if not in_t.any() or len(members) == 0:
                dst[in_t] = self.by_fitness(u[in_t])
                continue
            pool = self.prior_topic[t]
            pa_t = in_t & pref & (len(pool) > 0)
            dst[pa_t] = pool[(u[pa_t] * len(pool)).astype(np.int64)]
            fit_t = in_t & ~pa_t
            cum = self.fit_cum_topic[t]
            dst[fit_t] = members[np.searchsorted(cum, u[fit_t] * cum[-1], side="right").clip(0, len(cum) - 1)]
        return dst


def _append_by_topic(prior_topic: list[np.ndarray], n_topic: np.ndarray, dst: np.ndarray,
                     dst_topic: np.ndarray) -> None:
    """Append follow targets ``dst`` to the per-topic arrays of earlier targets (grown by doubling),
    in place; ``n_topic[t]`` counts the filled entries of ``prior_topic[t]``."""
    order = np.argsort(dst_topic, kind="stable")
    bounds = np.searchsorted(dst_topic[order], np.arange(len(prior_topic) + 1))
    for t in range(len(prior_topic)):
        new = dst[order[bounds[t] : bounds[t + 1]]]
        if len(new):
            end = n_topic[t] + len(new)
            if end > len(prior_topic[t]):
                grown = np.empty(max(end, 2 * len(prior_topic[t])), dtype=np.int32)
                grown[: n_topic[t]] = prior_topic[t][: n_topic[t]]
                prior_topic[t] = grown
            prior_topic[t][n_topic[t] : end] = new
            n_topic[t] = end


def edges_to_csr(src: np.ndarray, dst: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR follower -> followee, shape ``(n, n)``, from edge lists ``src`` and ``dst`` (shape ``(m,)``
    each, user ids); drops self-follows and duplicates."""
    return csr_from_edges(src, dst, n)


def plant_accounts(users: Users, follows: sp.csr_matrix, specs: tuple[PlantedAccount, ...],
                   topics: tuple[str, ...], homophily: float, n_real: int,
                   rng: np.random.Generator) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Give each planted account exactly its configured followers.

    A planted account is an ordinary user of its topic, drawn at random; its
    incoming edges are replaced by ``followers`` followers (a ``homophily``
    share from its topic), plus ``bought_followers`` inactive users.

    Parameters
    ----------
    users : Users
        Updated in place: each planted account's main topic, affinity and posting rate.
    follows : csr_matrix, (n_users, n_users)
        The drawn graph, follower -> followee.
    specs, topics, homophily
        The world's planted accounts, topic names and homophily.
    n_real : int
        Users ``[0, n_real)`` are real; the rest are bought followers, handed out in order.
    rng : Generator
        The ``world`` stream.

    Returns
    -------
    follows : csr_matrix, (n_users, n_users)
        The graph with each planted account's followers replaced.
    accounts : dict[str, int]
        Planted account name -> user id.
    """
    if not specs:
        return follows, {}
    n = users.n
    accounts: dict[str, int] = {}
    taken = np.zeros(n, dtype=bool)
    inactive = np.arange(n_real, n)
    next_inactive = 0
    coo = follows.tocoo()
    src, dst = coo.row.astype(np.int64), coo.col.astype(np.int64)
    for spec in specs:
        t = topics.index(spec.topic)
        candidates = np.flatnonzero((users.main_topic[:n_real] == t) & ~taken[:n_real])
        if len(candidates) == 0:
            candidates = np.flatnonzero(~taken[:n_real])
        uid = int(rng.choice(candidates))
        taken[uid] = True
        accounts[spec.name] = uid
        # The account is a genuine member of its community.
        users.main_topic[uid] = t
        users.affinity[uid, t] = 1.0
        users.posting_rate[uid] = spec.posting_rate
        keep = dst != uid
        src, dst = src[keep], dst[keep]
        n_homo = int(round(homophily * spec.followers))
        pool_topic = np.flatnonzero(users.main_topic[:n_real] == t)
        pool_topic = pool_topic[pool_topic != uid]
        n_homo = min(n_homo, len(pool_topic))
        chosen = rng.choice(pool_topic, n_homo, replace=False) if n_homo else np.zeros(0, np.int64)
        rest = np.setdiff1d(np.arange(n_real), np.concatenate([chosen, [uid]]))
        others = rng.choice(rest, spec.followers - n_homo, replace=False)
        bought = inactive[next_inactive : next_inactive + spec.bought_followers]
        next_inactive += spec.bought_followers
        new_src = np.concatenate([chosen, others, bought]).astype(np.int64)
        src = np.concatenate([src, new_src])
        dst = np.concatenate([dst, np.full(len(new_src), uid, dtype=np.int64)])
    return edges_to_csr(src, dst, n), accounts


def build_world(exp: Experiment, rng: np.random.Generator) -> World:
    """Build the world of one replicate from the ``world`` random stream."""
    cfg = exp.world
    n_bought = sum(a.bought_followers for a in cfg.accounts)
    users = make_users(cfg, rng, n_bought)
    follows = preferential_follow_graph(users, cfg, rng)
    follows, accounts = plant_accounts(users, follows, cfg.accounts, cfg.topics, cfg.homophily, cfg.users, rng)
    sellers = np.array([accounts[product.seller] for product in cfg.products], dtype=np.int64)
    products = Products.from_config(cfg.products, sellers)
    # Drawn last, so that every draw above is the same whether or not an account has ``topics``.
    topic_fit = {accounts[a.name]: rng.normal(0.0, cfg.topic_fit_sd, len(cfg.topics)).astype(np.float32)
                 for a in cfg.accounts if a.topics}
    format_fit = {accounts[a.name]: rng.normal(0.0, cfg.format_fit_sd, len(cfg.formats)).astype(np.float32)
                  for a in cfg.accounts if a.topics and cfg.formats}
    return World(users=users, follows=follows, topics=cfg.topics, accounts=accounts, products=products,
                 topic_fit=topic_fit, format_fit=format_fit)


def quality_at_quantile(q: float) -> float:
    """Latent quality at population quantile ``q`` in (0, 1) (qualities are standard normal)."""
    return float(ndtri(q))


def draw_posts(users: Users, authors: np.ndarray, cfg: WorldConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Static columns for ordinary posts by ``authors`` (user ids, shape ``(m,)``).

    Returns
    -------
    dict[str, (m,) array]
        ``author``, ``topic`` (mostly the author's main topic), latent ``quality`` (standard
        normal over all posts), ``authenticity`` in [0, 1] and ``length_s`` (seconds).
    """
    m = len(authors)
    n_topics = users.interest.shape[1]
    off_topic = rng.random(m) < OFF_TOPIC_SHARE
    cum = np.cumsum(users.interest[authors], axis=1)
    drawn = (rng.random((m, 1)) * cum[:, -1:] > cum).sum(axis=1).clip(0, n_topics - 1)
    topic = np.where(off_topic, drawn, users.main_topic[authors])
    noise_sd = np.sqrt(1.0 - SKILL_SD**2)
    return {
        "author": authors,
        "topic": topic,
        "quality": users.skill[authors] + rng.normal(0.0, noise_sd, m),
        "authenticity": rng.beta(cfg.authenticity_a, cfg.authenticity_b, m),
        "length_s": cfg.post_length_median_s * rng.lognormal(0.0, cfg.post_length_sigma, m),
    }
