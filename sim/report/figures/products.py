"""Products: units in stock over time, with sell-out times."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sim.analysis import tables
from sim.report import headlines
from sim.report.figures.style import Context, draw_bands, empty, finish, new_figure, styled


def inventory(timeseries: pa.Table, ctx: Context, sellouts: dict[str, dict[str, float]] | None = None,
              name: str = "inventory") -> str:
    """Units in stock of each product over time, per ranker, with sell-out times marked (one panel
    per product, at most four); returns the headline, about the first two products.

    ``sellouts`` (product -> run_id -> hours from the end of warm-up) gives exact
    sell-out times where known; otherwise the first snapshot with no stock is used."""
    with styled():
        ts_inv = tables.series(timeseries, "product", "inventory")
        ts_sold = tables.series(timeseries, "product", "sold")
        entities = list(dict.fromkeys(map(str, tables.column(ts_inv, "entity"))))[:4] or ["(no product)"]
        fig, axes = new_figure(1, len(entities))
        facts: list[str] = []
        drew_sellout, drew_bands = False, False
        for ax, entity in zip(axes[0], entities, strict=True):
            run_ids: dict[str, list[str]] = {}
            curves = tables.entity_curves(ts_inv, entity, run_ids)
            if not curves:
                empty(ax, "no products in this experiment")
                continue
            sold = tables.entity_curves(ts_sold, entity)
            draw_bands(ax, curves, ctx)
            drew_bands |= any(len(cs) > 1 for cs in curves.values())
            stock = tables.starting_stock(curves, sold)
            ax.axhline(0, color="#444444", linewidth=1)
            exact = (sellouts or {}).get(entity, {})
            per = [(lb, *tables.ranker_sellout(curves[lb], run_ids[lb], exact, sold.get(lb, [])))
                   for lb in ctx.ordered(list(curves))]
            drew_sellout |= _mark_sellouts(ax, per, stock, ctx)
            if len(entities) > 1:
                ax.set_title(entity.replace("_", " "))
            ax.set_xlabel("Hours since the end of warm-up (h)")
            ax.set_ylabel("Units in stock")
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=-0.03 * max(stock, 1), top=max(stock, 1) * 1.08)
            ax.legend(loc="lower left")
            if per:
                end = max((float(np.max(x)) for cs in curves.values() for x, _ in cs), default=float("nan"))
                facts.append(headlines.inventory(entity, stock, per, end))
        title = "; ".join(facts[:2]) if facts else "Inventory of products"
        return finish(fig, ctx, name, title, inventory_note(drew_bands, drew_sellout))


def _mark_sellouts(ax: Any, per: list[tuple[str, float, int, int, float]], stock: float, ctx: Context) -> bool:
    """A dashed line at each ranker's median sell-out time; whether any ranker sold out."""
    marked = False
    for lb, median_h, done, runs, _ in per:
        if done:
            marked = True
            ax.axvline(median_h, color=ctx.color(lb), linestyle="--", linewidth=1.5)
            ax.annotate(f"{lb}: sold out at {median_h:.1f} h\n({done} of {runs} runs)", (median_h, stock),
                        xytext=(5, -5), textcoords="offset points", va="top", fontsize=11, color=ctx.color(lb))
    return marked


def inventory_note(bands: bool, sellout: bool) -> str:
    """What the inventory figure draws, and only that."""
    note = "Lines: median across replicates" + ("; bands: min–max" if bands else "")
    return note + ("; dashed: median sell-out time over the runs that sold out." if sellout else
                   ". No run sold out, so no sell-out line.")
