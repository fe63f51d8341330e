"""The hash kinds karung knows, one record each: what used to be spelled as ``"pdq"``/``"phash"``
branches across the code (bits, default threshold, how to parse one, which index holds them).

In the manner of python-threatexchange's ``SignalType``: a kind is a value with its own
behaviour, looked up by its name (the name is what files, the database and the API carry), so a
new kind is one more record here instead of another branch in every module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from karung.vision.errors import KarungVisionError

if TYPE_CHECKING:  # hashing and the indexes import this module: no cycle at run time
    from karung.vision.hash_index import LinearIndex
    from karung.vision.hashing import HashValue
    from karung.vision.mih import MultiIndexHashing


@dataclass(frozen=True)
class HashKindSpec:
    """One hash kind: its name, width, the bank's default match threshold, and its index."""

    name: str
    bits: int
    default_threshold: int
    description: str

    @property
    def hex_digits(self) -> int:
        """Length of the hex text form."""
        return self.bits // 4

    @property
    def max_threshold(self) -> int:
        """The widest sensible threshold: half the bits (beyond it, everything matches)."""
        return self.bits // 2

    def parse(self, text: str) -> HashValue:
        """A hash of this kind from its hex text (raises ``MalformedHash`` saying what is
        wrong)."""
        from karung.vision.hashing import HashValue

        return HashValue.from_hex(self.name, text)

    def new_index(self) -> MultiIndexHashing:
        """An empty fast index for hashes of this kind."""
        from karung.vision.mih import MultiIndexHashing

        return MultiIndexHashing(self.bits)

    def brute_index(self) -> LinearIndex:
        """An empty brute-force index (the reference) for hashes of this kind."""
        from karung.vision.hash_index import LinearIndex

        return LinearIndex(self.bits)


PDQ: Final = HashKindSpec("pdq", 256, 31, "PDQ (Meta), 256 bits with a quality score")
PHASH: Final = HashKindSpec("phash", 64, 10, "DCT pHash (imagehash), 64 bits")
KINDS: Final[dict[str, HashKindSpec]] = {k.name: k for k in (PDQ, PHASH)}


class UnknownHashKind(KarungVisionError, ValueError):
    """A name that is not in :data:`KINDS`."""

    code = "unknown_hash_kind"


def hash_kind(name: str) -> HashKindSpec:
    """The kind called ``name`` (:class:`UnknownHashKind` when there is none)."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownHashKind(
            f"unknown hash kind {name!r} (expected one of {list(KINDS)})"
        ) from None
