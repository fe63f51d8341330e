"""Seller links: accounts tied together by shared known-bad photos."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from karung.serve.deps import BankDep, BankReadScope

router = APIRouter(prefix="/v1/sellers", tags=["sellers"])


@router.get("/{seller_id}/links")
async def seller_links(seller_id: str, _: BankReadScope, bank: BankDep) -> dict[str, Any]:
    """Sellers linked to ``seller_id`` by the same or near-identical photos, with the evidence.

    Links come from bank entries of different sellers that match each other and from scored
    uploads that matched another seller's bank entry.
    """
    cluster = await run_in_threadpool(bank.links_for_seller, seller_id)
    data = cluster.to_dict()
    return {
        "seller_id": seller_id,
        "linked_sellers": [s for s in cluster.sellers if s != seller_id],
        "cluster_size": data["size"],
        "links": data["links"],
    }


@router.get("", include_in_schema=True)
async def seller_clusters(_: BankReadScope, bank: BankDep) -> dict[str, Any]:
    """Every cluster of two or more linked sellers, largest first."""
    clusters = await run_in_threadpool(bank.seller_clusters)
    return {"clusters": [c.to_dict() for c in clusters]}
