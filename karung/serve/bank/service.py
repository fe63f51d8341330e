"""``BankService``: the hash bank's facade for the scoring service, the review queue and the CLI.

The names below are a contract (other areas call them); all are thread-safe.

Adding (idempotent per bank and sha256; a second add returns the first entry, ``created=False``):
    ``add_image(data, *, bank, listing_id=None, seller_id=None, source_url=None, added_by=None,
    note=None) -> AddResult`` decodes untrusted bytes (typed ``karung.vision.errors`` on bad input);
    ``add_decoded(image, sha256, *, bank, ...) -> AddResult`` for an image already decoded.
    The review queue adds and undoes confirmed images inside its decisions' transactions
    through the store (``karung.serve.review.bankbridge.StoreBankWriter``).

Matching (a :class:`~karung.serve.bank.matcher.Match` has ``entry_id, bank, kind ("sha256" |
"pdq" | "phash"), distance, listing_id, seller_id, source_url`` and ``to_dict()``):
    ``match(image, sha256) -> list[Match]``, ``match_bytes(data) -> list[Match]``,
    ``match_hashes(hashes, sha256=None)``, ``lookup_hash(kind, hex) -> list[Match]``.

Managing: ``remove(entry_id) -> Entry`` (raises ``EntryNotFound``),
``list_entries(bank=None, *, after_id=0, limit=None)``, ``banks()``, ``configure_bank(name, *,
enabled=None, pdq_threshold=None, phash_threshold=None, description=None, create=False)``,
``export_csv(out, bank=None, *, fmt="karung"|"threatexchange")``, ``import_csv(source,
bank=None, *, fmt=...) -> ImportReport``, ``rehash(sha256, image, *, every=False) -> int``
(re-hash the entries banked from that photo with the current hash version).

Sellers: ``seller_clusters() -> list[SellerCluster]`` (clusters of two or more sellers),
``links_for_seller(seller_id) -> SellerCluster``, ``record_match_event(query_sha256, seller_id,
listing_id, matches) -> int`` (the scorer calls it for every image that matched).

Replicas: ``refresh_if_changed() -> bool`` (poll it; cheap when nothing changed), ``version``,
``index_size``. Writes made through this object are visible to its own matcher at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from PIL import Image
from sqlalchemy import Engine

from karung.serve.bank import csv_io, sellers, te_csv
from karung.serve.bank.errors import MalformedCsvRow
from karung.serve.bank.matcher import Match, Matcher
from karung.serve.bank.store import AddResult, BankInfo, BankStore, Entry, MatchEvent, NewEntry
from karung.vision.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_PIXELS
from karung.vision.hashing import (
    HASH_VERSION,
    HashValue,
    ImageHashes,
    TooSmallToHash,
    compute_hashes,
    decode_for_hashing,
)

__all__ = ["AddResult", "BankService", "Entry", "ImportReport", "Match"]


@dataclass(frozen=True)
class ImportReport:
    """What a CSV import did: rows added, rows already present, malformed rows."""

    added: int
    existing: int
    errors: list[MalformedCsvRow] = field(default_factory=list)


class BankService:
    """The hash bank over an engine whose schema is migrated (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        load: bool = True,  # False: build the indexes on first match (CLI writes never do)
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    ) -> None:
        self.store = BankStore(engine)
        self.max_decode_bytes = max_decode_bytes
        self.matcher = Matcher(self.store)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        if load:
            self.matcher.load()

    # -- adding ----------------------------------------------------------------------------------

    def add_image(self, data: bytes, *, bank: str, **meta: Any) -> AddResult:
        """Decode ``data``, hash it and add it to ``bank`` (metadata: see the module docstring)."""
        return self.add_decoded(
            self._decode(data), hashlib.sha256(data).hexdigest(), bank=bank, **meta
        )

    def add_decoded(
        self,
        image: Image.Image,
        sha256: str,
        *,
        bank: str,
        listing_id: str | None = None,
        seller_id: str | None = None,
        source_url: str | None = None,
        added_by: str | None = None,
        note: str | None = None,
    ) -> AddResult:
        """Hash a decoded image and add it; ``sha256`` is that of the original bytes.

        With a ``seller_id`` the image is first matched against the bank: matches of other
        sellers' entries are recorded as match events, so a banned seller's photo banked again
        under a new account links the two accounts (mirrored or rotated copies included).
        """
        meta: dict[str, Any] = {
            "listing_id": listing_id,
            "seller_id": seller_id,
            "source_url": source_url,
            "added_by": added_by,
            "note": note,
        }
        hashes = _hashes_or_none(image)
        if hashes is None:  # a 1x1 image: its exact bytes can still be banked
            entry = NewEntry(bank, sha256, **meta)
        else:
            crops = () if hashes.stored_crop is None else (hashes.stored_crop,)
            entry = NewEntry.from_hashes(bank, sha256, hashes, crops=crops, **meta)
        earlier = self.matcher.match(hashes, sha256) if seller_id is not None else []
        result = self.store.add([entry])[0]
        others = [m for m in earlier if m.seller_id not in (None, seller_id)]
        if result.created and others:
            self.record_match_event(sha256, seller_id, listing_id, others)
        self._sync()
        return result

    # -- matching --------------------------------------------------------------------------------

    def match(self, image: Image.Image, sha256: str | None = None) -> list[Match]:
        """Bank entries matching a decoded image (``sha256`` of its bytes enables exact hits)."""
        return self.matcher.match(_hashes_or_none(image), sha256)

    def match_hashes(self, hashes: ImageHashes | None, sha256: str | None = None) -> list[Match]:
        """Bank entries matching precomputed hashes."""
        return self.matcher.match(hashes, sha256)

    def match_bytes(self, data: bytes) -> list[Match]:
        """Decode untrusted bytes and match them (typed decode errors on bad input)."""
        return self.match(self._decode(data), hashlib.sha256(data).hexdigest())

    def lookup_hash(self, kind: str, hex_value: str) -> list[Match]:
        """Entries within their bank's threshold of one hash given as hex (``MalformedHash``)."""
        return self.matcher.lookup(HashValue.from_hex(kind, hex_value))

    # -- managing --------------------------------------------------------------------------------

    def remove(self, entry_id: int) -> Entry:
        """Remove an entry (``EntryNotFound`` when there is none) and return it."""
        entry = self.store.remove(entry_id)
        self._sync()
        return entry

    def list_entries(
        self, bank: str | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[Entry]:
        """Entries in id order (of ``bank`` when given)."""
        return self.store.entries(bank, after_id=after_id, limit=limit)

    def banks(self) -> list[BankInfo]:
        """Every bank with its settings and entry count."""
        return self.store.banks()

    def configure_bank(self, name: str, **settings: Any) -> BankInfo:
        """Enable/disable a bank or set its thresholds (see :meth:`BankStore.configure_bank`)."""
        info = self.store.configure_bank(name, **settings)
        self._sync()
        return info

    def export_csv(self, out: TextIO, bank: str | None = None, *, fmt: str = "karung") -> int:
        """Write the hash list (hashes and metadata only) in karung's or ThreatExchange's
        (``fmt="threatexchange"``) layout; return the number of rows."""
        write = te_csv.write_te_csv if fmt == "threatexchange" else csv_io.write_csv
        return write(self.store.iter_entries(bank), out)

    def import_csv(
        self, source: TextIO, bank: str | None = None, *, fmt: str = "karung"
    ) -> ImportReport:
        """Add every good row of a hash list; malformed rows are reported, not fatal."""
        good: list[NewEntry] = []
        errors: list[MalformedCsvRow] = []
        read = te_csv.read_te_csv if fmt == "threatexchange" else csv_io.read_csv
        for item in read(source, bank=bank):
            (errors if isinstance(item, MalformedCsvRow) else good).append(item)  # type: ignore[arg-type]
        results = self.store.add(good)
        self._sync()
        added = sum(r.created for r in results)
        return ImportReport(added=added, existing=len(results) - added, errors=errors)

    def rehash(self, sha256: str, image: Image.Image, *, every: bool = False) -> int:
        """Re-hash the entries of every bank banked from the photo with this sha256 (its
        original bytes) with the current hash version; metadata and ids are kept.

        Entries already at the current version are left alone unless ``every``. Returns the
        number of entries updated (0 when no entry has that sha256).
        """
        entries = [
            e
            for e in self.store.entries_by_sha256(sha256)
            if every or e.hash_version != HASH_VERSION
        ]
        if not entries:
            return 0
        hashes = compute_hashes(image)
        crops = () if hashes.stored_crop is None else (hashes.stored_crop,)
        updates = [
            (e.id, NewEntry.from_hashes(e.bank, sha256, hashes, crops=crops)) for e in entries
        ]
        done = self.store.rehash(updates)
        self._sync()
        return done

    # -- sellers ---------------------------------------------------------------------------------

    def record_match_event(
        self,
        query_sha256: str,
        seller_id: str | None,
        listing_id: str | None,
        matches: Sequence[Match | dict[str, Any]],
    ) -> int:
        """Record that an image from ``seller_id`` matched these entries; return rows written."""
        events = []
        for match in matches:
            m = match if isinstance(match, Match) else Match.from_dict(match)
            events.append(
                MatchEvent(
                    query_sha256=query_sha256,
                    seller_id=seller_id,
                    listing_id=listing_id,
                    entry_id=m.entry_id,
                    bank=m.bank,
                    entry_seller_id=m.seller_id,
                    entry_listing_id=m.listing_id,
                    kind=m.kind,
                    distance=m.distance,
                )
            )
        return self.store.record_events(events)

    def seller_clusters(self) -> list[sellers.SellerCluster]:
        """Clusters of two or more sellers linked by matching images, largest first."""
        return [c for c in self._clusters() if len(c.sellers) > 1]

    def links_for_seller(self, seller_id: str) -> sellers.SellerCluster:
        """The cluster holding ``seller_id`` (just that seller, no links, when unconnected)."""
        for cluster in self._clusters():
            if seller_id in cluster.sellers:
                return cluster
        return sellers.SellerCluster((seller_id,), ())

    def _clusters(self) -> list[sellers.SellerCluster]:
        infos = self.store.banks()
        enabled = {b.name for b in infos if b.enabled}
        entries = [e for e in self.store.iter_entries() if e.bank in enabled]
        links = sellers.entry_links(entries, infos) + sellers.event_links(self.store.match_events())
        return sellers.clusters(links)

    # -- replicas --------------------------------------------------------------------------------

    def refresh_if_changed(self) -> bool:
        """Apply changes made elsewhere (other replicas, the CLI); True when something changed."""
        return self.matcher.refresh_if_changed()

    @property
    def version(self) -> int:
        """The bank version the in-memory matcher reflects."""
        return self.matcher.version

    @property
    def index_size(self) -> int:
        """Entries held in memory for matching (entries of enabled banks)."""
        return self.matcher.index_size

    def _sync(self) -> None:
        """Make this object's own writes visible to its matcher (when it has been built)."""
        if self.matcher.loaded:
            self.matcher.refresh_if_changed()

    def _decode(self, data: bytes) -> Image.Image:
        return decode_for_hashing(
            data,
            max_bytes=self.max_bytes,
            max_pixels=self.max_pixels,
            max_decode_bytes=self.max_decode_bytes,
        )


def _hashes_or_none(image: Image.Image) -> ImageHashes | None:
    """Every perceptual hash of ``image``, or None when it is too small to have any."""
    try:
        return compute_hashes(image)
    except TooSmallToHash:
        return None
