"""One simulation on a SimPy clock.  The only module that imports simpy.

Processes say what happens in simulated time; the vectorised work lives in the mechanisms'
modules (:mod:`~sim.engine.posting`, :mod:`~sim.engine.serving`, ...), plain functions of their
state, the arrays they read and a random stream.  Time is in seconds; the clock starts at
``-warmup_s`` so that t = 0 is the end of the warm-up and scenario times read naturally.
Sessions starting inside one tick window are served as one batch; every event in a window sees
the state as of the window's start.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import simpy

from sim.config import Experiment, PostEvent, RankerSpec
from sim.engine import commerce, inspiration, listening, posting, serving, sounds
from sim.engine.arrivals import Arrivals, draw_sessions
from sim.engine.inspiration import INSPIRE_HOURS
from sim.engine.platform import build_platform
from sim.model.rng import streams
from sim.model.state import PlatformState
from sim.model.world import Posts, Sounds, Users, World, build_world
from sim.rankers import Feedback, Ranker, resolve_ranker
from sim.rankers.base import Slate
from sim.rankers.contract import RankerError, check_slate
from sim.recording import Recorder

MERGE_FOLLOWS_HOURS = 6.0  # how often new follows reach follower feeds

#: What a SimPy process yields to: timeouts and sell-outs.
Process = Generator[simpy.Event, Any, None]


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
        self.replicate = replicate
        self.check_slates = check_slates
        self.check_s = 0.0  # wall seconds spent checking slates
        self.wall_s = 0.0
        self._stop: Callable[[], bool] | None = None
        self.rngs = streams(exp.seed, replicate)
        world = world if world is not None else build_world(exp, self.rngs["world"])
        self.env = simpy.Environment(initial_time=-exp.warmup_s)
        self.platform = build_platform(exp, world)
        with self.ranker_call("its constructor"):
            self.ranker: Ranker = resolve_ranker(spec.name)(spec.params, self.rngs["ranker"])
        self.recorder = Recorder(exp, self.label, replicate, world, self.posts, run_id or f"{self.label}-r{replicate}")
        n_users = world.users.n
        self.arrivals = Arrivals()
        self.posting = posting.new_posting(exp, world, self.planted)
        self.serving = serving.new_serving(exp, world.users)
        self.sound_state = sounds.new_sound_state(n_users)
        self.commerce = commerce.Commerce()
        self.listening = listening.new_listening(exp, world)
        self.inspiration = inspiration.new_inspiration(n_users, len(world.topics))
        self.reactors = serving.Reactors(self.sound_state, self.commerce, self.inspiration)
        self.sellout_events = [self.env.event() for _ in world.products.names]

    # ------------------------------------------------------------------ what the recorder and tests read

    @property
    def world(self) -> World:
        return self.platform.world

    @property
    def users(self) -> Users:
        return self.platform.users

    @property
    def posts(self) -> Posts:
        return self.platform.posts

    @property
    def state(self) -> PlatformState:
        return self.platform.state

    @property
    def planted(self) -> np.ndarray:
        return self.platform.planted

    @property
    def sounds(self) -> Sounds:
        return self.sound_state.sounds

    @property
    def listened(self) -> np.ndarray:
        return self.sound_state.listened

    @property
    def listeners_via_artist(self) -> np.ndarray:
        return self.sound_state.listeners_via_artist

    @property
    def format_mix(self) -> dict[int, np.ndarray]:
        return self.listening.format_mix

    @property
    def inspired_topic(self) -> np.ndarray:
        return self.inspiration.inspired_topic

    @property
    def budget_by_day(self) -> np.ndarray:
        return self.serving.budget_by_day

    @property
    def watch_by_day(self) -> np.ndarray:
        return self.serving.watch_by_day

    @property
    def impressions(self) -> int:
        return self.serving.impressions

    # ------------------------------------------------------------------ the ranker

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

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        """The ranker's slate for ``users``, checked against the engine's rules (:func:`check_slate`)."""
        with self.ranker_call("rank()"):
            slate = self.ranker.rank(users, now, k)
        if self.check_slates:
            started = time.perf_counter()
            check_slate(slate, users, k, self.posts.author, self.state.seen, self.label)
            self.check_s += time.perf_counter() - started
        return slate

    def observe(self, feedback: Feedback, now: float) -> None:
        """Tell the ranker, then the recorder, what a round's viewers watched and did."""
        with self.ranker_call("observe()"):
            self.ranker.observe(feedback)
        self.recorder.impressions(feedback, now)

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
        env.process(self.background_posts())
        for i, event in enumerate(self.exp.events):
            env.process(self.scenario_post(i, event))
        env.process(self.reviews())
        env.process(self.sessions())
        env.process(self.snapshots())
        env.process(self.follow_merges())
        env.process(self.inspirations())
        for i in range(len(self.sellout_events)):
            env.process(self.sellout(i))
        env.run(until=self.exp.horizon_s)
        self.wall_s = time.perf_counter() - started
        self.recorder.finish(self)
        return self.recorder

    def tick(self) -> simpy.Timeout:
        """Wait for the next tick window."""
        return self.env.timeout(self.exp.tick_seconds)

    def stop_checks(self, stop: Callable[[], bool]) -> Process:
        """Raise :class:`RunStopped` at the first tick at which ``stop()`` is true."""
        while not stop():
            yield self.tick()
        raise RunStopped(f"stopped at t = {self.env.now / 3600.0:,.2f} h")

    def background_posts(self) -> Process:
        """Background posts (creators post at their heavy-tailed rates), posts of inspired users,
        and derivative posts whose delay is over."""
        p, behaviour = self.platform, self.rngs["behavior"]
        while True:
            now = self.env.now
            posting.post_background(self.posting, p, self.listening, self.sound_state, now, self.rngs["posting"])
            inspired = inspiration.draw_inspired_posts(self.inspiration, p, now, behaviour)
            if inspired is not None:
                posting.publish(p, self.listening, self.sound_state, *inspired, now)
            derivatives = sounds.due_derivatives(self.sound_state, p, now, behaviour)
            if derivatives is not None:
                posting.add_posts(p, self.listening, derivatives, now)
            yield self.tick()

    def scenario_post(self, index: int, event: PostEvent) -> Process:
        """A scheduled scenario post: a given account posts a given post at a given time."""
        yield self.env.timeout(event.at_hours * 3600.0 - self.env.now)
        self.post_scenario(index, event, self.env.now)

    def post_scenario(self, index: int, event: PostEvent, now: float) -> None:
        """Post the ``index``-th scenario event and track it with its author's followers."""
        post = posting.post_scenario(self.platform, self.listening, self.sound_state, index, event, now)
        followers = self.state.followers_of(self.world.accounts[event.account])
        self.recorder.track_post(event.name, post, followers)

    def reviews(self) -> Process:
        """The ranker's periodic review (traffic-pool promotion decisions)."""
        while True:
            with self.ranker_call("review()"):
                decisions = self.ranker.review(self.env.now)
            if decisions is not None:
                self.recorder.promotions(decisions, self.env.now)
            yield self.tick()

    def sessions(self) -> Process:
        """Sessions starting in each tick window, served as one batch; products that sold out
        meanwhile announce it."""
        while True:
            now = self.env.now
            users, seconds = draw_sessions(self.arrivals, self.platform, now, self.rngs["arrivals"])
            serving.serve(self.serving, self.platform, self.reactors, self.rank, self.observe, users, seconds, now,
                          self.rngs["behavior"])
            for product in commerce.take_sold_out(self.commerce):
                self.sellout_events[product].succeed()
            yield self.tick()

    def snapshots(self) -> Process:
        """Hourly snapshots of tracked posts, accounts and products."""
        while True:
            self.recorder.snapshot(self, self.env.now)
            yield self.env.timeout(self.exp.recording.snapshot_hours * 3600.0)

    def inspirations(self) -> Process:
        """Every few hours, users who engaged enough with a topic may start posting in it."""
        while True:
            yield self.env.timeout(INSPIRE_HOURS * 3600.0)
            inspiration.inspire(self.inspiration, self.platform, self.env.now, self.rngs["behavior"])

    def follow_merges(self) -> Process:
        """New follows reach follower feeds when the append buffer is merged."""
        while True:
            yield self.env.timeout(MERGE_FOLLOWS_HOURS * 3600.0)
            self.state.merge_follows()

    def sellout(self, product: int) -> Process:
        """Wait for a product's stock to run out, record when, and restock it if it is restocked."""
        products = self.world.products
        while True:
            yield self.sellout_events[product]
            self.recorder.sellout(product, self.env.now)
            if products.restock_units[product] <= 0:
                return
            yield self.env.timeout(products.restock_s[product])
            self.sellout_events[product] = self.env.event()
            commerce.restock(products, product)
