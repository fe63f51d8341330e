"""What the matcher holds in memory for one version of the bank: hash indexes keyed by entry,
bank and variant, the sha256 prefixes, bank codes and thresholds (no matching rules: those are
:mod:`karung.serve.bank.matcher`'s).

An index key packs the entry id, its bank (a small code, for the per-bank thresholds) and the
variant (0 plain, 1 border-trimmed, 2 the centre crop of :mod:`karung.vision.crops`) into one
int64::

    key = entry_id << 21 | bank_code << 5 | variant
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from karung.serve.bank.store import BankStore, IndexRow
from karung.vision.crops import decode_crops
from karung.vision.hash_index import HashIndexError, WordStore
from karung.vision.hash_kinds import PDQ, PHASH, hash_kind
from karung.vision.hashing import HASH_VERSION, MIN_PDQ_QUALITY
from karung.vision.mih import MultiIndexHashing

_BANK_BITS: Final = 16
_VARIANT_BITS: Final = 5  # 0 plain, 1 trimmed, 2 the centre crop (room for more)
_ENTRY_SHIFT: Final = _BANK_BITS + _VARIANT_BITS
PLAIN, TRIMMED, CROP = 0, 1, 2
FIRST_CROP: Final = CROP


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


class ShaMap:
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
class Banks:
    """Bank name <-> code and the thresholds of enabled banks by code."""

    names: list[str]
    codes: dict[str, int]
    pdq: np.ndarray
    phash: np.ndarray
    enabled: np.ndarray

    @classmethod
    def from_store(cls, store: BankStore) -> Banks:
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
        thresholds = {PDQ.name: self.pdq, PHASH.name: self.phash}[hash_kind(kind).name]
        live = thresholds[self.enabled]
        return int(live.max()) if live.size else -1


class BankState:
    """Everything one version of the bank holds in memory.

    ``pdq`` holds version-2 PDQ hashes (plain and trimmed), ``pdq_ref`` version-1 (reference)
    ones, so the two are never compared; ``phash`` the plain and trimmed pHashes of every
    entry; ``crop_phash`` and ``crop_pdq`` the centre crop of version-2 entries (its PDQ is
    only looked up, to check a pHash hit on the crop).
    """

    def __init__(self, banks: Banks, version: int) -> None:
        self.banks = banks
        self.version = version
        self.pdq = MultiIndexHashing(256)
        self.pdq_ref = MultiIndexHashing(256)
        self.phash = MultiIndexHashing(64)
        self.crop_phash = MultiIndexHashing(64)
        self.crop_pdq = WordStore(256)
        self.sha = ShaMap(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.live: set[int] = set()

    def indexes(self) -> tuple[MultiIndexHashing | WordStore, ...]:
        """Every hash container, in :data:`_COLUMNS` order."""
        return (self.pdq, self.pdq_ref, self.phash, self.crop_phash, self.crop_pdq)

    @classmethod
    def build(cls, banks: Banks, version: int, rows: Iterable[IndexRow]) -> BankState:
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
        state.sha = ShaMap(np.array(cols["sp"], dtype=np.int64), np.array(cols["sk"], np.int64))
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


# Attribute of BankState, column letter in the collected columns, width in bits.
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
