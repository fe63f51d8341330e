"""Seller linking: clusters of seller accounts connected by matching images.

Two kinds of evidence connect two sellers (union-find over seller ids):

* ``bank``: two bank entries of different sellers match each other (same sha256, or PDQ/pHash
  within the stricter of their banks' thresholds);
* ``event``: a query image from seller B matched an entry of seller A (recorded by the scoring
  service through :func:`karung.serve.bank.service.BankService.record_match_event`).

A renamed account therefore lands in one cluster with the account it replaced, and every link
names the images (entry ids, query sha256) that tie them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from karung.serve.bank.matcher import PHASH_PDQ_GUARD
from karung.serve.bank.store import BankInfo, Entry, MatchEvent
from karung.vision.hash_index import words_of
from karung.vision.hash_kinds import PDQ, PHASH, HashKindSpec
from karung.vision.hashing import MIN_PDQ_QUALITY, HashValue
from karung.vision.mih import MultiIndexHashing

# bank name -> hash kind name -> the bank's threshold for that kind
_Thresholds = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Link:
    """Evidence that two sellers are connected."""

    seller_a: str
    seller_b: str
    source: str  # "bank" | "event"
    kind: str  # "sha256" or a hash kind's name (karung.vision.hash_kinds)
    distance: int
    entry_a: int  # the bank entry of seller_a
    entry_b: int | None  # the bank entry of seller_b (source "bank")
    query_sha256: str | None  # the image seller_b uploaded (source "event")
    listing_a: str | None
    listing_b: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class SellerCluster:
    """Sellers connected by matching images, with the links that connect them."""

    sellers: tuple[str, ...]
    links: tuple[Link, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sellers": list(self.sellers),
            "size": len(self.sellers),
            "links": [link.to_dict() for link in self.links],
        }


class UnionFind:
    """Disjoint sets of strings (path halving, union by size)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._size: dict[str, int] = {}

    def find(self, item: str) -> str:
        """The representative of ``item``'s set (``item`` is added when new)."""
        self._parent.setdefault(item, item)
        self._size.setdefault(item, 1)
        while self._parent[item] != item:
            self._parent[item] = self._parent[self._parent[item]]
            item = self._parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        """Merge the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]

    def groups(self) -> list[list[str]]:
        """Every set, members sorted, largest set first."""
        out: dict[str, list[str]] = {}
        for item in self._parent:
            out.setdefault(self.find(item), []).append(item)
        return sorted((sorted(g) for g in out.values()), key=lambda g: (-len(g), g))


def entry_links(entries: Sequence[Entry], banks: Sequence[BankInfo]) -> list[Link]:
    """Links between entries of different sellers whose images match each other."""
    sold = [e for e in entries if e.seller_id is not None]
    thresholds = {b.name: {PDQ.name: b.pdq_threshold, PHASH.name: b.phash_threshold} for b in banks}
    best: dict[tuple[int, int], tuple[int, str, int]] = {}
    by_sha: dict[str, list[int]] = {}
    for i, entry in enumerate(sold):
        if entry.sha256 is not None:
            by_sha.setdefault(entry.sha256, []).append(i)
    for members in by_sha.values():
        for i in members:
            for j in members:
                if i < j:
                    best[(i, j)] = (0, "sha256", 0)
    for spec, rank in ((PDQ, 1), (PHASH, 2)):
        for (i, j), distance in _hash_pairs(sold, spec, thresholds).items():
            if (i, j) not in best or (rank, distance) < best[(i, j)][::2]:
                best[(i, j)] = (rank, spec.name, distance)
    links = []
    for (i, j), (_rank, kind, distance) in sorted(best.items()):
        a, b = sold[i], sold[j]
        if a.seller_id != b.seller_id:
            links.append(_bank_link(a, b, kind, distance))
    return links


def _hash_pairs(
    entries: Sequence[Entry], spec: HashKindSpec, thresholds: _Thresholds
) -> dict[tuple[int, int], int]:
    """``(i, j) -> distance`` (i < j) for entry pairs within the stricter bank threshold."""
    if spec is PDQ:  # PDQ hashes of different versions are never compared
        pairs: dict[tuple[int, int], int] = {}
        for version in sorted({e.hash_version for e in entries}):
            subset = {i for i, e in enumerate(entries) if e.hash_version == version}
            pairs.update(_pairs_among(entries, spec, thresholds, subset))
        return pairs
    return _pairs_among(entries, spec, thresholds, set(range(len(entries))))


def _pairs_among(
    entries: Sequence[Entry],
    spec: HashKindSpec,
    thresholds: _Thresholds,
    members: set[int],
) -> dict[tuple[int, int], int]:
    keys, values = [], []
    for i, entry in enumerate(entries):
        if i not in members:
            continue
        for variant, value in enumerate(_hashes_of(entry, spec)):
            if value is not None:
                keys.append(i * 2 + variant)
                values.append(value)
    if not values:
        return {}
    index = MultiIndexHashing.build(np.array(keys), words_of(values), spec.bits)
    pairs: dict[tuple[int, int], int] = {}
    for key, value in zip(keys, values, strict=True):
        i = key // 2
        radius = _threshold(thresholds, entries[i].bank, spec)
        for other, distance in index.search(value, radius):
            j = other // 2
            limit = min(radius, _threshold(thresholds, entries[j].bank, spec))
            pair = (min(i, j), max(i, j))
            if i == j or distance > limit or distance >= pairs.get(pair, spec.bits + 1):
                continue
            if spec is PDQ or _pdq_agrees(entries[i], entries[j], distance, limit):
                pairs[pair] = distance
    return pairs


def _pdq_agrees(a: Entry, b: Entry, distance: int, limit: int) -> bool:
    """The matcher's PDQ guard of a pHash hit (:data:`PHASH_PDQ_GUARD`), between two entries."""
    mine = [h for h in _hashes_of(a, PDQ) if h is not None]
    theirs = [h for h in _hashes_of(b, PDQ) if h is not None]
    if not mine or not theirs or a.hash_version != b.hash_version:
        return distance <= limit // 2
    return min(x.distance(y) for x in mine for y in theirs) <= PHASH_PDQ_GUARD


def _threshold(thresholds: _Thresholds, bank: str, spec: HashKindSpec) -> int:
    """A bank's threshold for ``spec`` (the kind's default for a bank not listed)."""
    return thresholds.get(bank, {}).get(spec.name, spec.default_threshold)


def _hashes_of(entry: Entry, spec: HashKindSpec) -> tuple[HashValue | None, HashValue | None]:
    """An entry's plain and trimmed hash of ``spec`` (PDQ of usable quality only)."""
    if spec is PHASH:
        return entry.phash, entry.trim_phash
    plain = entry.pdq if (entry.pdq_quality or 0) >= MIN_PDQ_QUALITY else None
    trim = entry.trim_pdq if (entry.trim_pdq_quality or 0) >= MIN_PDQ_QUALITY else None
    return plain, trim


def _bank_link(a: Entry, b: Entry, kind: str, distance: int) -> Link:
    return Link(
        seller_a=str(a.seller_id),
        seller_b=str(b.seller_id),
        source="bank",
        kind=kind,
        distance=distance,
        entry_a=a.id,
        entry_b=b.id,
        query_sha256=None,
        listing_a=a.listing_id,
        listing_b=b.listing_id,
    )


def event_links(events: Iterable[MatchEvent]) -> list[Link]:
    """Links from recorded match events between two different, known sellers."""
    links = []
    for event in events:
        if event.seller_id is None or event.entry_seller_id is None:
            continue
        if event.seller_id == event.entry_seller_id:
            continue
        links.append(
            Link(
                seller_a=event.entry_seller_id,
                seller_b=event.seller_id,
                source="event",
                kind=event.kind,
                distance=event.distance,
                entry_a=event.entry_id,
                entry_b=None,
                query_sha256=event.query_sha256,
                listing_a=event.entry_listing_id,
                listing_b=event.listing_id,
            )
        )
    return links


def clusters(links: Iterable[Link], sellers: Iterable[str] = ()) -> list[SellerCluster]:
    """Group sellers by the links between them; ``sellers`` adds unlinked singletons."""
    uf = UnionFind()
    all_links = list(links)
    for seller in sellers:
        uf.find(seller)
    for link in all_links:
        uf.union(link.seller_a, link.seller_b)
    by_root: dict[str, list[Link]] = {}
    for link in all_links:
        by_root.setdefault(uf.find(link.seller_a), []).append(link)
    return [
        SellerCluster(tuple(group), tuple(by_root.get(uf.find(group[0]), [])))
        for group in uf.groups()
    ]
