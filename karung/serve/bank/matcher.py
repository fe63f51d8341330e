"""In-memory matching against the bank: sha256 exact, then PDQ, then pHash.

Only numbers live in memory (:class:`karung.serve.bank.bank_state.BankState`): multi-index-hashing
indexes (PDQ of hash version 2, PDQ of version 1, pHash, the pHash of each entry's centre crop),
the centre crops' PDQ for lookups, a sorted array of sha256 prefixes and the set of indexed entry
ids, under keys that pack entry id, bank code and variant.

A query brings its own partial images (:mod:`karung.vision.variants`): their pHashes are
searched among the centre crops, and a hit counts when the two PDQ hashes agree too
(:data:`CROP_PDQ_GUARD`); that finds cropped, captioned and slightly rotated re-uploads while an
entry costs a few hashes. Hashes of different versions (:data:`karung.vision.hashing.HASH_VERSION`)
are never compared: version-1 entries are searched with the query's reference PDQ hashes.

Metadata (listing, seller, URL) is read from the database only for the entries that matched,
which also drops matches of entries removed since the last refresh.

Following changes: :meth:`Matcher.refresh_if_changed` polls the store's version; entry adds and
removals are applied as deltas from the change log, a bank setting change reloads everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from karung.serve.bank.bank_state import (
    PLAIN,
    TRIMMED,
    Banks,
    BankState,
    key_bank,
    key_entry,
    make_key,
    sha_prefix,
)
from karung.serve.bank.store import BankStore, Change, Entry
from karung.serve.verdict import Match as Match  # the type lives with the verdict it travels in
from karung.serve.verdict import MatchKind as MatchKind
from karung.vision import mih_kernel
from karung.vision.hash_index import popcount_rows, words_of
from karung.vision.hash_kinds import PDQ, PHASH
from karung.vision.hashing import MIN_PDQ_QUALITY, HashValue, ImageHashes
from karung.vision.mih import Found, MultiIndexHashing
from karung.vision.together import search_together

KIND_RANK: Final[dict[str, int]] = {"sha256": 0, PDQ.name: 1, PHASH.name: 2}
# More changes than this since the last refresh: a full reload is cheaper than the deltas.
MAX_DELTA: Final = 50_000
# pHash alone confuses look-alike product photos (a dark garment laid flat on a light floor): on
# the CC0 garment photos 1.2% of unrelated photos came within 10 bits of some banked photo.
# So a pHash hit counts only when PDQ agrees loosely (those look-alikes were all >= 78 PDQ bits
# away, edited copies that PDQ alone misses sit at 30..60), or, when either side has no usable
# PDQ, when the pHash distance is within half the bank's threshold.
PHASH_PDQ_GUARD: Final = 64
# A partial image's pHash hit on an entry's centre crop: the partial's (version-2) PDQ must be
# within this of the crop's. Measured on the CC0 photos (200 originals, 1,000 distractors, 16
# partials each: 3.2 million pairs): no unrelated pair came closer than 70 PDQ bits, while 64
# instead of 56 lifts 10% crops from 0.89 to 0.93 (docs/HASHING.md). A query without usable
# PDQ has no partials, so it never matches a crop by pHash.
CROP_PDQ_GUARD: Final = 64
# The far pHash band: a plain or trimmed pHash hit up to this many bits beyond the bank's
# threshold still counts when PDQ agrees within FAR_PHASH_PDQ_GUARD. A caption plus a watermark
# pushes a few re-uploads to pHash 12-14 with PDQ 32-56, past both thresholds; unrelated photos
# came no closer than 58 PDQ bits to a plain banked hash (docs/HASHING.md), so the stricter PDQ
# guard pays for the wider pHash radius. Crop variants get no far band (more chances to collide).
PHASH_FAR_BAND: Final = 4
FAR_PHASH_PDQ_GUARD: Final = 56


# entry id -> (kind rank, distance, bank code): the best way each entry matched
_Best = dict[int, tuple[int, int, int]]


@dataclass(frozen=True)
class _Search:
    """One index search of a query image and what to do with its hits."""

    index: MultiIndexHashing
    queries: np.ndarray
    radius: int
    offer: Callable[[Found], None]


def _run(searches: Sequence[_Search | None]) -> None:
    """Run a query image's searches at once (sharing two cores on large indexes,
    :func:`~karung.vision.together.search_together`), then hand each its hits."""
    todo = [s for s in searches if s is not None]
    found = search_together([(s.index, s.queries, s.radius) for s in todo])
    for search, hits in zip(todo, found, strict=True):
        search.offer(hits)


class Matcher:
    """Match hashes against the bank (thread-safe; refreshed by polling the version)."""

    def __init__(self, store: BankStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._state: BankState | None = None

    @property
    def version(self) -> int:
        """The bank version this matcher reflects (-1 before the first load)."""
        return self._state.version if self._state is not None else -1

    @property
    def loaded(self) -> bool:
        """Whether the in-memory indexes have been built."""
        return self._state is not None

    @property
    def index_size(self) -> int:
        """Number of entries held in memory (entries of enabled banks)."""
        return len(self._state.live) if self._state is not None else 0

    @property
    def index_nbytes(self) -> int:
        """Bytes held by the hash indexes and look-up stores (0 before the first load)."""
        state = self._state
        return 0 if state is None else sum(ix.nbytes() for ix in state.indexes())

    @property
    def index_hashes(self) -> int:
        """Hashes held in memory (every variant of every entry, searched or looked up)."""
        state = self._state
        return 0 if state is None else sum(len(ix) for ix in state.indexes())

    def load(self) -> None:
        """(Re)build everything from the store."""
        with self._refresh_lock:
            self._load()

    def refresh_if_changed(self) -> bool:
        """Catch up with the store when its version moved; return whether anything changed."""
        with self._refresh_lock:
            if self._state is None:
                self._load()
                return True
            version = self.store.version()
            if version == self._state.version:
                return False
            changes = self.store.changes_since(self._state.version)
            if len(changes) > MAX_DELTA or any(c.op == "bank" for c in changes):
                self._load()
            else:
                self._apply(changes, version)
            return True

    def match(self, hashes: ImageHashes | None, sha256: str | None = None) -> list[Match]:
        """Entries matching an image: by sha256, PDQ (8 dihedral variants, of each hash
        version), pHash (as it is and mirrored back), or a partial image against an entry's
        centre crop (an image too small for perceptual hashes, ``hashes`` None, matches by
        sha256 only)."""
        state = self._ensure()
        best: _Best = {}
        with self._lock:
            if sha256 is not None:
                for key in state.sha.lookup(sha_prefix(sha256)):
                    _offer(best, state, key, "sha256", 0)
            if hashes is not None:
                query = _Query.of(hashes)
                _run(
                    [
                        self._pdq_search(state, best, state.pdq, query.pdq),
                        self._pdq_search(state, best, state.pdq_ref, query.pdq_ref),
                        self._phash_search(state, best, query),
                        self._phash_search(state, best, query, mirrored=True),
                        self._crop_search(state, best, query),
                    ]
                )
        return self._resolve(best, sha256)

    def lookup(self, value: HashValue) -> list[Match]:
        """Entries whose stored hash is within their bank's threshold of ``value``.

        A lone PDQ hash carries no version, so it is compared with the stored hashes of both.
        A lone pHash has no PDQ to pass the guard with, so it must lie within half the threshold.
        """
        state = self._ensure()
        best: _Best = {}
        words = value.to_words().reshape(1, -1)
        with self._lock:
            if value.kind == PDQ.name:
                _run(
                    [
                        self._pdq_search(state, best, state.pdq, words),
                        self._pdq_search(state, best, state.pdq_ref, words),
                    ]
                )
            else:
                _run([self._phash_search(state, best, _Query(phash=words))])
        return self._resolve(best, None)

    def _pdq_search(
        self, state: BankState, best: _Best, index: MultiIndexHashing, queries: np.ndarray | None
    ) -> _Search | None:
        """Offer every entry whose PDQ (in ``index``) is within its bank's PDQ threshold."""
        radius = state.banks.radius(PDQ.name)
        if radius < 0 or queries is None or not len(index):
            return None

        def offer(found: Found) -> None:
            _which, keys, dists = found
            for key, distance in zip(keys.tolist(), dists.tolist(), strict=True):
                if distance <= state.banks.pdq[key_bank(key)]:
                    _offer(best, state, key, PDQ.name, distance)

        return _Search(index, queries, radius, offer)

    def _phash_search(
        self, state: BankState, best: _Best, query: _Query, *, mirrored: bool = False
    ) -> _Search | None:
        """Plain and trimmed pHash hits that pass the PDQ guard (far band included), or with
        ``mirrored`` those of the query's pHashes mirrored back (no far band: a mirrored copy
        must come within the threshold)."""
        radius = state.banks.radius(PHASH.name)
        words = query.phash_mirrored if mirrored else query.phash
        if radius < 0 or words is None or not len(state.phash):
            return None
        usable_pdq = query.pdq is not None or query.pdq_ref is not None
        extra = PHASH_FAR_BAND if usable_pdq and not mirrored else 0

        def offer(found: Found) -> None:
            _which, keys, dists = found
            for key, distance in zip(keys.tolist(), dists.tolist(), strict=True):
                limit = int(state.banks.phash[key_bank(key)])
                if distance <= limit + extra and _pdq_agrees(state, key, query, distance, limit):
                    _offer(best, state, key, PHASH.name, distance)

        return _Search(state.phash, words, radius + extra, offer)

    def _crop_search(self, state: BankState, best: _Best, query: _Query) -> _Search | None:
        """A partial image's pHash within the threshold of an entry's centre crop, with the
        two PDQ hashes within :data:`CROP_PDQ_GUARD`."""
        radius = state.banks.radius(PHASH.name)
        partial_pdq = query.crop_pdq
        if radius < 0 or query.crop_phash is None or partial_pdq is None:
            return None
        if not len(state.crop_phash):
            return None

        def offer(found: Found) -> None:
            which, keys, dists = found
            rows = zip(which.tolist(), keys.tolist(), dists.tolist(), strict=True)
            for row, key, distance in rows:
                if distance > state.banks.phash[key_bank(key)]:
                    continue
                stored = state.crop_pdq.get(key)
                if stored is None:
                    continue
                pdq_distance = int(popcount_rows((stored ^ partial_pdq[row]).reshape(1, -1))[0])
                if pdq_distance <= CROP_PDQ_GUARD:
                    _offer(best, state, key, PHASH.name, distance)

        return _Search(state.crop_phash, query.crop_phash, radius, offer)

    def _resolve(self, best: _Best, sha256: str | None) -> list[Match]:
        """Attach metadata from the database; drop entries that are gone or sha256 collisions."""
        if not best:
            return []
        entries = self.store.get_many(list(best))
        out: list[Match] = []
        for entry_id, (rank, distance, _code) in best.items():
            entry = entries.get(entry_id)
            if entry is None:
                continue
            if rank == KIND_RANK["sha256"] and entry.sha256 != sha256:
                continue
            out.append(_to_match(entry, rank, distance))
        out.sort(key=lambda m: (KIND_RANK[m.kind], m.distance, m.entry_id))
        return out

    def _ensure(self) -> BankState:
        state = self._state
        if state is None:
            with self._refresh_lock:
                state = self._state or self._load()
        return state

    def _load(self) -> BankState:
        version = self.store.version()  # read first: changes racing the load are re-applied
        banks = Banks.from_store(self.store)
        state = BankState.build(banks, version, self.store.index_rows())
        mih_kernel.warm()
        with self._lock:
            self._state = state
        return state

    def _apply(self, changes: Sequence[Change], version: int) -> None:
        state = self._ensure()
        removed = [c for c in changes if c.op == "remove" and c.entry_id is not None]
        added = {c.entry_id for c in changes if c.op == "add" and c.entry_id is not None}
        rows = self.store.index_rows_by_id(sorted(added))  # rows removed meanwhile are absent
        with self._lock:
            for change in removed:
                state.remove(int(change.entry_id or 0), change.bank)
            state.add_rows(rows)
            state.version = max([version, *(c.version for c in changes)])


@dataclass(frozen=True)
class _Query:
    """A query image's hashes as index words: PDQ of each version (dihedral variants of the
    image and its trimmed content, usable quality only), pHash (and mirrored), and the partial
    images."""

    pdq: np.ndarray | None = None
    pdq_ref: np.ndarray | None = None
    phash: np.ndarray | None = None
    phash_mirrored: np.ndarray | None = None
    crop_phash: np.ndarray | None = None
    crop_pdq: np.ndarray | None = None

    @classmethod
    def of(cls, hashes: ImageHashes) -> _Query:
        """The words of every hash of ``hashes``."""
        variants = hashes.variants()
        pdq = [v for h in variants if h.pdq_usable for v in h.pdq_dihedral]
        ref = [
            v
            for h in variants
            if h.reference is not None and h.reference[1] >= MIN_PDQ_QUALITY
            for v in h.reference[0]
        ]
        # A border trimmed into the photo's own background leaves a cropped photo: the
        # trimmed content's partials find it as they find any crop.
        crops = [c for h in variants for c in h.partials]
        return cls(
            pdq=_stack(pdq),
            pdq_ref=_stack(ref),
            phash=_stack([h.phash for h in variants]),
            phash_mirrored=_stack([h.phash_mirrored for h in variants if h.phash_mirrored]),
            crop_phash=_stack([c.phash for c in crops]),
            crop_pdq=_stack([c.pdq for c in crops]),
        )


def _stack(values: list[HashValue]) -> np.ndarray | None:
    return words_of(values) if values else None


def _pdq_agrees(state: BankState, key: int, query: _Query, distance: int, limit: int) -> bool:
    """The PDQ guard of a plain or trimmed pHash hit (:data:`PHASH_PDQ_GUARD`, and
    :data:`FAR_PHASH_PDQ_GUARD` for hits in the far band beyond ``limit``): the query's PDQ
    hashes against the entry's, of the same hash version only."""
    entry, code = key_entry(key), key_bank(key)
    far = distance > limit
    best: int | None = None
    for index, guard in ((state.pdq, query.pdq), (state.pdq_ref, query.pdq_ref)):
        stored = [index.get(make_key(entry, code, variant)) for variant in (PLAIN, TRIMMED)]
        words = [w for w in stored if w is not None]  # only PDQ of usable quality is indexed
        if guard is None or not words:
            continue
        pairs = guard[:, None, :] ^ np.stack(words)[None]
        closest = int(popcount_rows(pairs.reshape(-1, guard.shape[1])).min())
        best = closest if best is None else min(best, closest)
    if best is None:  # no PDQ of a common version: pHash alone, within half the threshold
        return not far and distance <= limit // 2
    return best <= (FAR_PHASH_PDQ_GUARD if far else PHASH_PDQ_GUARD)


def _offer(best: _Best, state: BankState, key: int, kind: str, distance: int) -> None:
    entry_id = key_entry(key)
    if entry_id not in state.live:
        return
    candidate = (KIND_RANK[kind], distance, key_bank(key))
    current = best.get(entry_id)
    if current is None or candidate[:2] < current[:2]:
        best[entry_id] = candidate


def _to_match(entry: Entry, rank: int, distance: int) -> Match:
    kinds: tuple[MatchKind, ...] = ("sha256", "pdq", "phash")
    kind = kinds[rank]
    return Match(
        entry_id=entry.id,
        bank=entry.bank,
        kind=kind,
        distance=distance,
        listing_id=entry.listing_id,
        seller_id=entry.seller_id,
        source_url=entry.source_url,
    )
