"""The engine's slate rules (sim.rankers.contract): each rule on a hand-made slate, and in a run."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from conftest import make_experiment

from sim.config import Experiment
from sim.engine import Simulation
from sim.model.state import SeenFilter
from sim.rankers.base import EXPLORE, POOL, Feedback, Ranker, Slate
from sim.rankers.baselines import RandomRanker
from sim.rankers.contract import RULES, RankerError, SlateError, check_slate

AUTHOR = np.array([0, 1, 2, 3, 4, 5, 6, 7], dtype=np.int32)  # post p is by user p


def check(ids: Sequence[Sequence[int]], channel: Sequence[Sequence[int]] | None = None,
          users: Sequence[int] = (10, 11), seen: Sequence[tuple[int, int]] = ()) -> None:
    post_ids = np.asarray(ids, dtype=np.int64)
    codes = np.full(post_ids.shape, EXPLORE, np.int8) if channel is None else np.asarray(channel, dtype=np.int8)
    bloom = SeenFilter(np.full(12, 50.0))
    if seen:
        viewers, posts = np.array(seen, dtype=np.int64).T
        bloom.add(viewers, posts)
    check_slate(Slate(post_ids, codes), np.asarray(users, dtype=np.int64), post_ids.shape[1], AUTHOR, bloom, "mine")


def breach(**kwargs: Any) -> SlateError:
    with pytest.raises(SlateError) as info:
        check(**kwargs)
    return info.value


def test_a_good_slate_passes() -> None:
    check([[1, 2, -1], [3, POOL - 10, -1]], channel=[[0, POOL + 2, 0], [1, 4, 0]], seen=[(10, 3), (11, 1)])


def test_each_rule_names_the_ranker_the_rule_and_an_example() -> None:
    cases: dict[str, dict[str, Any]] = {
        "shape": dict(ids=[[1, 2]], users=(10, 11)),
        "id range": dict(ids=[[1, -2], [2, 3]]),
        "channel": dict(ids=[[1, 2], [3, -1]], channel=[[0, 0], [99, 0]]),
        "own post": dict(ids=[[1, 2], [3, -1]], users=(10, 3)),
        "duplicate": dict(ids=[[1, 2, 1], [3, -1, -1]]),
        "seen": dict(ids=[[1, 2], [3, 4]], seen=[(11, 4)]),
    }
    examples = {"id range": (10, -2), "channel": (11, 3), "own post": (3, 3), "duplicate": (10, 1), "seen": (11, 4)}
    for rule, kwargs in cases.items():
        err = breach(**kwargs)
        assert (err.label, err.rule) == ("mine", rule)
        assert f"ranker 'mine' broke the slate rule '{rule}'" in str(err)
        if rule in examples:
            assert (err.user, err.post) == examples[rule]
            assert f"(e.g. user {examples[rule][0]}, post {examples[rule][1]})" in str(err)
    assert set(cases) | {"dtype"} == set(RULES)


def test_post_id_past_the_last_post_and_negative_channel_codes() -> None:
    assert breach(ids=[[1, 8], [2, 3]]).rule == "id range"
    assert breach(ids=[[1, 2], [2, 3]], channel=[[0, -1], [0, 0]]).post == 2
    assert breach(ids=[[1, 2], [2, 3]], channel=[[0, 5], [0, 0]]).rule == "channel"


def test_dtypes() -> None:
    bloom = SeenFilter(np.full(12, 50.0))
    ids = np.array([[1, 2]], dtype=np.int32)
    with pytest.raises(SlateError, match="post_ids must be int64 and channel int8, got int32 and int8"):
        check_slate(Slate(ids, np.zeros((1, 2), np.int8)), np.array([10]), 2, AUTHOR, bloom, "x")
    with pytest.raises(SlateError, match="got int64 and int64"):
        check_slate(Slate(ids.astype(np.int64), np.zeros((1, 2), np.int64)), np.array([10]), 2, AUTHOR, bloom, "x")


def test_padding_never_counts_as_a_duplicate_and_channel_of_padding_is_free() -> None:
    check([[1, -1, -1], [-1, -1, -1]], channel=[[0, 99, -7], [99, 99, 99]])


def test_seen_is_what_the_platform_reports() -> None:
    """"Seen" is the seen filter's answer: every post served is caught, and so is a post the
    filter reports without it having been served (a false positive the platform treats as seen);
    a post it does not report passes."""
    bloom = SeenFilter(np.full(2, 0.0), min_words=1)  # one word per user: crowded
    bloom.add(np.zeros(40, np.int64), np.arange(100, 140))
    author = np.full(2000, 1, dtype=np.int32)
    candidates = np.arange(200, 2000)
    reported = bloom.contains(np.zeros(len(candidates), np.int64), candidates)
    false_positive, unseen = candidates[reported], candidates[~reported]
    assert len(false_positive) > 0, "the crowded filter has false positives"

    def slate(*posts: int) -> Slate:
        ids = np.array([posts], dtype=np.int64)
        return Slate(ids, np.zeros(ids.shape, np.int8))

    check_slate(slate(*unseen[:5]), np.array([0]), 5, author, bloom, "x")
    for post in (117, int(false_positive[0])):
        with pytest.raises(SlateError, match=rf"'seen'.*user 0, post {post}\)"):
            check_slate(slate(*unseen[:4], post), np.array([0]), 5, author, bloom, "x")


# --------------------------------------------------------------------------- in a run


class Repeats(RandomRanker):
    """Shows every user post 0 (by user 0) first, every round."""

    name = "repeats-test"

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        slate = super().rank(users, now, k)
        assert self.state is not None
        if len(self.state.posts):
            slate.post_ids[:, 0] = 0
        return slate


class Raises(RandomRanker):
    name = "raises-test"
    raised: type[BaseException] = SystemExit
    where = "rank"

    def __init__(self, params: Any, rng: np.random.Generator) -> None:
        if self.where == "init":
            raise self.raised(3)
        super().__init__(params, rng)

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        if self.where == "rank":
            raise self.raised(3)
        return super().rank(users, now, k)

    def observe(self, feedback: Feedback) -> None:
        if self.where == "observe":
            raise self.raised("from observe")


@pytest.fixture(scope="module")
def tiny() -> Experiment:
    return make_experiment({"world": {"users": 800}, "horizon_days": 0.03, "warmup_hours": 0.5,
                            "rankers": [{"name": "random"}]})


def simulation(exp: Experiment, cls: type[Ranker], label: str = "mine") -> Simulation:
    from sim import rankers

    spec = exp.rankers[0]
    rankers.base.RANKERS[cls.name] = cls
    try:
        return Simulation(exp, type(spec)(name=cls.name, label=label, params=spec.params), 0)
    finally:
        del rankers.base.RANKERS[cls.name]


def test_a_ranker_that_repeats_a_post_fails_its_run(tiny: Experiment) -> None:
    sim = simulation(tiny, Repeats)
    with pytest.raises(SlateError) as info:
        sim.run()
    assert info.value.label == "mine" and info.value.rule in ("seen", "own post", "duplicate")
    assert info.value.post == 0


@pytest.mark.parametrize("where", ["init", "rank", "observe"])
@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_exit_or_interrupt_from_a_ranker_fails_its_run_naming_it(tiny: Experiment, where: str,
                                                                 raised: type[BaseException]) -> None:
    cls = type("R", (Raises,), {"where": where, "raised": raised})
    # As under the runner's serial executor: SIGINT has the batch's handler, which stops the batch by ``stop``.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        with pytest.raises(RankerError, match=rf"ranker 'mine' \(raises-test\): .* raised {raised.__name__}") as info:
            simulation(tiny, cls).run(stop=lambda: False)
    finally:
        signal.signal(signal.SIGINT, previous)
    causes, cause = [], info.value.__cause__
    while cause is not None:  # SimPy re-raises a process's exception with the original as its cause
        causes.append(cause)
        cause = cause.__cause__
    assert any(isinstance(c, raised) for c in causes)


def test_keyboard_interrupt_while_the_batch_stops_stays_an_interrupt(tiny: Experiment) -> None:
    stopping: list[bool] = []

    class SecondCtrlC(RandomRanker):
        """As the serial executor sees it: Ctrl-C set the stop flag, a second one lands in the ranker."""

        name = "second-ctrl-c-test"

        def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
            stopping.append(True)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulation(tiny, SecondCtrlC).run(stop=lambda: bool(stopping))


def test_keyboard_interrupt_without_stop_is_the_users_under_the_default_handler(tiny: Experiment) -> None:
    """Without a ``stop``: under Python's own SIGINT handler a Ctrl-C is indistinguishable and stays one;
    with SIGINT ignored (a pool worker) the interrupt can only be the ranker's."""
    cls = type("R", (Raises,), {"where": "rank", "raised": KeyboardInterrupt})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            simulation(tiny, cls).run()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with pytest.raises(RankerError):
            simulation(tiny, cls).run()
    finally:
        signal.signal(signal.SIGINT, previous)
