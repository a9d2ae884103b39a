"""The follower ranker on hand-built tiny worlds, with exact expected slates.

World: user 0 follows users 1 and 2; nobody follows user 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from conftest import add_posts, hand_state, hand_world

from sim.model.state import PlatformState
from sim.rankers.base import FOLLOWING, RESHARE
from sim.rankers.follower import FollowerParams, FollowerRanker

HOUR = 3600.0
VIEWER = np.array([0])


def follower_state(edges: tuple[tuple[int, int], ...] = ((0, 1), (0, 2))) -> PlatformState:
    return hand_state(hand_world(4, edges))


def ranker(state: PlatformState, **params: Any) -> FollowerRanker:
    r = FollowerRanker(FollowerParams(**params), np.random.default_rng(0))
    r.start(state)
    return r


def test_feed_shows_followed_posts_newest_first_padded() -> None:
    st = follower_state()
    old1, p2, unfollowed, new1 = add_posts(st, [1, 2, 3, 1], [-3 * HOUR, -2 * HOUR, -1.5 * HOUR, -1 * HOUR])
    slate = ranker(st).rank(VIEWER, 0.0, 6)
    assert slate.post_ids.tolist() == [[new1, p2, old1, -1, -1, -1]]
    assert slate.channel[0, :3].tolist() == [FOLLOWING] * 3
    assert unfollowed not in slate.post_ids


def test_slate_is_cut_at_k_keeping_the_newest() -> None:
    st = follower_state()
    ids = add_posts(st, [1, 2, 1, 2, 1], [-5 * HOUR, -4 * HOUR, -3 * HOUR, -2 * HOUR, -1 * HOUR])
    slate = ranker(st).rank(VIEWER, 0.0, 2)
    assert slate.post_ids.tolist() == [[ids[4], ids[3]]]


def test_unfollowed_author_never_appears() -> None:
    st = follower_state()
    add_posts(st, [3] * 6, -np.arange(1, 7) * 600.0)
    slate = ranker(st).rank(VIEWER, 0.0, 8)
    assert (slate.post_ids == -1).all()


def test_user_without_followees_gets_an_empty_feed() -> None:
    st = follower_state()
    add_posts(st, [0, 1, 2, 3], -600.0)
    slate = ranker(st).rank(np.array([3]), 0.0, 4)
    assert slate.post_ids.tolist() == [[-1, -1, -1, -1]]


def test_each_user_in_a_batch_gets_their_own_followees() -> None:
    st = follower_state(((0, 1), (3, 2), (2, 1), (2, 3)))
    p1, p2, p3 = add_posts(st, [1, 2, 3], [-3 * HOUR, -2 * HOUR, -1 * HOUR])
    slate = ranker(st).rank(np.array([0, 3, 2, 1]), 0.0, 3)
    assert slate.post_ids.tolist() == [[p1, -1, -1], [p2, -1, -1], [p3, p1, -1], [-1, -1, -1]]


def test_post_reshared_by_followee_appears_as_reshare() -> None:
    st = follower_state()
    (stranger_post,) = add_posts(st, [3], -HOUR)
    st.reshares.push(np.array([2]), np.array([stranger_post]))
    slate = ranker(st).rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[stranger_post, -1, -1]]
    assert slate.channel[0, 0] == RESHARE


def test_reshares_can_be_switched_off() -> None:
    st = follower_state()
    (stranger_post,) = add_posts(st, [3], -HOUR)
    st.reshares.push(np.array([2]), np.array([stranger_post]))
    slate = ranker(st, reshares=False).rank(VIEWER, 0.0, 3)
    assert (slate.post_ids == -1).all()


def test_post_both_posted_and_reshared_by_followees_appears_once_as_following() -> None:
    st = follower_state()
    (post,) = add_posts(st, [1], -HOUR)
    st.reshares.push(np.array([2]), np.array([post]))
    slate = ranker(st).rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[post, -1, -1]]
    assert slate.channel[0, 0] == FOLLOWING


def test_own_post_reshared_by_followee_is_not_shown() -> None:
    st = follower_state()
    (own,) = add_posts(st, [0], -HOUR)
    st.reshares.push(np.array([1]), np.array([own]))
    slate = ranker(st).rank(VIEWER, 0.0, 3)
    assert (slate.post_ids == -1).all()


def test_seen_posts_are_not_shown_again() -> None:
    st = follower_state()
    a, b, c = add_posts(st, [1, 2, 1], [-3 * HOUR, -2 * HOUR, -1 * HOUR])
    st.seen.add(np.array([0, 0]), np.array([c, a]))
    slate = ranker(st).rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[b, -1, -1]]


def test_seen_by_one_user_does_not_hide_it_from_another() -> None:
    st = follower_state(((0, 1), (2, 1)))
    (post,) = add_posts(st, [1], -HOUR)
    st.seen.add(np.array([0]), np.array([post]))
    slate = ranker(st).rank(np.array([0, 2]), 0.0, 2)
    assert slate.post_ids.tolist() == [[-1, -1], [post, -1]]


def test_posts_older_than_lookback_are_not_shown() -> None:
    st = follower_state()
    stale, fresh = add_posts(st, [1, 2], [-5 * HOUR, -1 * HOUR])
    slate = ranker(st, lookback_hours=2.0).rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[fresh, -1, -1]]
    # The same post comes back into view if the lookback covers it.
    slate = ranker(st, lookback_hours=6.0).rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[fresh, stale, -1]]


def test_lookback_is_measured_from_now() -> None:
    st = follower_state()
    (post,) = add_posts(st, [1], 0.0)
    r = ranker(st, lookback_hours=1.0)
    assert r.rank(VIEWER, 0.5 * HOUR, 1).post_ids.tolist() == [[post]]
    assert r.rank(VIEWER, 1.5 * HOUR, 1).post_ids.tolist() == [[-1]]


def test_engagement_order_ranks_by_likes() -> None:
    st = follower_state()
    ids = add_posts(st, [1, 2, 1, 2], [-4 * HOUR, -3 * HOUR, -2 * HOUR, -1 * HOUR])
    st.posts.cols["likes"][ids] = [7, 50, 0, 3]
    slate = ranker(st, order="engagement").rank(VIEWER, 0.0, 5)
    assert slate.post_ids.tolist() == [[ids[1], ids[0], ids[3], ids[2], -1]]
    chrono = ranker(st).rank(VIEWER, 0.0, 5)
    assert chrono.post_ids.tolist() == [[ids[3], ids[2], ids[1], ids[0], -1]]


def test_engagement_order_breaks_ties_newest_first() -> None:
    st = follower_state()
    ids = add_posts(st, [1, 2, 1], [-3 * HOUR, -2 * HOUR, -1 * HOUR])
    st.posts.cols["likes"][ids] = [5, 5, 5]
    slate = ranker(st, order="engagement").rank(VIEWER, 0.0, 3)
    assert slate.post_ids.tolist() == [[ids[2], ids[1], ids[0]]]


def test_only_the_latest_ring_of_each_account_is_a_candidate() -> None:
    st = follower_state(((0, 1),))
    n = st.AUTHOR_RING + 3
    ids = add_posts(st, [1] * n, -HOUR + np.arange(n))
    slate = ranker(st).rank(VIEWER, 0.0, n)
    expected = list(ids[::-1][: st.AUTHOR_RING]) + [-1] * 3
    assert slate.post_ids.tolist() == [expected]


def test_new_follow_reaches_the_feed_when_merged() -> None:
    st = follower_state()
    (post,) = add_posts(st, [3], -HOUR)
    r = ranker(st)
    st.add_follows(np.array([0]), np.array([3]))
    assert st.is_following(np.array([0]), np.array([3])).tolist() == [True]
    assert r.rank(VIEWER, 0.0, 2).post_ids.tolist() == [[-1, -1]]  # still in the append buffer
    st.merge_follows()  # the engine merges between ticks: the next tick's feed sees the follow
    assert r.rank(VIEWER, 60.0, 2).post_ids.tolist() == [[post, -1]]
    assert st.follower_counts[3] == 1
