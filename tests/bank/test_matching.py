"""Matching through BankService on both databases: edited re-uploads match, others do not."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import pytest
from hashing.hashkit import jpeg, png, scene
from PIL import Image, ImageOps
from sqlalchemy import Engine

from karung.serve.bank.errors import EntryNotFound
from karung.serve.bank.matcher import FAR_PHASH_PDQ_GUARD, PHASH_FAR_BAND
from karung.serve.bank.service import BankService
from karung.serve.bank.store import NewEntry
from karung.serve.bench.transforms import TRANSFORMS
from karung.serve.review.bankbridge import StoreBankWriter
from karung.vision.errors import UnsupportedFormat
from karung.vision.hashing import HashValue, ImageHashes, MalformedHash, compute_hashes

W, H = 400, 300


def crop_centre(img: Image.Image, share: float) -> Image.Image:
    dx, dy = round(img.width * share / 2), round(img.height * share / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize_50": lambda img: TRANSFORMS["resize_50"](img, random.Random(0)),
    "jpeg_30": lambda img: Image.open(io.BytesIO(jpeg(img, 30))).convert("RGB"),
    "crop_4_centre": lambda img: crop_centre(img, 0.04),
    "mirror": ImageOps.mirror,
    "rotate_90": lambda img: img.transpose(Image.Transpose.ROTATE_90),
    "border_10": lambda img: TRANSFORMS["border_10"](img, random.Random(0)),
    "text_overlay": lambda img: TRANSFORMS["text_overlay"](img, random.Random(0)),
    "grayscale": lambda img: ImageOps.grayscale(img).convert("RGB"),
}


@pytest.fixture
def banked(service: BankService) -> tuple[BankService, dict[int, int]]:
    """Three scenes banked by seller S1; returns the service and seed -> entry id."""
    ids = {}
    for seed in (0, 1, 2):
        result = service.add_image(
            png(scene(seed, W, H)),
            bank="stolen",
            seller_id="S1",
            listing_id=f"L{seed}",
            source_url=f"https://x.test/{seed}",
        )
        ids[seed] = result.entry.id
    return service, ids


def test_exact_bytes_match_by_sha256(banked: tuple[BankService, dict[int, int]]) -> None:
    service, ids = banked
    [match] = service.match_bytes(png(scene(1, W, H)))
    assert (match.kind, match.distance, match.entry_id) == ("sha256", 0, ids[1])
    assert (match.bank, match.listing_id, match.seller_id) == ("stolen", "L1", "S1")
    assert match.source_url == "https://x.test/1"
    assert match.to_dict() == {
        "entry_id": ids[1],
        "bank": "stolen",
        "kind": "sha256",
        "distance": 0,
        "listing_id": "L1",
        "seller_id": "S1",
        "source_url": "https://x.test/1",
    }


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_reuploads_match_their_original(
    banked: tuple[BankService, dict[int, int]], edit: str
) -> None:
    service, ids = banked
    for seed in (0, 2):
        matches = service.match_bytes(jpeg(EDITS[edit](scene(seed, W, H))))
        assert [m.entry_id for m in matches] == [ids[seed]], (edit, seed, matches)
        assert matches[0].kind in ("pdq", "phash")
        assert 0 <= matches[0].distance <= (31 if matches[0].kind == "pdq" else 10)


def test_unrelated_images_do_not_match(banked: tuple[BankService, dict[int, int]]) -> None:
    service, _ = banked
    for seed in range(10, 20):
        assert service.match_bytes(jpeg(scene(seed, W, H))) == []


def test_bad_bytes_raise_typed_errors(service: BankService) -> None:
    with pytest.raises(UnsupportedFormat):
        service.match_bytes(b"<html>not an image</html>")
    with pytest.raises(MalformedHash):
        service.lookup_hash("pdq", "12")


def test_lookup_by_hash(banked: tuple[BankService, dict[int, int]]) -> None:
    service, ids = banked
    entry = service.store.get(ids[2])
    assert entry.pdq is not None and entry.phash is not None
    assert [m.entry_id for m in service.lookup_hash("pdq", entry.pdq.hex())] == [ids[2]]
    [match] = service.lookup_hash("phash", entry.phash.hex())
    assert (match.kind, match.distance) == ("phash", 0)


def test_thresholds_are_per_bank(banked: tuple[BankService, dict[int, int]]) -> None:
    service, _ = banked
    edited = jpeg(EDITS["text_overlay"](scene(0, W, H)))
    assert service.match_bytes(edited)
    service.configure_bank("stolen", pdq_threshold=0, phash_threshold=0)
    assert service.match_bytes(edited) == []
    # Another bank with the defaults still catches the same photo.
    service.add_image(png(scene(0, W, H)), bank="partner")
    assert [m.bank for m in service.match_bytes(edited)] == ["partner"]


def test_disabled_banks_and_removed_entries_are_ignored(
    banked: tuple[BankService, dict[int, int]],
) -> None:
    service, ids = banked
    mirrored = jpeg(ImageOps.mirror(scene(1, W, H)))
    service.configure_bank("stolen", enabled=False)
    assert service.match_bytes(mirrored) == [] and service.index_size == 0
    service.configure_bank("stolen", enabled=True)
    assert [m.entry_id for m in service.match_bytes(mirrored)] == [ids[1]]
    service.remove(ids[1])
    assert service.match_bytes(mirrored) == []
    assert service.index_size == 2
    with pytest.raises(EntryNotFound):
        service.remove(ids[1])


def test_featureless_images_never_match_by_pdq(service: BankService) -> None:
    flat = Image.new("RGB", (W, H), (128, 128, 128))
    service.add_image(png(flat), bank="stolen")
    other_flat = Image.new("RGB", (W, H), (40, 200, 90))
    # PDQ of quality < 50 is not used; pHash of two flat images is 0 apart, so that is what hits.
    assert [m.kind for m in service.match_bytes(png(other_flat))] == ["phash"]


def test_replicas_follow_changes(engine: Engine, service: BankService) -> None:
    replica = BankService(engine)
    first = service.add_image(png(scene(5, W, H)), bank="stolen").entry.id
    query = jpeg(ImageOps.mirror(scene(5, W, H)))
    assert replica.match_bytes(query) == []  # not polled yet
    assert replica.refresh_if_changed() is True
    assert [m.entry_id for m in replica.match_bytes(query)] == [first]
    assert replica.refresh_if_changed() is False
    service.remove(first)
    # Matches of entries removed elsewhere are dropped even before the replica polls.
    assert replica.match_bytes(query) == []
    assert replica.refresh_if_changed() is True
    assert replica.index_size == 0 and replica.version == service.version


def test_add_image_is_idempotent_and_reports_it(service: BankService) -> None:
    data = png(scene(6, W, H))
    first = service.add_image(data, bank="stolen", seller_id="S9")
    again = service.add_image(data, bank="stolen", seller_id="S9")
    assert first.created and not again.created and first.entry.id == again.entry.id
    assert service.index_size == 1
    assert [e.id for e in service.list_entries("stolen")] == [first.entry.id]


def flipped(value: HashValue, bits: int) -> HashValue:
    """``value`` with its first ``bits`` bits flipped (distance exactly ``bits``)."""
    number = int.from_bytes(value.bits, "big") ^ (((1 << bits) - 1) << (value.nbits - bits))
    return HashValue(value.kind, number.to_bytes(len(value.bits), "big"))


def query(pdq: HashValue, phash: HashValue, quality: int = 100) -> ImageHashes:
    return ImageHashes(pdq=pdq, pdq_quality=quality, pdq_dihedral=(pdq,) * 8, phash=phash)


def test_phash_hits_need_pdq_to_agree(service: BankService) -> None:
    """A look-alike photo (pHash close, PDQ far) is not a match; an edited copy (both close) is."""
    stored = compute_hashes(scene(0, W, H))
    with_pdq = service.store.add([NewEntry.from_hashes("stolen", None, stored)])[0].entry.id
    service.refresh_if_changed()
    phash_near = flipped(stored.phash, 8)
    assert service.match_hashes(query(flipped(stored.pdq, 120), phash_near)) == []
    [hit] = service.match_hashes(query(flipped(stored.pdq, 50), phash_near))
    assert (hit.entry_id, hit.kind, hit.distance) == (with_pdq, "phash", 8)
    [hit] = service.match_hashes(query(flipped(stored.pdq, 20), phash_near))
    assert (hit.kind, hit.distance) == ("pdq", 20)
    # A query without usable PDQ: pHash alone must be within half the threshold.
    assert service.match_hashes(query(stored.pdq, phash_near, quality=10)) == []
    [hit] = service.match_hashes(query(stored.pdq, flipped(stored.phash, 5), quality=10))
    assert (hit.kind, hit.distance) == ("phash", 5)


def test_far_phash_band_needs_close_pdq(service: BankService) -> None:
    """A captioned and watermarked re-upload can land a few pHash bits past the threshold with
    PDQ in the 30s-50s: it counts only with PDQ within the far band's stricter guard."""
    stored = compute_hashes(scene(2, W, H))
    entry = service.store.add([NewEntry.from_hashes("stolen", None, stored)])[0].entry.id
    service.refresh_if_changed()
    limit = 10  # the bank's default pHash threshold
    far = flipped(stored.phash, limit + PHASH_FAR_BAND)
    [hit] = service.match_hashes(query(flipped(stored.pdq, FAR_PHASH_PDQ_GUARD), far))
    assert (hit.entry_id, hit.kind, hit.distance) == (entry, "phash", limit + PHASH_FAR_BAND)
    assert service.match_hashes(query(flipped(stored.pdq, FAR_PHASH_PDQ_GUARD + 1), far)) == []
    beyond = flipped(stored.phash, limit + PHASH_FAR_BAND + 1)
    assert service.match_hashes(query(flipped(stored.pdq, 40), beyond)) == []
    # Without usable PDQ on the query there is nothing to corroborate a far hit.
    assert service.match_hashes(query(stored.pdq, far, quality=10)) == []
    # A lone pHash lookup gets no far band either.
    assert service.lookup_hash("phash", flipped(stored.phash, limit + 1).hex()) == []


def test_mirrored_phash_hits_need_pdq_and_get_no_far_band(service: BankService) -> None:
    """The query's pHash mirrored back finds a mirrored copy whose own pHash is far, with the
    PDQ guard (the dihedral variants within 64) and within the threshold only."""
    import dataclasses

    stored = compute_hashes(scene(3, W, H))
    entry = service.store.add([NewEntry.from_hashes("stolen", None, stored)])[0].entry.id
    service.refresh_if_changed()
    unrelated = compute_hashes(scene(30, W, H)).phash
    mirrored = query(flipped(stored.pdq, 45), unrelated)
    near = dataclasses.replace(mirrored, phash_mirrored=flipped(stored.phash, 8))
    [hit] = service.match_hashes(near)
    assert (hit.entry_id, hit.kind, hit.distance) == (entry, "phash", 8)
    assert service.match_hashes(mirrored) == []  # the same query without its mirrored pHash
    far = dataclasses.replace(mirrored, phash_mirrored=flipped(stored.phash, 12))
    assert service.match_hashes(far) == []  # no far band for mirrored pHashes
    unguarded = dataclasses.replace(near, pdq=flipped(stored.pdq, 120))
    unguarded = dataclasses.replace(unguarded, pdq_dihedral=(unguarded.pdq,) * 8)
    assert service.match_hashes(unguarded) == []


def test_mirrored_captioned_reupload_matches(banked: tuple[BankService, dict[int, int]]) -> None:
    service, ids = banked
    for seed in (0, 2):
        edited = TRANSFORMS["mirror_caption_bar"](scene(seed, W, H), random.Random(seed))
        assert [m.entry_id for m in service.match_bytes(jpeg(edited))] == [ids[seed]]


def test_entries_without_pdq_match_by_close_phash_only(service: BankService) -> None:
    stored = compute_hashes(scene(1, W, H))
    service.store.add([NewEntry("shared", None, phash=stored.phash)])
    service.refresh_if_changed()
    assert service.match_hashes(query(stored.pdq, flipped(stored.phash, 7))) == []
    assert [m.kind for m in service.match_hashes(query(stored.pdq, flipped(stored.phash, 4)))] == [
        "phash"
    ]
    assert [m.distance for m in service.lookup_hash("phash", stored.phash.hex())] == [0]


def test_review_hooks_inside_caller_sessions(service: BankService) -> None:
    """The review loop's writer adds and undoes inside the caller's transaction; a second
    confirmation of the same photo creates nothing, so its undo would remove nothing."""
    writer = StoreBankWriter(service.store)
    img = scene(7, W, H)
    confirm = {
        "bank": "confirmed",
        "sha256": "f" * 64,
        "listing_id": "L7",
        "seller_id": "S7",
        "note": "review item 1",
    }
    with service.store.sessions() as session:
        ids = list(writer.add_confirmed(session, img, **confirm))  # type: ignore[arg-type]
        session.commit()
    assert len(ids) == 1
    assert service.refresh_if_changed() is True
    assert [m.entry_id for m in service.match(img)] == ids
    with service.store.sessions() as session:  # confirmed twice: nothing new is created
        assert list(writer.add_confirmed(session, img, **confirm)) == []  # type: ignore[arg-type]
        session.commit()
    service.refresh_if_changed()  # a version bump without changes must not trip the replica
    assert [m.entry_id for m in service.match(img)] == ids
    with service.store.sessions() as session:
        assert writer.remove_entries(session, "confirmed", ids) == 1
        session.commit()
    assert service.refresh_if_changed() is True
    assert service.match(img) == [] and service.index_size == 0


@pytest.mark.parametrize(
    ("keep", "where"),
    [(0.9, (0.5, 0.5)), (0.95, (0.0, 0.0)), (0.95, (1.0, 1.0)), (0.9, (0.25, 0.75))],
)
def test_crops_match_through_the_centre_crop_and_query_partials(
    banked: tuple[BankService, dict[int, int]], keep: float, where: tuple[float, float]
) -> None:
    """5% off each side (the issue's crop), 5% off two sides, 10% off at an inner position."""
    service, ids = banked
    assert len(service.store.get(ids[0]).crops) == 1  # the centre crop; the query does the rest
    img = scene(0, W, H)
    kw, kh = round(W * keep), round(H * keep)
    left, top = round(where[0] * (W - kw)), round(where[1] * (H - kh))
    cropped = jpeg(img.crop((left, top, left + kw, top + kh)))
    assert [m.entry_id for m in service.match_bytes(cropped)] == [ids[0]]
    # Without the centre crop the same upload is missed: it is what finds it.
    service.store.add([NewEntry.from_hashes("plain", None, compute_hashes(img))])
    service.configure_bank("stolen", enabled=False)
    assert service.match_bytes(cropped) == []


def test_unrelated_crops_do_not_match_crop_variants(
    banked: tuple[BankService, dict[int, int]],
) -> None:
    service, _ = banked
    for seed in range(10, 16):
        img = scene(seed, W, H)
        assert service.match_bytes(jpeg(img.crop((0, 0, round(W * 0.9), round(H * 0.9))))) == []
