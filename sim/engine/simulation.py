"""One simulation on a SimPy clock.  The only module that imports simpy.

Processes say what happens in simulated time; the vectorised work lives in
plain methods they call.  Time is in seconds; the clock starts at
``-warmup_s`` so that t = 0 is the end of the warm-up and scenario times
read naturally.  Sessions starting inside one tick window are served as one
batch; every event in a window sees the state as of the window's start.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import simpy

from sim.config import DAY, Experiment, RankerSpec
from sim.model import behavior
from sim.model.rng import streams
from sim.model.state import PlatformState, SeenFilter
from sim.model.world import NO_ID, Posts, Sounds, World, build_world, draw_posts, quality_at_quantile
from sim.rankers import Feedback, Ranker, resolve_ranker
from sim.rankers.base import SOUND, Slate, channel_group, duplicate_in_row, first_k_valid
from sim.rankers.contract import RankerError, check_slate
from sim.recording import Recorder

FIRST_SLATE = 8
MAX_SLATE = 64
MERGE_FOLLOWS_HOURS = 6.0
INSPIRE_HOURS = 6.0
LISTEN_AFTER_HOURS = 24.0  # a listening creator reads a post's reception once it is this old
SOUND_PAGE_WIDTH = 16  # posts of a sound considered for its page: the original, then the most viewed
#: Product sales by the channel group of the impression that sold them (Products.sold_by_channel).
SALES_CHANNELS = ("following", "for_you", "sound", "other")


class RunStopped(Exception):
    """A run was asked to stop before its horizon (:meth:`Simulation.run`'s ``stop``)."""


class Simulation:
    """One run: a world, one ranker, one replicate's random streams.

    Parameters
    ----------
    exp : Experiment
    spec : RankerSpec
        The ranker (``params`` already validated).
    replicate : int
    world : World, optional
        A pre-built world of this replicate (built from the ``world`` stream if
        omitted).  Worlds are mutated by a run, so pass a fresh copy.
    check_slates : bool
        Check every slate against the engine's rules (:mod:`sim.rankers.contract`); off only to
        measure what the checks cost.
    """

    def __init__(self, exp: Experiment, spec: RankerSpec, replicate: int, world: World | None = None,
                 run_id: str | None = None, *, check_slates: bool = True):
        self.exp = exp
        self.spec = spec
        self.label = spec.label or spec.name
        self._stop: Callable[[], bool] | None = None
        self.check_slates = check_slates
        self.check_s = 0.0  # wall seconds spent checking slates
        self.replicate = replicate
        self.rngs = streams(exp.seed, replicate)
        self.world = world if world is not None else build_world(exp, self.rngs["world"])
        self.users = self.world.users
        self.posts = Posts()
        self.env = simpy.Environment(initial_time=-exp.warmup_s)
        self.dt = exp.tick_seconds
        self.end = exp.horizon_s
        days = (exp.warmup_s + exp.horizon_s) / DAY
        self.state = PlatformState(self.world, self.posts, SeenFilter(self._expected_views(days)))
        ranker_cls = resolve_ranker(spec.name)
        with self.ranker_call("its constructor"):
            self.ranker: Ranker = ranker_cls(spec.params, self.rngs["ranker"])
        label = self.label
        self.recorder = Recorder(exp, label, replicate, self.world, self.posts, run_id or f"{label}-r{replicate}")
        self.arrival_day = -1
        self.session_cum = np.zeros(self.users.n)
        self.posting_cum = np.cumsum(self.users.posting_rate.astype(np.float64) / DAY)
        # Planted accounts are the scenario, which starts at t = 0: they post nothing during the
        # warm-up, so each has exactly its planted followers when the scenario starts.
        self.planted = np.zeros(self.users.n, dtype=bool)
        self.planted[list(self.world.accounts.values())] = True
        self.warmup_posting_cum = np.cumsum(np.where(self.planted, 0.0, self.users.posting_rate) / DAY)
        diurnal = np.asarray(exp.world.diurnal, dtype=np.float64)
        self.diurnal = diurnal / diurnal.mean()  # multiplier per hour, mean 1
        n_days = int(np.ceil(days)) + 1
        self.watch_by_day = np.zeros((n_days, self.users.n), dtype=np.float32)
        self.budget_by_day = np.zeros((n_days, self.users.n), dtype=np.float32)
        self.sellout_events = [self.env.event() for _ in self.world.products.names]
        self.sounds = Sounds()
        self.sound_tapped = np.full(self.users.n, NO_ID, dtype=np.int64)  # sound page to open next
        self._derivatives: list[dict[str, np.ndarray]] = []  # queued derivative posts, by due time
        # With derivative_at_posting: the post whose sound each user means to use next (NO_ID: none).
        self.sound_in_mind = np.full(self.users.n, NO_ID, dtype=np.int64)
        # Listeners of named (scenario) sounds: who heard each, and whether first through the artist's post.
        self.listened = np.zeros((0, self.users.n), dtype=bool)
        self.listeners_via_artist = np.zeros(0, dtype=np.int64)
        self._styles = self._account_styles()
        # Topic mixes of planted accounts posting over several topics (listening ones adapt them).
        self.topic_mix = {self.world.accounts[a.name]: np.isin(self.world.topics, a.topics).astype(np.float64)
                          for a in exp.world.accounts if a.topics}
        self.listen_rate = {self.world.accounts[a.name]: a.listen_rate for a in exp.world.accounts if a.topics}
        self.format_mix = {uid: np.ones(len(exp.world.formats)) for uid in self.world.format_fit}
        # A listening creator's posts not yet read, and what the posts it has read earned (sum, count).
        self._unread = {uid: np.zeros(0, np.int64) for uid, rate in self.listen_rate.items() if rate > 0}
        self._earned = {uid: [0.0, 0] for uid in self._unread}
        # Experts breed experts: engagements per (user, topic); users who started posting in a topic.
        self.topic_engagement = np.zeros((self.users.n, len(self.world.topics)), dtype=np.uint16)
        self.inspired_topic = np.full(self.users.n, NO_ID, dtype=np.int16)
        self.inspired_at = np.full(self.users.n, np.nan)
        self.inspired_cum = np.zeros(self.users.n)
        self.impressions = 0
        self.wall_s = 0.0

    def _expected_views(self, days: float) -> np.ndarray:
        w = self.exp.world
        mean_length = w.post_length_median_s * np.exp(w.post_length_sigma**2 / 2)
        per_view = 0.4 * mean_length + self.exp.behavior.swipe_seconds
        return 2.0 * self.users.active_share * self.users.attention_s * days / per_view + 50

    @contextmanager
    def ranker_call(self, what: str) -> Iterator[None]:
        """Turn a ``SystemExit`` or ``KeyboardInterrupt`` raised by the ranker inside the block into a
        :class:`RankerError` naming it: it fails this run alone.  A ``KeyboardInterrupt`` stays one
        while the batch is being stopped (``stop()`` is true), or, without a ``stop``, while SIGINT
        has Python's own handler (a Ctrl-C could land inside the ranker, and is the user's)."""
        try:
            yield
        except (SystemExit, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt):
                stop = self._stop
                if stop() if stop is not None else signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    raise
            raise RankerError(f"ranker {self.label!r} ({self.spec.name}): {what} raised {exc!r}; "
                              f"a ranker must not exit or interrupt the run") from exc

    # ------------------------------------------------------------------ processes

    def run(self, stop: Callable[[], bool] | None = None) -> Recorder:
        """Run to the horizon; returns the recorder holding the result tables.

        ``stop``, if given, is asked once a tick whether to give up; when it says so the run
        raises :class:`RunStopped` (how a batch on a cluster is interrupted without killing
        workers).  Asking it changes nothing in the results.
        """
        started = time.perf_counter()
        env = self.env
        self._stop = stop
        if stop is not None:
            env.process(self.stop_checks(stop))
        with self.ranker_call("start()"):
            self.ranker.start(self.state)
        env.process(self.posting())
        for i, event in enumerate(self.exp.events):
            env.process(self.scenario_post(i, event))
        env.process(self.reviews())
        env.process(self.sessions())
        env.process(self.snapshots())
        env.process(self.follow_merges())
        env.process(self.inspiration())
        for i in range(len(self.sellout_events)):
            env.process(self.sellout(i))
        env.run(until=self.end)
        self.wall_s = time.perf_counter() - started
        self.recorder.finish(self)
        return self.recorder

    def stop_checks(self, stop: Callable[[], bool]):  # type: ignore[no-untyped-def]
        """Raise :class:`RunStopped` at the first tick at which ``stop()`` is true."""
        while not stop():
            yield self.env.timeout(self.dt)
        raise RunStopped(f"stopped at t = {self.env.now / 3600.0:,.2f} h")

    def posting(self):  # type: ignore[no-untyped-def]
        """Background posts (creators post at their heavy-tailed rates) and derivative posts
        whose delay is over."""
        while True:
            self.post_background(self.env.now)
            self.post_inspired(self.env.now)
            self.post_derivatives(self.env.now)
            yield self.env.timeout(self.dt)

    def scenario_post(self, index: int, event):  # type: ignore[no-untyped-def]
        """A scheduled scenario post: a given account posts a given post at a given time."""
        yield self.env.timeout(event.at_hours * 3600.0 - self.env.now)
        self.post_scenario(index, event, self.env.now)

    def reviews(self):  # type: ignore[no-untyped-def]
        """The ranker's periodic review (traffic-pool promotion decisions)."""
        while True:
            with self.ranker_call("review()"):
                decisions = self.ranker.review(self.env.now)
            if decisions is not None:
                self.recorder.promotions(decisions, self.env.now)
            yield self.env.timeout(self.dt)

    def sessions(self):  # type: ignore[no-untyped-def]
        """Sessions starting in each tick window, served as one batch."""
        while True:
            users, seconds = self.arrivals(self.env.now)
            self.serve(users, seconds, self.env.now)
            yield self.env.timeout(self.dt)

    def snapshots(self):  # type: ignore[no-untyped-def]
        """Hourly snapshots of tracked posts, accounts and products."""
        while True:
            self.recorder.snapshot(self, self.env.now)
            yield self.env.timeout(self.exp.recording.snapshot_hours * 3600.0)

    def inspiration(self):  # type: ignore[no-untyped-def]
        """Every 6 h, users who engaged enough with a topic may start posting in it."""
        while True:
            yield self.env.timeout(INSPIRE_HOURS * 3600.0)
            self.inspire(self.env.now)

    def follow_merges(self):  # type: ignore[no-untyped-def]
        """New follows reach follower feeds when the append buffer is merged."""
        while True:
            yield self.env.timeout(MERGE_FOLLOWS_HOURS * 3600.0)
            self.state.merge_follows()

    def sellout(self, product: int):  # type: ignore[no-untyped-def]
        """Wait for a product's stock to run out, record when, and restock it if it is restocked."""
        products = self.world.products
        while True:
            yield self.sellout_events[product]
            self.recorder.sellout(product, self.env.now)
            if products.restock_units[product] <= 0:
                return
            yield self.env.timeout(products.restock_s[product])
            self.sellout_events[product] = self.env.event()
            products.inventory[product] += products.restock_units[product]
            products.restocks[product] += 1

    # ------------------------------------------------------------------ vectorised work

    def hour_factor(self, now: float) -> float:
        return float(self.diurnal[int((now % DAY) // 3600)])

    def arrivals(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Users starting a session in ``[now, now + dt)`` and their session lengths (s).

        Drawn only from the ``arrivals`` stream, so every ranker of a
        replicate sees the same arrivals.  A user drawn twice gets one session
        of the summed length.
        """
        rng = self.rngs["arrivals"]
        day = int((now + self.exp.warmup_s) // DAY)
        if day != self.arrival_day:
            # Who opens the app today: each user with their daily-activity probability.  Active
            # users then start sessions at sessions_per_day, each a share of their daily budget.
            # Bought followers (trailing inactive rows) draw nothing: paired worlds share every draw.
            n_real = self.exp.world.users
            active_today = rng.random(n_real) < self.users.active_share[:n_real]
            self.session_cum = np.cumsum(active_today * (self.exp.world.sessions_per_day / DAY))
            self.arrival_day = day
        total = self.session_cum[-1]
        if total <= 0:
            return np.zeros(0, np.int64), np.zeros(0)
        m = rng.poisson(total * self.dt * self.hour_factor(now))
        users = np.searchsorted(self.session_cum, rng.random(m) * total, side="right")
        mean_session = self.users.attention_s[users] / self.exp.world.sessions_per_day
        seconds = mean_session * rng.gamma(2.0, 0.5, m).astype(np.float32)
        users, inverse = np.unique(users, return_inverse=True)
        return users, np.bincount(inverse, weights=seconds, minlength=len(users))

    def post_background(self, now: float) -> None:
        rng = self.rngs["posting"]
        cum = self.posting_cum if now >= 0 else self.warmup_posting_cum
        total = cum[-1]
        if total <= 0:
            return
        m = rng.poisson(total * self.dt * self.hour_factor(now))
        authors = np.searchsorted(cum, rng.random(m) * total, side="right")
        columns = draw_posts(self.users, authors, self.exp.world, rng)
        with_sound = rng.random(m) < self.exp.world.sound_share
        for uid, (authenticity, quality, product) in self._styles.items():
            mine = authors == uid
            if authenticity >= 0:
                columns["authenticity"][mine] = authenticity
            if quality is not None:
                columns["quality"][mine] = quality
            if product >= 0:
                columns["product"] = np.where(mine, product, columns.get("product", NO_ID))
        for uid in self.topic_mix:
            mine = np.flatnonzero(authors == uid)
            if len(mine) == 0:
                continue
            if self.listen_rate[uid] > 0:
                self.listen(uid, now)
            topic = _choose(self.topic_mix[uid], rng, len(mine))
            columns["topic"][mine] = topic
            columns["quality"][mine] += self.world.topic_fit[uid][topic]
            if uid in self.format_mix:
                form = _choose(self.format_mix[uid], rng, len(mine))
                columns.setdefault("format", np.full(m, NO_ID, dtype=np.int16))[mine] = form
                columns["quality"][mine] += self.world.format_fit[uid][form]
        if self.exp.behavior.derivative_at_posting:
            # No draw is made here, so the posting stream stays common to the rankers of a replicate.
            parents = self.use_sounds_in_mind(authors)
            self.derive(columns, parents, keep_topic=True)
            with_sound &= parents < 0
        ids = self.add_posts(columns, now)
        self.release_sounds(ids[with_sound], now)

    def use_sounds_in_mind(self, authors: np.ndarray) -> np.ndarray:
        """The parent each of these ordinary posts (in draw order) derives from: an author's first
        post uses the sound it has in mind, which it then forgets; NO_ID elsewhere."""
        parents = np.full(len(authors), NO_ID, dtype=np.int64)
        _, first = np.unique(authors, return_index=True)
        parents[first] = self.sound_in_mind[authors[first]]
        self.sound_in_mind[authors[first]] = NO_ID
        return parents

    def derive(self, columns: dict[str, np.ndarray], parents: np.ndarray, keep_topic: bool = False) -> None:
        """Make the posts in ``columns`` with a parent (``parents >= 0``) derivatives of it: its sound,
        one step deeper, quality partly from the sound's appeal, and its topic unless ``keep_topic``
        (a sound chosen for a post of the creator's own stays in the creator's topic); each parent
        counts its new derivatives."""
        p, made = self.posts, parents >= 0
        sound = np.full(len(parents), NO_ID, dtype=np.int64)
        sound[made] = p.sound[parents[made]]
        assert (sound[made] >= 0).all(), "a derivative's parent carries a sound"
        depth = np.zeros(len(parents), dtype=np.int16)
        depth[made] = p.depth[parents[made]] + 1
        carry = self.exp.behavior.sound_carry
        quality = np.asarray(columns["quality"], dtype=np.float64).copy()
        quality[made] = (1 - carry) * quality[made] + carry * self.sounds.appeal[sound[made]]
        topic = np.asarray(columns["topic"]).copy()
        if not keep_topic:
            topic[made] = p.topic[parents[made]]
        columns.update(topic=topic, sound=sound, parent=parents, depth=depth, quality=quality)
        np.add.at(p.cols["derivatives"], parents[made], 1)

    def listen(self, uid: int, now: float) -> None:
        """A creator who listens reads what each of its posts earned once the post is a day old
        (likes, comments, shares and follows, weighted by effort), compares it with what its posts
        earn on average, and shifts its topic mix, and its format mix where it has one, toward the
        topic and format of the posts that did better: each weight times ``exp(listen_rate x the
        post's advantage)``, every post read once (multiplicative weights, as in Hedge).

        What a post earned is counted, not divided by its views: a creator sees what its audience
        gave, and under a ranker that widens the audience of a well-received post that is more.
        It reads at its next post after one turns a day old, every post it made (scenario posts
        included) exactly once."""
        p = self.posts
        unread = self._unread[uid]
        due = p.created_at[unread] <= now - LISTEN_AFTER_HOURS * 3600.0
        recent, self._unread[uid] = unread[due], unread[~due]
        if len(recent) == 0:
            return
        earned = np.log1p(p.likes[recent] + 5.0 * p.comments[recent] + 10.0 * p.shares[recent]
                          + 20.0 * p.follows[recent])
        read = self._earned[uid]
        read[0] += float(earned.sum())
        read[1] += len(earned)
        advantage = self.listen_rate[uid] * (earned - read[0] / read[1])
        self.topic_mix[uid] = _shift(self.topic_mix[uid], p.topic[recent], advantage)
        if uid in self.format_mix:
            made = p.format[recent] >= 0  # its scenario posts and extra derivatives have no format
            self.format_mix[uid] = _shift(self.format_mix[uid], p.format[recent][made], advantage[made])

    def inspire(self, now: float) -> None:
        """Users past ``inspire_engagements`` in a topic start posting in it with probability
        ``inspire_rate`` per day (one topic per user: the one they engaged with most)."""
        beh = self.exp.behavior
        if beh.inspire_rate <= 0:
            return
        eng = self.topic_engagement
        best = eng.argmax(axis=1)
        eligible = np.flatnonzero((eng[np.arange(len(best)), best] >= beh.inspire_engagements)
                                  & (self.inspired_topic < 0)
                                  & (self.users.posting_rate < beh.inspired_posting_rate))
        p = 1.0 - np.exp(-beh.inspire_rate * INSPIRE_HOURS / 24.0)
        chosen = eligible[self.rngs["behavior"].random(len(eligible)) < p]
        if len(chosen) == 0:
            return
        self.inspired_topic[chosen] = best[chosen]
        self.inspired_at[chosen] = now
        self.inspired_cum = np.cumsum(np.where(self.inspired_topic >= 0, beh.inspired_posting_rate / DAY, 0.0))

    def post_inspired(self, now: float) -> None:
        """Posts of inspired users, in their new topic (from the behaviour stream: who is inspired
        depends on what they watched, so the posting stream stays common to the rankers)."""
        total = self.inspired_cum[-1] if len(self.inspired_cum) else 0.0
        if total <= 0:
            return
        rng = self.rngs["behavior"]
        m = rng.poisson(total * self.dt * self.hour_factor(now))
        authors = np.searchsorted(self.inspired_cum, rng.random(m) * total, side="right")
        if now < 0:  # planted accounts start posting at t = 0
            authors = authors[~self.planted[authors]]
            m = len(authors)
        columns = draw_posts(self.users, authors, self.exp.world, rng)
        columns["topic"] = self.inspired_topic[authors].astype(np.int64)
        with_sound = rng.random(m) < self.exp.world.sound_share
        ids = self.add_posts(columns, now)
        self.release_sounds(ids[with_sound], now)

    def _account_styles(self) -> dict[int, tuple[float, float | None, int]]:
        """Planted accounts whose background posts have a set authenticity, quality or product."""
        products = self.world.products.names
        styles = {}
        for spec in self.exp.world.accounts:
            if spec.authenticity >= 0 or spec.quality_quantile >= 0 or spec.product:
                quality = quality_at_quantile(spec.quality_quantile) if spec.quality_quantile >= 0 else None
                product = products.index(spec.product) if spec.product else NO_ID
                styles[self.world.accounts[spec.name]] = (spec.authenticity, quality, product)
        return styles

    def release_sounds(self, posts: np.ndarray, now: float) -> np.ndarray:
        """Make each of ``posts`` the original of a new sound by its author; returns the sound ids."""
        p = self.posts
        ids = self.sounds.append(origin=posts, artist=p.author[posts], appeal=p.quality[posts],
                                 created_at=np.full(len(posts), now))
        p.cols["sound"][posts] = ids
        return ids

    def post_derivatives(self, now: float) -> None:
        """Post the queued derivatives (duets, 'use this sound') whose delay is over."""
        if not self._derivatives:
            return
        queue = {k: np.concatenate([d[k] for d in self._derivatives]) for k in self._derivatives[0]}
        due = queue["due"] < now + self.dt
        self._derivatives = [{k: v[~due] for k, v in queue.items()}] if (~due).any() else []
        if not due.any():
            return
        authors, parents = queue["author"][due], queue["parent"][due]
        if now < 0:  # planted accounts start posting at t = 0
            keep = ~self.planted[authors]
            authors, parents = authors[keep], parents[keep]
        # From the behaviour stream: derivatives answer what was watched, so they differ by ranker,
        # while the posting stream (every other post) stays common to the rankers of a replicate.
        columns = draw_posts(self.users, authors, self.exp.world, self.rngs["behavior"])
        self.derive(columns, parents)
        self.add_posts(columns, now)

    def post_scenario(self, index: int, event, now: float) -> None:  # type: ignore[no-untyped-def]
        world = self.world
        author = world.accounts[event.account]
        topic = world.topics.index(event.topic) if event.topic else int(self.users.main_topic[author])
        product = world.products.names.index(event.product) if event.product else -1
        columns = {
            "author": np.array([author]), "topic": np.array([topic]),
            "quality": np.array([quality_at_quantile(event.quality_quantile)]),
            "authenticity": np.array([event.authenticity]), "length_s": np.array([event.length_s]),
            "product": np.array([product]), "event": np.array([index]),
        }  # fmt: skip
        (post,) = self.add_posts(columns, now)
        self.posts.cols["bought_likes"][post] += event.bought_likes
        if event.sound in self.sounds.names:
            self.posts.cols["sound"][post] = self.sounds.names[event.sound]
        elif event.sound:
            (sound,) = self.release_sounds(np.array([post]), now)
            self.sounds.names[event.sound] = int(sound)
            if event.appeal_quantile >= 0:  # a song may be better (or worse) than the video it came in
                self.sounds.cols["appeal"][sound] = quality_at_quantile(event.appeal_quantile)
            self.listened = np.vstack([self.listened, np.zeros((1, self.users.n), dtype=bool)])
            self.listeners_via_artist = np.append(self.listeners_via_artist, 0)
        followers = self.state.followers_of(author)
        self.recorder.track_post(event.name, int(post), followers)

    def add_posts(self, columns: dict[str, np.ndarray], now: float) -> np.ndarray:
        authors = np.asarray(columns["author"], dtype=np.int64)
        ids = self.posts.append(**columns, created_at=np.full(len(authors), now),
                                author_followers_at_post=self.state.follower_counts[authors])
        self.state.author_posts.push(authors, ids)
        self.state.topic_posts.push(np.asarray(columns["topic"], dtype=np.int64), ids)
        for uid in self._unread:
            mine = ids[authors == uid]
            if len(mine):
                self._unread[uid] = np.concatenate([self._unread[uid], mine])
        return ids

    def serve(self, users: np.ndarray, seconds: np.ndarray, now: float) -> None:
        """Serve one tick's sessions in rounds of slates until every session's time is used
        or its feed runs out."""
        self.state.now = now
        day = int((now + self.exp.warmup_s) // DAY)
        np.add.at(self.budget_by_day[day], users, seconds.astype(np.float32))
        remaining = seconds.astype(np.float64)
        position = np.zeros(len(users), dtype=np.int32)
        active = np.arange(len(users))
        k = FIRST_SLATE
        while len(active):
            slate = self.open_sound_pages(users[active], self.rank(users[active], now, k))
            spent, served, exhausted = self.consume(users[active], slate, remaining[active], position[active], now)
            np.add.at(self.watch_by_day[day], users[active], spent.astype(np.float32))
            remaining[active] -= spent
            position[active] += served
            active = active[(remaining[active] > 0) & ~exhausted]
            if len(active):
                per_view = max(float(spent.sum()) / max(int(served.sum()), 1), 1.0)
                # Slates long enough for most remaining sessions: fewer, larger rounds.
                k = int(np.clip(np.ceil(np.quantile(remaining[active], 0.9) / per_view), 4, MAX_SLATE))

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        """The ranker's slate for ``users``, checked against the engine's rules (:func:`check_slate`)."""
        with self.ranker_call("rank()"):
            slate = self.ranker.rank(users, now, k)
        if self.check_slates:
            started = time.perf_counter()
            check_slate(slate, users, k, self.posts.author, self.state.seen, self.label)
            self.check_s += time.perf_counter() - started
        return slate

    def open_sound_pages(self, users: np.ndarray, slate: Slate) -> Slate:
        """Users who tapped a sound watch its page first: the original, then its most viewed uses
        (channel ``SOUND``), ahead of what the ranker chose.  Works the same under every ranker."""
        sound = self.sound_tapped[users]
        rows = np.flatnonzero(sound >= 0)
        if len(rows) == 0:
            return slate
        self.sound_tapped[users[rows]] = NO_ID
        page = self.sound_pages(sound[rows])
        seen = self.state.seen.contains(users[rows][:, None], np.maximum(page, 0))
        page[seen] = NO_ID
        n_page = self.exp.behavior.sound_page_posts
        opened = first_k_valid(page, np.full(page.shape, SOUND, np.int8), page >= 0, n_page)
        cand = np.concatenate([opened.post_ids, slate.post_ids[rows]], axis=1)
        channel = np.concatenate([opened.channel, slate.channel[rows]], axis=1)
        valid = (cand >= 0) & ~duplicate_in_row(cand)
        valid[:, n_page:] &= np.logical_and.accumulate(slate.post_ids[rows] >= 0, axis=1)
        merged = first_k_valid(cand, channel, valid, slate.post_ids.shape[1])
        slate.post_ids[rows] = merged.post_ids
        slate.channel[rows] = merged.channel
        return slate

    def sound_pages(self, sounds: np.ndarray) -> np.ndarray:
        """Each sound's page, shape ``(len(sounds), SOUND_PAGE_WIDTH)``: its original post, then its
        uses by views (most first); padded with -1."""
        p = self.posts
        wanted = np.unique(sounds)
        uses = np.flatnonzero(np.isin(p.sound, wanted))
        is_origin = uses == self.sounds.origin[p.sound[uses]]
        order = np.lexsort((-p.views[uses].astype(np.int64), ~is_origin, p.sound[uses]))
        uses = uses[order]
        s = p.sound[uses]
        start = np.searchsorted(s, wanted)
        count = np.searchsorted(s, wanted, side="right") - start
        which = np.searchsorted(wanted, sounds)
        col = np.arange(SOUND_PAGE_WIDTH)
        take = col[None, :] < count[which][:, None]
        index = np.minimum(start[which][:, None] + col[None, :], max(len(uses) - 1, 0))
        return np.where(take, uses[index] if len(uses) else NO_ID, NO_ID)

    def consume(self, users: np.ndarray, slate, remaining: np.ndarray, position: np.ndarray,
                now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Watch a slate: each user swipes until their session's time is used.

        Returns per user the seconds spent, the impressions served and whether
        the feed ran out.
        """
        b, k = slate.post_ids.shape
        valid = np.logical_and.accumulate(slate.post_ids >= 0, axis=1)
        posts, u = self.posts, self.users
        row, col = np.nonzero(valid)
        post = slate.post_ids[row, col]
        viewer = users[row]
        beh = self.exp.behavior
        rng = self.rngs["behavior"]
        topic = posts.topic[post].astype(np.int64)
        affinity = self.state.affinity[viewer, topic]
        polish = (1.0 - posts.authenticity[post]) * u.polish_sensitivity[viewer]
        quality = posts.quality[post]
        length = posts.length_s[post]
        fraction = behavior.watch_fraction(beh, quality, affinity, polish, length, rng)
        seconds = np.zeros((b, k))
        seconds[row, col] = behavior.watch_seconds(beh, fraction, length)
        before = np.cumsum(seconds, axis=1) - seconds
        taken = valid & (before < remaining[:, None])
        keep = taken[row, col]
        spent = (seconds * taken).sum(axis=1)
        served = taken.sum(axis=1).astype(np.int32)
        exhausted = ~valid.all(axis=1) & (served == valid.sum(axis=1))
        self.apply(viewer[keep], post[keep], slate.channel[row, col][keep], (position[row] + col)[keep],
                   fraction[keep], affinity[keep], polish[keep], quality[keep], now)
        return spent, served, exhausted

    def apply(self, viewer: np.ndarray, post: np.ndarray, channel: np.ndarray, position: np.ndarray,
              fraction: np.ndarray, affinity: np.ndarray, polish: np.ndarray, quality: np.ndarray,
              now: float) -> None:
        """Draw reactions for watched impressions and update every counter (state changes here)."""
        beh = self.exp.behavior
        rng = self.rngs["behavior"]
        posts, st = self.posts, self.state
        m = len(post)
        self.impressions += m
        author = posts.author[post].astype(np.int64)
        react = behavior.reactions(beh, fraction, quality, polish, posts.likes[post] + posts.bought_likes[post],
                                   st.follower_counts[author], rng)
        followed = self.new_follows(viewer, author, react.follow_intent)
        purchased = self.purchases(viewer, post, channel, fraction, affinity, now)
        self.sound_actions(viewer, post, channel, fraction, now)
        completed = fraction >= beh.complete_at
        cols = posts.cols
        topic = posts.topic[post].astype(np.int64)
        engaged = react.liked | react.commented | react.shared
        np.add.at(self.topic_engagement, (viewer[engaged], topic[engaged]), 1)
        np.add.at(cols["views_core"], post[self.users.main_topic[viewer] == topic], 1)
        np.add.at(cols["views"], post, 1)
        np.add.at(cols["watch_s"], post, fraction * posts.length_s[post])
        for name, mask in (("likes", react.liked), ("comments", react.commented), ("shares", react.shared),
                           ("follows", followed), ("purchases", purchased), ("completions", completed)):
            np.add.at(cols[name], post[mask], 1)
        group = channel_group(channel)
        for g, name in enumerate(("views_following", "views_reshare", "views_pool", "views_explore",
                                  "views_other")):
            np.add.at(cols[name], post[group == g], 1)
        shared = react.shared
        st.reshares.push(viewer[shared], post[shared])
        st.seen.add(viewer, post)
        feedback = Feedback(user=viewer, post=post, channel=channel, position=position,
                            watch_fraction=fraction, completed=completed, liked=react.liked,
                            commented=react.commented, shared=react.shared, followed=followed,
                            purchased=purchased)
        with self.ranker_call("observe()"):
            self.ranker.observe(feedback)
        self.recorder.impressions(feedback, now)

    def sound_actions(self, viewer: np.ndarray, post: np.ndarray, channel: np.ndarray, fraction: np.ndarray,
                      now: float) -> None:
        """Viewers of posts with a sound may make a derivative post (queued with a delay) or open
        the sound's page; listeners of named sounds are counted."""
        sound = self.posts.sound[post].astype(np.int64)
        idx = np.flatnonzero(sound >= 0)
        if len(idx) == 0:
            return
        beh, rng, u = self.exp.behavior, self.rngs["behavior"], self.users
        viewer, post, sound, fraction = viewer[idx], post[idx], sound[idx], fraction[idx]
        appeal = self.sounds.appeal[sound]
        poster = np.log(np.maximum(u.posting_rate[viewer], 1e-9) / max(self.exp.world.posting_rate_mean, 1e-9))
        z = (beh.derivative_intercept + beh.derivative_watch * fraction + beh.derivative_quality * appeal
             + beh.derivative_poster * poster)
        makes = (rng.random(len(idx)) < behavior.sigmoid(z)) & (viewer != self.posts.author[post])
        if makes.any() and beh.derivative_at_posting:
            if now < 0:  # planted accounts start at t = 0 with nothing in mind
                makes &= ~self.planted[viewer]
            self.sound_in_mind[viewer[makes]] = post[makes]  # the latest wins
        elif makes.any():
            delay = rng.exponential(beh.derivative_delay_hours * 3600.0, int(makes.sum()))
            self._derivatives.append({"due": now + delay, "author": viewer[makes], "parent": post[makes]})
        z = beh.sound_tap_intercept + beh.sound_tap_watch * fraction + beh.sound_tap_quality * appeal
        taps = (rng.random(len(idx)) < behavior.sigmoid(z)) & (channel[idx] != SOUND)
        self.sound_tapped[viewer[taps]] = sound[taps]
        if len(self.sounds.names):
            self._count_listeners(viewer, post, sound)

    def _count_listeners(self, viewer: np.ndarray, post: np.ndarray, sound: np.ndarray) -> None:
        named = np.array(sorted(self.sounds.names.values()))
        row = np.searchsorted(named, sound).clip(0, len(named) - 1)
        mine = named[row] == sound
        row, viewer, post = row[mine], viewer[mine], post[mine]
        new = ~self.listened[row, viewer]
        row, viewer, post = row[new], viewer[new], post[new]
        _, first = np.unique(row * self.users.n + viewer, return_index=True)
        row, viewer, post = row[first], viewer[first], post[first]
        self.listened[row, viewer] = True
        via_artist = self.posts.author[post] == self.sounds.artist[named[row]]
        np.add.at(self.listeners_via_artist, row[via_artist], 1)

    def new_follows(self, viewer: np.ndarray, author: np.ndarray, intent: np.ndarray) -> np.ndarray:
        """Turn follow intents into follows: not yourself, not twice, once per pair."""
        idx = np.flatnonzero(intent & (viewer != author))
        followed = np.zeros(len(viewer), dtype=bool)
        if len(idx) == 0:
            return followed
        idx = idx[~self.state.is_following(viewer[idx], author[idx])]
        _, first = np.unique(viewer[idx] * self.users.n + author[idx], return_index=True)
        idx = idx[first]
        followed[idx] = True
        self.state.add_follows(viewer[idx], author[idx])
        return followed

    def purchases(self, viewer: np.ndarray, post: np.ndarray, channel: np.ndarray, fraction: np.ndarray,
                  affinity: np.ndarray, now: float) -> np.ndarray:
        """Purchases from product posts, in impression order, limited by stock."""
        purchased = np.zeros(len(post), dtype=bool)
        product = self.posts.product[post]
        products = self.world.products
        idx = np.flatnonzero(product >= 0)
        if len(idx) == 0:
            return purchased
        idx = idx[products.inventory[product[idx]] > 0]  # in stock when this batch began
        offered = idx
        posts = self.posts
        proof = behavior.social_proof(posts.likes[post[idx]] + posts.bought_likes[post[idx]],
                                      posts.comments[post[idx]])
        intent = behavior.purchase_intent(self.exp.behavior, fraction[idx], affinity[idx], proof,
                                          self.rngs["behavior"])
        idx = idx[intent]
        sold = behavior.allocate_stock(product[idx], products.inventory)
        idx = idx[sold]
        purchased[idx] = True
        counts = np.bincount(product[idx], minlength=len(products.names))
        # Views of a product after the buyer of its last unit (batches are in arrival order) could not buy.
        for i in np.flatnonzero((counts > 0) & (counts == products.inventory)):
            last = idx[product[idx] == i].max()
            offered = offered[(product[offered] != i) | (offered <= last)]
        np.add.at(posts.cols["views_in_stock"], post[offered], 1)
        views_group = channel_group(channel[idx])  # 0 following, 1 reshare, 2 pool, 3 explore, 4 other
        group = np.select([views_group <= 1, views_group <= 3, channel[idx] == SOUND], [0, 1, 2], 3)
        np.add.at(products.sold_by_channel, (product[idx], group), 1)
        stranger = ~self.state.is_following(viewer[idx], products.seller[product[idx]])
        np.add.at(products.sold_non_follower, product[idx][stranger], 1)
        before = products.inventory.copy()
        products.inventory -= counts
        products.sold += counts
        for i in np.flatnonzero((before > 0) & (products.inventory == 0)):
            if np.isnan(products.sellout_at[i]):
                products.sellout_at[i] = now
            products.sellouts[i] += 1
            self.sellout_events[i].succeed()
        return purchased


def _choose(mix: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` draws of an index with probabilities proportional to ``mix``."""
    cum = np.cumsum(mix / mix.sum())
    return np.searchsorted(cum, rng.random(m), side="right").clip(0, len(cum) - 1)


def _shift(mix: np.ndarray, choice: np.ndarray, advantage: np.ndarray) -> np.ndarray:
    """One mix (topics or formats) after a listening creator has read some posts: each option's
    weight times ``exp(sum of the advantages of the posts made with it)``, in logs so that no
    advantage overflows.  Never quite abandons an option it has (floor 1e-3 of the total); an
    option it does not have (weight 0) stays at 0."""
    has = mix > 0
    log_w = np.full(len(mix), -np.inf)
    log_w[has] = np.log(mix[has]) + np.bincount(choice.astype(np.int64), weights=advantage,
                                                minlength=len(mix))[has]
    mix = np.exp(log_w - log_w[has].max())
    mix = mix / mix.sum()
    return np.where(has, np.maximum(mix, 1e-3), 0.0)
