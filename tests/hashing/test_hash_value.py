"""The HashValue type: hex round trip, validation with typed errors, Hamming distance."""

from __future__ import annotations

import numpy as np
import pytest

from karung.vision.errors import KarungVisionError
from karung.vision.hashing import HashKindMismatch, HashValue, MalformedHash

PDQ_HEX = "f92d687468d92e64b589b704890da7bc13b4dda956b4dc236b468a96b69399ca"


def test_hex_round_trip_both_kinds() -> None:
    pdq = HashValue.from_hex("pdq", PDQ_HEX)
    assert pdq.hex() == PDQ_HEX and pdq.nbits == 256 and len(pdq.bits) == 32
    phash = HashValue.from_hex("phash", "AB2964B4B5E6964A")
    assert phash.hex() == "ab2964b4b5e6964a"  # upper case is accepted, output is lower case
    assert HashValue.from_hex("phash", phash.hex()) == phash
    assert str(phash) == "phash:ab2964b4b5e6964a"


def test_distance_counts_differing_bits() -> None:
    a = HashValue("phash", bytes(8))
    b = HashValue("phash", bytes([0b1011_0000]) + bytes(6) + bytes([0xFF]))
    assert a.distance(b) == 3 + 8 == b.distance(a)
    assert a.distance(a) == 0
    full = HashValue("pdq", b"\xff" * 32)
    assert full.distance(HashValue("pdq", bytes(32))) == 256


def test_distance_refuses_mismatched_kinds() -> None:
    pdq = HashValue("pdq", bytes(32))
    with pytest.raises(HashKindMismatch) as info:
        pdq.distance(HashValue("phash", bytes(8)))
    assert info.value.code == "hash_kind_mismatch"
    assert isinstance(info.value, KarungVisionError)


@pytest.mark.parametrize(
    ("kind", "text", "reason"),
    [
        ("pdq", PDQ_HEX[:-1], "64 hex digits, got 63"),
        ("pdq", PDQ_HEX + "00", "64 hex digits, got 66"),
        ("phash", "zz2964b4b5e6964a", "non-hex"),
        ("phash", "ab29 64b4b5e6964", "non-hex"),
        ("phash", "", "16 hex digits, got 0"),
        ("md5", "ab2964b4b5e6964a", "unknown hash kind"),
    ],
)
def test_malformed_hex_is_rejected_with_reason(kind: str, text: str, reason: str) -> None:
    with pytest.raises(MalformedHash, match=reason) as info:
        HashValue.from_hex(kind, text)
    assert info.value.code == "malformed_hash"


def test_non_string_hex_is_rejected() -> None:
    with pytest.raises(MalformedHash, match="hex string"):
        HashValue.from_hex("pdq", 1234)  # type: ignore[arg-type]


def test_bits_of_the_wrong_length_or_type_are_rejected() -> None:
    with pytest.raises(MalformedHash, match="32 bytes, got 8"):
        HashValue("pdq", bytes(8))
    with pytest.raises(MalformedHash, match="must be bytes"):
        HashValue("phash", bytearray(8))  # type: ignore[arg-type]
    with pytest.raises(MalformedHash, match="unknown hash kind"):
        HashValue("sha1", bytes(8))  # type: ignore[arg-type]


def test_value_is_frozen_and_hashable() -> None:
    value = HashValue.from_hex("phash", "ab2964b4b5e6964a")
    with pytest.raises(AttributeError):
        value.bits = bytes(8)  # type: ignore[misc]
    assert len({value, HashValue.from_hex("phash", "ab2964b4b5e6964a")}) == 1


def test_words_are_big_endian_uint64() -> None:
    value = HashValue.from_hex("pdq", PDQ_HEX)
    words = value.to_words()
    assert words.dtype == np.uint64 and words.shape == (4,)
    assert int(words[0]) == int(PDQ_HEX[:16], 16)
    assert int(words[3]) == int(PDQ_HEX[48:], 16)
