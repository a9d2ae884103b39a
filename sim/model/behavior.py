"""The response model: pure, vectorised functions of arrays and a Generator.

For one impression of a post to a user: affinity (the user's interest in the
post's topic relative to their main topic, in [0, 1]) and the post's latent
quality, polish (1 - authenticity) and length set a watch fraction; the watch
fraction, quality and polish then set the chance of a like, comment, share,
follow and purchase through logistic links whose coefficients are the named
fields of :class:`sim.config.BehaviorConfig`.

Every function takes arrays of shape ``(m,)`` (one entry per impression) and
returns arrays of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import BehaviorConfig


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic link 1 / (1 + exp(-z)), elementwise: a probability, same shape as ``z``."""
    return 1.0 / (1.0 + np.exp(-z))


def watch_fraction(b: BehaviorConfig, quality: np.ndarray, affinity: np.ndarray, polish_penalty: np.ndarray,
                   length_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Share of the post watched, in (0, 1).

    Parameters
    ----------
    b : BehaviorConfig
        The ``watch_*`` coefficients.
    quality : (m,) float
        The post's latent quality (standard normal over posts).
    affinity : (m,) float
        The viewer's interest in the post's topic relative to their main topic, in [0, 1].
    polish_penalty : (m,) float
        (1 - authenticity) x the viewer's polish sensitivity.
    length_s : (m,) float
        The post's length (s).
    rng : Generator
        The ``behavior`` stream.

    Returns
    -------
    (m,) float32
    """
    z = (b.watch_intercept + b.watch_quality * quality + b.watch_affinity * affinity
         - b.watch_polish * polish_penalty - b.watch_length * np.log2(length_s / 30.0)
         + rng.normal(0.0, b.watch_noise, len(quality)))
    return sigmoid(z).astype(np.float32)


def watch_seconds(b: BehaviorConfig, fraction: np.ndarray, length_s: np.ndarray) -> np.ndarray:
    """Time each impression takes (s): the watched part plus the swipe, shape ``(m,)``.

    ``fraction`` is the share watched, ``length_s`` the post's length (s); both shape ``(m,)``.
    """
    return fraction * length_s + b.swipe_seconds


@dataclass(frozen=True)
class Reactions:
    """Boolean reactions per impression, each shape ``(m,)``."""

    liked: np.ndarray
    commented: np.ndarray
    shared: np.ndarray
    follow_intent: np.ndarray  # wants to follow (engine drops it if already following)


def reactions(b: BehaviorConfig, fraction: np.ndarray, quality: np.ndarray, polish_penalty: np.ndarray,
              like_proof: np.ndarray, follow_proof: np.ndarray, rng: np.random.Generator) -> Reactions:
    """Like, comment, share and follow draws for impressions watched to ``fraction``.

    Follow is the rarest and strongest signal, then share, comment and like.
    What users see of a post (its like count, bought likes included) and of its
    author (follower count, bought followers included) nudges likes and
    follows: social proof, read against the counts the viewer's feed showed
    lately (:func:`shown_proof`).

    Parameters
    ----------
    b : BehaviorConfig
        The ``like_*``, ``comment_*``, ``share_*`` and ``follow_*`` coefficients.
    fraction : (m,) float
        Share of the post watched, in (0, 1).
    quality, polish_penalty : (m,) float
        As for :func:`watch_fraction`.
    like_proof, follow_proof : (m,) float
        The post's like count and its author's follower count as viewers see them, each as
        log1p(count) less the viewer's reference (:func:`shown_proof`).
    rng : Generator
        The ``behavior`` stream.

    Returns
    -------
    Reactions
        Four bool arrays of shape ``(m,)``.
    """
    m = len(fraction)
    u = rng.random((4, m))
    polish = b.engagement_polish_scale * b.like_polish * polish_penalty
    like = (b.like_intercept + b.like_watch * fraction + b.like_quality * quality - b.like_polish * polish_penalty
            + b.like_social_proof * like_proof)
    comment = b.comment_intercept + b.comment_watch * fraction + b.comment_quality * quality - polish
    share = b.share_intercept + b.share_watch * fraction + b.share_quality * quality - polish
    follow = (b.follow_intercept + b.follow_watch * fraction + b.follow_quality * quality - polish
              + b.follow_social_proof * follow_proof)
    return Reactions(
        liked=u[0] < sigmoid(like),
        commented=u[1] < sigmoid(comment),
        shared=u[2] < sigmoid(share),
        follow_intent=u[3] < sigmoid(follow),
    )


def shown_proof(b: BehaviorConfig, shown: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A shown count as social proof: ``log1p(shown)`` less ``proof_reference`` times the viewer's
    ``reference`` (the mean log1p of the counts their feed showed lately; NaN before any, read as
    this count itself).  Shapes ``(m,)``; returns float64."""
    shown_log = np.log1p(shown.astype(np.float64))
    reference = np.where(np.isnan(reference), shown_log, reference)
    return shown_log - b.proof_reference * reference


def social_proof(likes: np.ndarray, comments: np.ndarray) -> np.ndarray:
    """What a viewer sees of a post's reception: log1p(likes + 5 x comments).

    ``likes`` and ``comments`` are counts of shape ``(m,)``; returns float64 of shape ``(m,)``.
    """
    return np.log1p(likes.astype(np.float64) + 5.0 * comments)


def purchase_intent(b: BehaviorConfig, fraction: np.ndarray, affinity: np.ndarray, proof: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Whether a viewer of a product post wants to buy, shape ``(m,)`` bool.

    Stock is not checked here: :func:`allocate_stock` serves intents in order.

    Parameters
    ----------
    b : BehaviorConfig
        The ``purchase_*`` coefficients.
    fraction, affinity : (m,) float
        Share watched and topic affinity, each in [0, 1].
    proof : (m,) float
        :func:`social_proof` of the post.
    rng : Generator
        The ``behavior`` stream.
    """
    z = (b.purchase_intercept + b.purchase_watch * fraction + b.purchase_affinity * affinity
         + b.purchase_social_proof * proof)
    return rng.random(len(fraction)) < sigmoid(z)


def allocate_stock(product: np.ndarray, inventory: np.ndarray) -> np.ndarray:
    """Serve purchase intents in order until each product's stock runs out.

    Parameters
    ----------
    product : (m,) int
        Product id of each intent, in the order the buyers arrived.
    inventory : (n_products,) int
        Units left before these intents.

    Returns
    -------
    (m,) bool
        True where the intent became a sale.  Sales per product never exceed
        its inventory, so stock never goes negative.
    """
    if len(product) == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(product, kind="stable")
    sorted_product = product[order]
    starts = np.searchsorted(sorted_product, sorted_product, side="left")
    rank_in_product = np.arange(len(product)) - starts
    sold = np.empty(len(product), dtype=bool)
    sold[order] = rank_in_product < inventory[sorted_product]
    return sold
