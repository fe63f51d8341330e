"""The hash-kind registry: every kind's record agrees with the hashes it describes."""

from __future__ import annotations

import pytest
from hashing.hashkit import scene

from karung.vision.hash_index import LinearIndex
from karung.vision.hash_kinds import KINDS, PDQ, PHASH, UnknownHashKind, hash_kind
from karung.vision.hashing import HASH_BITS, MalformedHash, compute_hashes
from karung.vision.mih import MultiIndexHashing


def test_each_kind_parses_its_own_hex_and_indexes_it() -> None:
    hashes = compute_hashes(scene(3), partials=False)
    for value in (hashes.pdq, hashes.phash):
        kind = hash_kind(value.kind)
        text = value.hex()
        assert len(text) == kind.hex_digits
        assert kind.parse(text) == value
        fast, brute = kind.new_index(), kind.brute_index()
        assert isinstance(fast, MultiIndexHashing) and isinstance(brute, LinearIndex)
        assert fast.nbits == brute.nbits == value.nbits == kind.bits
        fast.add([7], value.to_words().reshape(1, -1))
        assert fast.search(value, 0) == [(7, 0)]


def test_registry_is_the_one_source_of_widths_and_defaults() -> None:
    assert set(KINDS) == {"pdq", "phash"} == set(HASH_BITS)
    assert {k: v.bits for k, v in KINDS.items()} == HASH_BITS
    assert (PDQ.default_threshold, PHASH.default_threshold) == (31, 10)
    assert PDQ.max_threshold == 128 and PHASH.max_threshold == 32


def test_unknown_kinds_and_bad_text_are_rejected() -> None:
    with pytest.raises(UnknownHashKind, match="md5"):
        hash_kind("md5")
    with pytest.raises(MalformedHash):
        PHASH.parse("f" * 15)
    with pytest.raises(MalformedHash):
        PDQ.parse("g" * 64)
