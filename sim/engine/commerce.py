"""Products: purchases from product posts, limited by stock; sell-outs and restocks.

Stock and sales live on the world's :class:`~sim.model.world.Products` (one entry per product).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.engine.platform import Platform
from sim.model import behavior
from sim.model.world import SALES_CHANNELS, Products
from sim.rankers.base import SOUND, channel_group


@dataclass
class Commerce:
    """Sell-outs not yet announced.

    Attributes
    ----------
    sold_out : list of int
        Products whose stock ran out in this tick, in the order it happened; the wiring takes them
        (:func:`take_sold_out`) and wakes each product's sell-out process.
    """

    sold_out: list[int] = field(default_factory=list)


def take_sold_out(commerce: Commerce) -> list[int]:
    """The products that sold out since the last call, in order."""
    sold_out, commerce.sold_out = commerce.sold_out, []
    return sold_out


def purchases(commerce: Commerce, platform: Platform, viewer: np.ndarray, post: np.ndarray, channel: np.ndarray,
              fraction: np.ndarray, affinity: np.ndarray, now: float, rng: np.random.Generator) -> np.ndarray:
    """Purchases from product posts, in impression order, limited by stock.

    All arrays have shape ``(m,)``, one entry per watched impression in arrival order; returns
    whether each bought, shape ``(m,)`` bool."""
    posts, products = platform.posts, platform.world.products
    purchased = np.zeros(len(post), dtype=bool)
    product = posts.product[post]
    idx = np.flatnonzero(product >= 0)
    if len(idx) == 0:
        return purchased
    idx = idx[products.inventory[product[idx]] > 0]  # in stock when this batch began
    offered = idx
    proof = behavior.social_proof(posts.likes[post[idx]] + posts.bought_likes[post[idx]], posts.comments[post[idx]])
    intent = behavior.purchase_intent(platform.exp.behavior, fraction[idx], affinity[idx], proof, rng)
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
    np.add.at(products.sold_by_channel, (product[idx], sales_channel(channel[idx])), 1)
    stranger = ~platform.state.is_following(viewer[idx], products.seller[product[idx]])
    np.add.at(products.sold_non_follower, product[idx][stranger], 1)
    _sell(commerce, products, counts, now)
    return purchased


def sales_channel(channel: np.ndarray) -> np.ndarray:
    """Each impression's column of ``Products.sold_by_channel`` (an index into :data:`SALES_CHANNELS`),
    shape ``(m,)``, from its ranker channel, shape ``(m,)``."""
    group = channel_group(channel)  # 0 following, 1 reshare, 2 pool, 3 explore, 4 other
    column = [SALES_CHANNELS.index(name) for name in ("following", "for_you", "sound")]
    return np.select([group <= 1, group <= 3, channel == SOUND], column, SALES_CHANNELS.index("other"))


def _sell(commerce: Commerce, products: Products, counts: np.ndarray, now: float) -> None:
    """Take ``counts`` units (shape ``(n_products,)``) off the stock; note the products that ran out."""
    before = products.inventory.copy()
    products.inventory -= counts
    products.sold += counts
    for i in np.flatnonzero((before > 0) & (products.inventory == 0)):
        if np.isnan(products.sellout_at[i]):
            products.sellout_at[i] = now
        products.sellouts[i] += 1
        commerce.sold_out.append(int(i))


def restock(products: Products, product: int) -> None:
    """Refill a sold-out product with its restock units."""
    products.inventory[product] += products.restock_units[product]
    products.restocks[product] += 1
