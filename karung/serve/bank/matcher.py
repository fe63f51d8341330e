"""In-memory matching against the bank: sha256 exact, then PDQ, then pHash.

Only numbers live in memory: multi-index-hashing indexes (PDQ of hash version 2, PDQ of version
1, pHash, the pHash of each entry's centre crop), the centre crops' PDQ for lookups, a sorted
array of sha256 prefixes and the set of indexed entry ids. An index key packs the entry id, its
bank (a small code, for the per-bank thresholds) and the variant (0 plain, 1 border-trimmed,
2 the centre crop of :mod:`karung.vision.crops`) into one int64::

    key = entry_id << 21 | bank_code << 5 | variant

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

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from karung.serve.bank.store import BankStore, Change, Entry, IndexRow
from karung.serve.verdict import Match as Match  # the type lives with the verdict it travels in
from karung.serve.verdict import MatchKind as MatchKind
from karung.vision.crops import decode_crops
from karung.vision.hash_index import HashIndexError, WordStore, popcount_rows, words_of
from karung.vision.hashing import HASH_VERSION, MIN_PDQ_QUALITY, HashValue, ImageHashes
from karung.vision.mih import MultiIndexHashing

KIND_RANK: Final[dict[str, int]] = {"sha256": 0, "pdq": 1, "phash": 2}
_BANK_BITS: Final = 16
_VARIANT_BITS: Final = 5  # 0 plain, 1 trimmed, 2 the centre crop (room for more)
_ENTRY_SHIFT: Final = _BANK_BITS + _VARIANT_BITS
PLAIN, TRIMMED, CROP = 0, 1, 2
FIRST_CROP: Final = CROP
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


def make_key(entry_id: int, bank_code: int, variant: int) -> int:
    """Pack an index key (see the module docstring)."""
    return (entry_id << _ENTRY_SHIFT) | (bank_code << _VARIANT_BITS) | variant


def key_entry(key: int) -> int:
    """The entry id of an index key."""
    return key >> _ENTRY_SHIFT


def key_bank(key: int) -> int:
    """The bank code of an index key."""
    return (key >> _VARIANT_BITS) & ((1 << _BANK_BITS) - 1)


def key_variant(key: int) -> int:
    """The variant of an index key (0 plain, 1 trimmed, 2.. crops)."""
    return key & ((1 << _VARIANT_BITS) - 1)


def sha_prefix(sha256: str) -> int:
    """The first 64 bits of a hex sha256 as a signed int64 (the sorted-array key)."""
    return int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)


class _ShaMap:
    """sha256 prefix -> index keys: a sorted array plus a small dict of recent additions.

    Removed entries are not taken out; the matcher filters keys by its set of live entries and
    confirms the full sha256 against the database.
    """

    def __init__(self, prefixes: np.ndarray, keys: np.ndarray) -> None:
        order = np.argsort(prefixes, kind="stable")
        self._prefixes, self._keys = prefixes[order], keys[order]
        self._recent: dict[int, list[int]] = {}

    def add(self, prefix: int, key: int) -> None:
        """Map ``prefix`` to one more key."""
        self._recent.setdefault(prefix, []).append(key)

    def lookup(self, prefix: int) -> list[int]:
        """Every key stored under ``prefix``."""
        lo = int(np.searchsorted(self._prefixes, prefix, side="left"))
        hi = int(np.searchsorted(self._prefixes, prefix, side="right"))
        return [int(k) for k in self._keys[lo:hi]] + self._recent.get(prefix, [])


@dataclass
class _Banks:
    """Bank name <-> code and the thresholds of enabled banks by code."""

    names: list[str]
    codes: dict[str, int]
    pdq: np.ndarray
    phash: np.ndarray
    enabled: np.ndarray

    @classmethod
    def from_store(cls, store: BankStore) -> _Banks:
        """Codes are positions in the store's name-ordered bank list."""
        infos = store.banks()
        if len(infos) >= 1 << _BANK_BITS:
            raise ValueError(f"at most {(1 << _BANK_BITS) - 1} banks are supported")
        return cls(
            names=[b.name for b in infos],
            codes={b.name: i for i, b in enumerate(infos)},
            pdq=np.array([b.pdq_threshold for b in infos], dtype=np.int64),
            phash=np.array([b.phash_threshold for b in infos], dtype=np.int64),
            enabled=np.array([b.enabled for b in infos], dtype=bool),
        )

    def code(self, name: str) -> int | None:
        """The code of bank ``name`` (None for a bank created after this load)."""
        return self.codes.get(name)

    def radius(self, kind: str) -> int:
        """The widest threshold of ``kind`` among enabled banks (-1: no bank enabled)."""
        thresholds = self.pdq if kind == "pdq" else self.phash
        live = thresholds[self.enabled]
        return int(live.max()) if live.size else -1


class _State:
    """Everything one version of the bank holds in memory.

    ``pdq`` holds version-2 PDQ hashes (plain and trimmed), ``pdq_ref`` version-1 (reference)
    ones, so the two are never compared; ``phash`` the plain and trimmed pHashes of every
    entry; ``crop_phash`` and ``crop_pdq`` the centre crop of version-2 entries (its PDQ is
    only looked up, to check a pHash hit on the crop).
    """

    def __init__(self, banks: _Banks, version: int) -> None:
        self.banks = banks
        self.version = version
        self.pdq = MultiIndexHashing(256)
        self.pdq_ref = MultiIndexHashing(256)
        self.phash = MultiIndexHashing(64)
        self.crop_phash = MultiIndexHashing(64)
        self.crop_pdq = WordStore(256)
        self.sha = _ShaMap(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.live: set[int] = set()

    def indexes(self) -> tuple[MultiIndexHashing | WordStore, ...]:
        """Every hash container, in :data:`_COLUMNS` order."""
        return (self.pdq, self.pdq_ref, self.phash, self.crop_phash, self.crop_pdq)

    @classmethod
    def build(cls, banks: _Banks, version: int, rows: Iterable[IndexRow]) -> _State:
        """Index every row of an enabled bank in one go."""
        state = cls(banks, version)
        cols = _new_columns()
        for row in rows:
            state._collect(row, cols)
        for name, (keys, hexes, nbits) in zip(_COLUMNS, _pairs(cols), strict=True):
            if keys:
                words = _words(hexes, nbits // 64)
                if name == "crop_pdq":
                    state.crop_pdq.add(keys, words)
                else:
                    setattr(state, name, MultiIndexHashing.build(keys, words, nbits))
        state.sha = _ShaMap(np.array(cols["sp"], dtype=np.int64), np.array(cols["sk"], np.int64))
        return state

    def add_rows(self, rows: Iterable[IndexRow]) -> None:
        """Index rows added since the load (rows already indexed are skipped)."""
        cols = _new_columns()
        for row in rows:
            if row.id not in self.live:
                self._collect(row, cols)
        for index, (keys, hexes, nbits) in zip(self.indexes(), _pairs(cols), strict=True):
            if keys:
                index.add(keys, _words(hexes, nbits // 64))
        for prefix, key in zip(cols["sp"], cols["sk"], strict=True):
            self.sha.add(prefix, key)

    def remove(self, entry_id: int, bank: str) -> None:
        """Forget an entry (a no-op when it is not indexed)."""
        code = self.banks.code(bank)
        if entry_id not in self.live or code is None:
            return
        self.live.discard(entry_id)
        for variant in (PLAIN, TRIMMED, CROP):
            key = make_key(entry_id, code, variant)
            for index in self.indexes():
                # That variant or kind may never have been indexed (no hash, low quality).
                with contextlib.suppress(HashIndexError):
                    index.remove(key)

    def _collect(self, row: IndexRow, cols: dict[str, list[Any]]) -> None:
        code = self.banks.code(row.bank)
        if code is None or not self.banks.enabled[code]:
            return
        self.live.add(row.id)
        current = row.hash_version == HASH_VERSION
        pdq_col = "p" if current else "r"
        pairs = (
            (row.pdq, row.pdq_quality, row.phash),
            (row.trim_pdq, row.trim_pdq_quality, row.trim_phash),
        )
        for variant, (pdq, quality, phash) in enumerate(pairs):
            key = make_key(row.id, code, variant)
            if pdq is not None and (quality or 0) >= MIN_PDQ_QUALITY:
                cols[pdq_col + "k"].append(key)
                cols[pdq_col + "w"].append(pdq)
            if phash is not None:
                cols["hk"].append(key)
                cols["hw"].append(phash)
        # Version-1 entries stored a grid of crops of a PDQ of that version: not comparable
        # with the query's partial images, so unused until the entry is re-hashed.
        crops = decode_crops(row.crop_hashes) if current else ()
        if crops:
            key = make_key(row.id, code, CROP)
            cols["ck"].append(key)
            cols["cw"].append(crops[0].phash.hex())
            cols["dk"].append(key)
            cols["dw"].append(crops[0].pdq.hex())
        if row.sha256 is not None:
            cols["sp"].append(sha_prefix(row.sha256))
            cols["sk"].append(make_key(row.id, code, 0))


# Attribute of _State, column letter in the collected columns, width in bits.
_COLUMNS: Final = ("pdq", "pdq_ref", "phash", "crop_phash", "crop_pdq")
_LETTERS: Final = (("p", 256), ("r", 256), ("h", 64), ("c", 64), ("d", 256))


def _new_columns() -> dict[str, list[Any]]:
    letters = [a + b for a, _ in _LETTERS for b in "kw"]
    return {k: [] for k in (*letters, "sp", "sk")}


def _pairs(cols: dict[str, list[Any]]) -> list[tuple[list[Any], list[Any], int]]:
    return [(cols[a + "k"], cols[a + "w"], nbits) for a, nbits in _LETTERS]


def _words(hexes: Sequence[str], width: int) -> np.ndarray:
    raw = bytes.fromhex("".join(hexes))
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hexes), width)


# entry id -> (kind rank, distance, bank code): the best way each entry matched
_Best = dict[int, tuple[int, int, int]]


class Matcher:
    """Match hashes against the bank (thread-safe; refreshed by polling the version)."""

    def __init__(self, store: BankStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._state: _State | None = None

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
        version), pHash, or a partial image against an entry's centre crop (an image too small
        for perceptual hashes, ``hashes`` None, matches by sha256 only)."""
        state = self._ensure()
        best: _Best = {}
        with self._lock:
            if sha256 is not None:
                for key in state.sha.lookup(sha_prefix(sha256)):
                    _offer(best, state, key, "sha256", 0)
            if hashes is not None:
                query = _Query.of(hashes)
                self._search_pdq(state, best, state.pdq, query.pdq)
                if len(state.pdq_ref):
                    self._search_pdq(state, best, state.pdq_ref, query.pdq_ref)
                self._search_phash(state, best, query)
                self._search_crops(state, best, query)
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
            if value.kind == "pdq":
                self._search_pdq(state, best, state.pdq, words)
                self._search_pdq(state, best, state.pdq_ref, words)
            else:
                self._search_phash(state, best, _Query(phash=words))
        return self._resolve(best, None)

    def _search_pdq(
        self, state: _State, best: _Best, index: MultiIndexHashing, queries: np.ndarray | None
    ) -> None:
        """Offer every entry whose PDQ (in ``index``) is within its bank's PDQ threshold."""
        radius = state.banks.radius("pdq")
        if radius < 0 or queries is None or not len(index):
            return
        _which, keys, dists = index.search_many(queries, radius)
        for key, distance in zip(keys.tolist(), dists.tolist(), strict=True):
            if distance <= state.banks.pdq[key_bank(key)]:
                _offer(best, state, key, "pdq", distance)

    def _search_phash(self, state: _State, best: _Best, query: _Query) -> None:
        """Plain and trimmed pHash hits that pass the PDQ guard (far band included)."""
        radius = state.banks.radius("phash")
        if radius < 0 or query.phash is None or not len(state.phash):
            return
        extra = PHASH_FAR_BAND if query.pdq is not None or query.pdq_ref is not None else 0
        _which, keys, dists = state.phash.search_many(query.phash, radius + extra)
        for key, distance in zip(keys.tolist(), dists.tolist(), strict=True):
            limit = int(state.banks.phash[key_bank(key)])
            if distance <= limit + extra and _pdq_agrees(state, key, query, distance, limit):
                _offer(best, state, key, "phash", distance)

    def _search_crops(self, state: _State, best: _Best, query: _Query) -> None:
        """A partial image's pHash within the threshold of an entry's centre crop, with the
        two PDQ hashes within :data:`CROP_PDQ_GUARD`."""
        radius = state.banks.radius("phash")
        partial_pdq = query.crop_pdq
        if radius < 0 or query.crop_phash is None or partial_pdq is None:
            return
        if not len(state.crop_phash):
            return
        which, keys, dists = state.crop_phash.search_many(query.crop_phash, radius)
        for row, key, distance in zip(which.tolist(), keys.tolist(), dists.tolist(), strict=True):
            if distance > state.banks.phash[key_bank(key)]:
                continue
            stored = state.crop_pdq.get(key)
            if stored is None:
                continue
            pdq_distance = int(popcount_rows((stored ^ partial_pdq[row]).reshape(1, -1))[0])
            if pdq_distance <= CROP_PDQ_GUARD:
                _offer(best, state, key, "phash", distance)

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

    def _ensure(self) -> _State:
        state = self._state
        if state is None:
            with self._refresh_lock:
                state = self._state or self._load()
        return state

    def _load(self) -> _State:
        version = self.store.version()  # read first: changes racing the load are re-applied
        banks = _Banks.from_store(self.store)
        state = _State.build(banks, version, self.store.index_rows())
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
    image and its trimmed content, usable quality only), pHash, and the partial images."""

    pdq: np.ndarray | None = None
    pdq_ref: np.ndarray | None = None
    phash: np.ndarray | None = None
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
            crop_phash=_stack([c.phash for c in crops]),
            crop_pdq=_stack([c.pdq for c in crops]),
        )


def _stack(values: list[HashValue]) -> np.ndarray | None:
    return words_of(values) if values else None


def _pdq_agrees(state: _State, key: int, query: _Query, distance: int, limit: int) -> bool:
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


def _offer(best: _Best, state: _State, key: int, kind: str, distance: int) -> None:
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
