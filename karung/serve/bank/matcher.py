"""In-memory matching against the bank: sha256 exact, then PDQ, then pHash.

Only numbers live in memory: a multi-index-hashing index per hash kind, a sorted array of sha256
prefixes and the set of indexed entry ids. An index key packs the entry id, its bank (a small
code, for the per-bank thresholds) and the variant (0 plain, 1 border-trimmed, 2.. the crop
variants of :mod:`karung.vision.crops`) into one int64::

    key = entry_id << 21 | bank_code << 5 | variant

Crop variants make 10% crops findable; a pHash hit on a crop variant needs a tighter PDQ guard
(:data:`CROP_PDQ_GUARD`) because every stored crop is one more chance for a look-alike to hit.

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
from typing import Any, Final, Literal

import numpy as np

from karung.serve.bank.store import BankStore, Change, Entry, IndexRow
from karung.vision.crops import decode_crops
from karung.vision.hash_index import HashIndexError, MultiIndexHashing, popcount_rows, words_of
from karung.vision.hashing import MIN_PDQ_QUALITY, HashValue, ImageHashes

MatchKind = Literal["sha256", "pdq", "phash"]
KIND_RANK: Final[dict[str, int]] = {"sha256": 0, "pdq": 1, "phash": 2}
_BANK_BITS: Final = 16
_VARIANT_BITS: Final = 5  # 0 plain, 1 trimmed, 2..31 crop variants (MAX_CROPS <= 30)
_ENTRY_SHIFT: Final = _BANK_BITS + _VARIANT_BITS
FIRST_CROP: Final = 2
# More changes than this since the last refresh: a full reload is cheaper than the deltas.
MAX_DELTA: Final = 50_000
# pHash alone confuses look-alike product photos (a dark garment laid flat on a light floor): on
# the CC0 garment photos 1.2% of unrelated photos came within 10 bits of some banked photo.
# So a pHash hit counts only when PDQ agrees loosely (those look-alikes were all >= 78 PDQ bits
# away, edited copies that PDQ alone misses sit at 30..60), or, when either side has no usable
# PDQ, when the pHash distance is within half the bank's threshold.
PHASH_PDQ_GUARD: Final = 64
# A pHash hit on a crop variant: the query's PDQ must be within this of one of the entry's PDQ
# hashes (plain, trimmed or crops). Measured on the CC0 photos with 17 crops per entry: at 64, 5 of
# 2,186 unrelated photos matched something; at 56 none did, while 10% crops were still found at
# 0.98-0.99 (docs/HASHING.md). A query without usable PDQ never matches a crop variant by pHash.
CROP_PDQ_GUARD: Final = 56
# The far pHash band: a plain or trimmed pHash hit up to this many bits beyond the bank's
# threshold still counts when PDQ agrees within FAR_PHASH_PDQ_GUARD. A caption plus a watermark
# pushes a few re-uploads to pHash 12-14 with PDQ 32-56, past both thresholds; unrelated photos
# came no closer than 58 PDQ bits to a plain banked hash (docs/HASHING.md), so the stricter PDQ
# guard pays for the wider pHash radius. Crop variants get no far band (more chances to collide).
PHASH_FAR_BAND: Final = 4
FAR_PHASH_PDQ_GUARD: Final = 56


@dataclass(frozen=True)
class Match:
    """One bank entry an image matched, and how."""

    entry_id: int
    bank: str
    kind: MatchKind
    distance: int
    listing_id: str | None
    seller_id: str | None
    source_url: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "entry_id": self.entry_id,
            "bank": self.bank,
            "kind": self.kind,
            "distance": self.distance,
            "listing_id": self.listing_id,
            "seller_id": self.seller_id,
            "source_url": self.source_url,
        }


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
    """Everything one version of the bank holds in memory."""

    def __init__(self, banks: _Banks, version: int) -> None:
        self.banks = banks
        self.version = version
        self.pdq = MultiIndexHashing(256)
        self.phash = MultiIndexHashing(64)
        self.sha = _ShaMap(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.live: set[int] = set()
        self.crops: dict[int, int] = {}  # entry id -> number of crop variants indexed

    @classmethod
    def build(cls, banks: _Banks, version: int, rows: Iterable[IndexRow]) -> _State:
        """Index every row of an enabled bank in one go."""
        state = cls(banks, version)
        cols: dict[str, list[Any]] = {k: [] for k in ("pk", "pw", "hk", "hw", "sp", "sk")}
        for row in rows:
            state._collect(row, cols)
        if cols["pk"]:
            state.pdq = MultiIndexHashing.build(cols["pk"], _words(cols["pw"], 4), 256)
        if cols["hk"]:
            state.phash = MultiIndexHashing.build(cols["hk"], _words(cols["hw"], 1), 64)
        state.sha = _ShaMap(np.array(cols["sp"], dtype=np.int64), np.array(cols["sk"], np.int64))
        return state

    def add_rows(self, rows: Iterable[IndexRow]) -> None:
        """Index rows added since the load (rows already indexed are skipped)."""
        cols: dict[str, list[Any]] = {k: [] for k in ("pk", "pw", "hk", "hw", "sp", "sk")}
        for row in rows:
            if row.id not in self.live:
                self._collect(row, cols)
        if cols["pk"]:
            self.pdq.add(cols["pk"], _words(cols["pw"], 4))
        if cols["hk"]:
            self.phash.add(cols["hk"], _words(cols["hw"], 1))
        for prefix, key in zip(cols["sp"], cols["sk"], strict=True):
            self.sha.add(prefix, key)

    def remove(self, entry_id: int, bank: str) -> None:
        """Forget an entry (a no-op when it is not indexed)."""
        code = self.banks.code(bank)
        if entry_id not in self.live or code is None:
            return
        self.live.discard(entry_id)
        for variant in range(FIRST_CROP + self.crops.pop(entry_id, 0)):
            key = make_key(entry_id, code, variant)
            for index in (self.pdq, self.phash):
                # That variant or kind may never have been indexed (no hash, low quality).
                with contextlib.suppress(HashIndexError):
                    index.remove(key)

    def _collect(self, row: IndexRow, cols: dict[str, list[Any]]) -> None:
        code = self.banks.code(row.bank)
        if code is None or not self.banks.enabled[code]:
            return
        self.live.add(row.id)
        variants: tuple[tuple[str | None, int | None, str | None], ...] = (
            (row.pdq, row.pdq_quality, row.phash),
            (row.trim_pdq, row.trim_pdq_quality, row.trim_phash),
        )
        crops = decode_crops(row.crop_hashes)
        if crops:
            self.crops[row.id] = len(crops)
        # Crop PDQ hashes are stored only when their quality is usable (>= 50).
        variants += tuple((c.pdq.hex(), MIN_PDQ_QUALITY, c.phash.hex()) for c in crops)
        for variant, (pdq, quality, phash) in enumerate(variants):
            key = make_key(row.id, code, variant)
            if pdq is not None and (quality or 0) >= MIN_PDQ_QUALITY:
                cols["pk"].append(key)
                cols["pw"].append(pdq)
            if phash is not None:
                cols["hk"].append(key)
                cols["hw"].append(phash)
        if row.sha256 is not None:
            cols["sp"].append(sha_prefix(row.sha256))
            cols["sk"].append(make_key(row.id, code, 0))


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
        """Bytes held by the PDQ and pHash indexes (0 before the first load)."""
        state = self._state
        return 0 if state is None else state.pdq.nbytes() + state.phash.nbytes()

    @property
    def index_hashes(self) -> int:
        """Hashes held by the PDQ and pHash indexes (all variants of every entry)."""
        state = self._state
        return 0 if state is None else len(state.pdq) + len(state.phash)

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
        """Entries matching an image: by sha256, PDQ (8 dihedral variants) or pHash (an image
        too small for perceptual hashes, ``hashes`` None, matches by sha256 only)."""
        state = self._ensure()
        best: _Best = {}
        variants = hashes.variants() if hashes is not None else ()
        with self._lock:
            if sha256 is not None:
                for key in state.sha.lookup(sha_prefix(sha256)):
                    _offer(best, state, key, "sha256", 0)
            query_pdq = [v for h in variants if h.pdq_usable for v in h.pdq_dihedral]
            for value in query_pdq:
                self._search(state, best, "pdq", value)
            guard = words_of(query_pdq) if query_pdq else None
            for variant in variants:
                self._search(state, best, "phash", variant.phash, guard)
        return self._resolve(best, sha256)

    def lookup(self, value: HashValue) -> list[Match]:
        """Entries whose stored hash is within their bank's threshold of ``value``.

        A lone pHash has no PDQ to pass the guard with, so it must lie within half the threshold.
        """
        state = self._ensure()
        best: _Best = {}
        with self._lock:
            self._search(state, best, value.kind, value)
        return self._resolve(best, None)

    def _search(
        self,
        state: _State,
        best: _Best,
        kind: str,
        value: HashValue,
        guard: np.ndarray | None = None,
    ) -> None:
        """Offer every entry within its bank's threshold; pHash hits must pass the PDQ guard
        (``guard``: the query's usable PDQ hashes as words, None when it has none)."""
        radius = state.banks.radius(kind)
        if radius < 0:
            return
        index = state.pdq if kind == "pdq" else state.phash
        thresholds = state.banks.pdq if kind == "pdq" else state.banks.phash
        extra = PHASH_FAR_BAND if kind == "phash" and guard is not None else 0
        for key, distance in index.search(value, radius + extra):
            limit = int(thresholds[key_bank(key)])
            if distance > limit + extra:  # extra is 0 for PDQ: only pHash has a far band
                continue
            if kind == "phash" and not _pdq_agrees(state, key, guard, distance, limit):
                continue
            _offer(best, state, key, kind, distance)

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


def _pdq_agrees(
    state: _State, key: int, guard: np.ndarray | None, distance: int, limit: int
) -> bool:
    """The PDQ guard of a pHash hit (:data:`PHASH_PDQ_GUARD`, :data:`CROP_PDQ_GUARD`, and
    :data:`FAR_PHASH_PDQ_GUARD` for hits in the far band beyond ``limit``)."""
    entry, code = key_entry(key), key_bank(key)
    crop_hit = key_variant(key) >= FIRST_CROP
    far = distance > limit
    if far and crop_hit:
        return False
    variants = range(FIRST_CROP + state.crops.get(entry, 0)) if crop_hit else range(FIRST_CROP)
    stored = [state.pdq.get(make_key(entry, code, variant)) for variant in variants]
    words = [w for w in stored if w is not None]  # only PDQ of usable quality is indexed
    if guard is None or not words:
        return not crop_hit and not far and distance <= limit // 2
    pairs = guard[:, None, :] ^ np.stack(words)[None]
    best = int(popcount_rows(pairs.reshape(-1, guard.shape[1])).min())
    if far:
        return best <= FAR_PHASH_PDQ_GUARD
    return best <= (CROP_PDQ_GUARD if crop_hit else PHASH_PDQ_GUARD)


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
