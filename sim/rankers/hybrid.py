"""The hybrid ranker: ``alpha`` of the feed from the content ranker, the rest from the follower ranker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.params import knob
from sim.rankers.base import Feedback, PoolDecisions, Ranker, Slate, duplicate_in_row, first_k_valid, register
from sim.rankers.content import ContentParams, ContentRanker
from sim.rankers.follower import FollowerParams, FollowerRanker

if TYPE_CHECKING:
    from sim.model.state import PlatformState


@dataclass(frozen=True)
class HybridParams:
    alpha: float = knob(0.5, "share of slots from the content ranker (0 = follower feed, 1 = For You)",
                        lo=0, hi=1)
    follower_order: str = knob("chronological", "order of the follower part",
                               choices=("chronological", "engagement"))


@register
class HybridRanker(Ranker):
    """Interleaves a content and a follower slate: slot by slot, the content ranker's next post
    with probability ``alpha``; when one side runs out the other fills in.  Traffic pools are the
    content ranker's, with its default parameters.
    """

    name = "hybrid"
    Params = HybridParams

    def start(self, state: PlatformState) -> None:
        super().start(state)
        content_rng, follower_rng = self.rng.spawn(2)
        self.content = ContentRanker(ContentParams(), content_rng)
        self.follower = FollowerRanker(FollowerParams(order=self.params.follower_order), follower_rng)
        self.content.start(state)
        self.follower.start(state)

    def review(self, now: float) -> PoolDecisions | None:
        return self.content.review(now)

    def rank(self, users: np.ndarray, now: float, k: int) -> Slate:
        alpha = self.params.alpha
        b = len(users)
        parts = []
        for slate, share in ((self.content.rank(users, now, k) if alpha > 0 else Slate.empty(b, k), alpha),
                             (self.follower.rank(users, now, k) if alpha < 1 else Slate.empty(b, k), 1 - alpha)):
            # Item i of a side sorts at (i + U) / share: a side supplies about ``share`` of the slots.
            with np.errstate(divide="ignore"):
                key = (np.arange(k)[None, :] + self.rng.random((b, k))) / share
            parts.append((slate, np.where(slate.post_ids >= 0, key, np.inf)))
        post_ids = np.hstack([s.post_ids for s, _ in parts])
        channel = np.hstack([s.channel for s, _ in parts])
        order = np.argsort(np.hstack([key for _, key in parts]), axis=1, kind="stable")
        post_ids = np.take_along_axis(post_ids, order, axis=1)
        channel = np.take_along_axis(channel, order, axis=1)
        valid = post_ids >= 0
        valid &= ~duplicate_in_row(post_ids)
        return first_k_valid(post_ids, channel, valid, k)

    def observe(self, feedback: Feedback) -> None:
        self.content.observe(feedback)
