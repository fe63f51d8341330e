"""Perceptual hashes of images: PDQ (256 bits + quality, 8 dihedral variants) and pHash (64 bits).

Hash version 2 (:data:`HASH_VERSION`): PDQ is computed on the image area-averaged to
:data:`PDQ_SIDE` x :data:`PDQ_SIDE` pixels. PDQ's own downsampling (a Jarosz box filter with
windows rounded to whole pixels, then sampling at ``(i + 0.5) * n / 64``) is not symmetric under
flips for sizes that are not multiples of 64, so on small photos the dihedral shortcut put a
mirrored copy up to 56 bits away; on a 64 x 64 input that filter is the identity and the 8
dihedral hashes are exact (within a few bits, JPEG noise included). Version 1 is PDQ of the
whole (at most 512 px) image, ThreatExchange's reference: it is still computed
(:attr:`ImageHashes.reference`) so hash lists from other tools and entries banked before version
2 keep matching, and the two are never compared with each other.

Library objects (``pdqhash`` vectors, ``imagehash.ImageHash``) never leave this module: callers get
:class:`HashValue`, a frozen (kind, bits) pair with a hex round trip and a Hamming distance that
refuses to compare hashes of different kinds.

Hex formats are the ones other tools use, so hash lists can be shared between platforms:

* PDQ: 64 hex digits, most significant bit first, identical to ThreatExchange's ``pdq-photo-hasher``
  (words ``w[15]`` .. ``w[0]``).
* pHash: 16 hex digits, identical to ``str(imagehash.phash(img))``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
from PIL import Image

from karung.vision import partial_hash, pdq_native
from karung.vision.decode import DEFAULT_MAX_DECODE_BYTES, decode_image
from karung.vision.errors import KarungVisionError
from karung.vision.hash_kinds import KINDS, PDQ, PHASH
from karung.vision.trim import even_box, trim_box

HashKind = Literal["pdq", "phash"]
HASH_KINDS: Final[tuple[HashKind, ...]] = get_args(HashKind)
HASH_BITS: Final[dict[str, int]] = {k.name: k.bits for k in KINDS.values()}
# Meta's guidance: PDQ hashes of quality below 50 come from near-featureless images and match
# everything, so they must not be used for matching.
MIN_PDQ_QUALITY: Final = 50
# PDQ is defined on at most 512x512 (the reference hasher downsamples first); capping the size also
# bounds the cost of hashing a 12 MP upload.
HASH_MAX_SIDE: Final = 512
# Encoded images are decoded for hashing one way only (decode_for_hashing), so a banked photo and
# its re-upload are hashed from pixels prepared alike: decoded towards this size (JPEG DCT
# scaling, integer box reduction: 256-512 px a side for typical photos), then capped at
# HASH_MAX_SIDE. Hashing a decode of another size moves PDQ by about 6 bits on average.
HASH_DECODE_TARGET: Final = 256
# Stored with every bank entry: 2 = PDQ of the PDQ_SIDE x PDQ_SIDE normalised image (see the
# module docstring), 1 = PDQ of the whole image (the reference, as other tools compute it).
HASH_VERSION: Final = 2
REFERENCE_VERSION: Final = 1
PDQ_SIDE: Final = 64
# Query variants (partial images) are cut from the image reduced (by a whole factor) to at most
# this size: a pHash is a 32 x 32 DCT and a version-2 PDQ a 64 x 64 one, so more pixels only
# cost time.
PARTIAL_SIDE: Final = 192
DIHEDRAL_NAMES: Final = (
    "r0",
    "r90",
    "r180",
    "r270",
    "flip_v",
    "flip_h",
    "r90_flip_v",
    "r90_flip_h",
)
_HEX_DIGITS: Final = frozenset(string.hexdigits)


class HashError(KarungVisionError, ValueError):
    """Base class of hash value errors."""

    code = "hash_error"


class MalformedHash(HashError):
    """A hash's text or bytes are not a valid hash of the declared kind."""

    code = "malformed_hash"


class TooSmallToHash(MalformedHash):
    """The image has fewer than 2 pixels on a side: no perceptual hash describes it (its
    sha256 still does)."""

    code = "too_small_to_hash"


class HashKindMismatch(HashError):
    """Two hashes of different kinds were compared."""

    code = "hash_kind_mismatch"


@dataclass(frozen=True)
class HashValue:
    """One perceptual hash: its kind and its bits, most significant bit first."""

    kind: HashKind
    bits: bytes

    def __post_init__(self) -> None:
        if self.kind not in HASH_BITS:
            raise MalformedHash(f"unknown hash kind {self.kind!r} (expected one of {HASH_KINDS})")
        if not isinstance(self.bits, bytes):
            raise MalformedHash(f"{self.kind} bits must be bytes, got {type(self.bits).__name__}")
        want = HASH_BITS[self.kind] // 8
        if len(self.bits) != want:
            raise MalformedHash(f"{self.kind} hash needs {want} bytes, got {len(self.bits)}")

    @property
    def nbits(self) -> int:
        """Number of bits of this kind (256 for PDQ, 64 for pHash)."""
        return HASH_BITS[self.kind]

    def hex(self) -> str:
        """Lower-case hex, most significant bit first (see the module docstring)."""
        return self.bits.hex()

    @classmethod
    def from_hex(cls, kind: str, text: str) -> HashValue:
        """Parse ``text`` as a hash of ``kind``; raise :class:`MalformedHash` with the reason."""
        if kind not in HASH_BITS:
            raise MalformedHash(f"unknown hash kind {kind!r} (expected one of {HASH_KINDS})")
        if not isinstance(text, str):
            raise MalformedHash(f"{kind} hash must be a hex string, got {type(text).__name__}")
        clean = text.strip()
        want = HASH_BITS[kind] // 4
        if len(clean) != want:
            raise MalformedHash(f"{kind} hash needs {want} hex digits, got {len(clean)}: {text!r}")
        if not set(clean) <= _HEX_DIGITS:
            raise MalformedHash(f"{kind} hash has non-hex characters: {text!r}")
        return cls(kind, bytes.fromhex(clean))  # type: ignore[arg-type]

    def distance(self, other: HashValue) -> int:
        """Hamming distance; raises :class:`HashKindMismatch` for hashes of different kinds."""
        if self.kind != other.kind:
            raise HashKindMismatch(f"cannot compare a {self.kind} hash with a {other.kind} hash")
        return (int.from_bytes(self.bits, "big") ^ int.from_bytes(other.bits, "big")).bit_count()

    def to_words(self) -> np.ndarray:
        """The bits as big-endian uint64 words (shape ``(nbits // 64,)``), the index's layout."""
        return np.frombuffer(self.bits, dtype=">u8").astype(np.uint64)

    def __str__(self) -> str:
        return f"{self.kind}:{self.hex()}"


@dataclass(frozen=True)
class CropHashes:
    """PDQ (version 2, usable quality) and pHash of one partial image (a crop)."""

    pdq: HashValue
    phash: HashValue

    def __post_init__(self) -> None:
        if self.pdq.kind != PDQ.name or self.phash.kind != PHASH.name:
            raise MalformedHash("a crop variant is a PDQ hash and a pHash")

    def text(self) -> str:
        """``<64 hex PDQ>:<16 hex pHash>``, the stored and exported form."""
        return f"{self.pdq.hex()}:{self.phash.hex()}"

    @classmethod
    def from_text(cls, text: str) -> CropHashes:
        """Parse :meth:`text` output; :class:`MalformedHash` says what is wrong."""
        pdq, sep, ph = text.partition(":")
        if not sep:
            raise MalformedHash(f"crop variant needs '<pdq hex>:<phash hex>', got {text!r}")
        return cls(HashValue.from_hex("pdq", pdq), HashValue.from_hex("phash", ph))


@dataclass(frozen=True)
class ImageHashes:
    """Every hash of one image.

    ``pdq_dihedral`` holds the PDQ hashes of the 8 rotations/flips in :data:`DIHEDRAL_NAMES`
    order; element 0 is ``pdq`` itself. A bank stores ``pdq``; a query tries all 8 against it, which
    catches mirrored and rotated re-uploads. ``trimmed`` holds the hashes of the image with its
    uniform border cut off (:func:`trim_border`) when it has one: a re-upload framed by a border
    hashes to its trimmed content, which is compared with the bank's trimmed and plain hashes.

    ``evened`` (queries only) holds the plain hashes of the image trimmed by the same amount on
    opposite sides (:func:`even_box`): a border added around a photo shot on a light background
    is trimmed into the photo on the sides where the background matches it, and the even trim
    recovers the photo itself.

    ``reference`` holds the version-1 (reference) dihedral PDQ hashes and their quality, for
    entries hashed that way. ``partials`` holds the hashes of the partial images of
    :data:`karung.vision.variants.QUERY_CROPS` whose PDQ is usable, in that order and with
    their positions in it (``partial_specs``); position 0 is the centred crop a bank entry stores.
    ``phash_mirrored`` (queries only) is the pHash of the image mirrored left to right: a
    mirrored copy that was also captioned is too far from the bank's PDQ for the dihedral
    variants half the time, and its pHash mirrored back is not.
    """

    pdq: HashValue
    pdq_quality: int
    pdq_dihedral: tuple[HashValue, ...]
    phash: HashValue
    trimmed: ImageHashes | None = None
    reference: tuple[tuple[HashValue, ...], int] | None = None
    partials: tuple[CropHashes, ...] = ()
    partial_specs: tuple[int, ...] = ()
    evened: ImageHashes | None = None
    phash_mirrored: HashValue | None = None

    @property
    def pdq_usable(self) -> bool:
        """Whether the PDQ hash is good enough to match on (quality >= :data:`MIN_PDQ_QUALITY`)."""
        return self.pdq_quality >= MIN_PDQ_QUALITY

    def variants(self) -> tuple[ImageHashes, ...]:
        """This set of hashes and, when present, the trimmed and the evenly trimmed ones (the
        order queries try them; a bank entry stores the first two only)."""
        return (self, *(v for v in (self.trimmed, self.evened) if v is not None))

    def stored_variants(self) -> tuple[ImageHashes, ...]:
        """The variants a bank entry keeps: this set of hashes and the trimmed one."""
        return (self,) if self.trimmed is None else (self, self.trimmed)

    @property
    def stored_crop(self) -> CropHashes | None:
        """The centred crop's hashes a bank entry keeps (None when its PDQ is not usable)."""
        return self.partials[0] if self.partial_specs[:1] == (0,) else None


def hash_input(image: Image.Image) -> Image.Image:
    """The RGB image the hashes are computed on: at most :data:`HASH_MAX_SIDE` per side."""
    img = image if image.mode == "RGB" else image.convert("RGB")
    if max(img.size) > HASH_MAX_SIDE:
        img = img.copy()
        img.thumbnail((HASH_MAX_SIDE, HASH_MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if min(img.size) < 2 <= min(image.size):
            # A strip (2x20000) would shrink to 1 px across and lose every hash: keep 2.
            size = (max(2, img.width), max(2, img.height))
            img = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    return img


def decode_for_hashing(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
) -> Image.Image:
    """Decode untrusted ``data`` the way every hashed image is decoded (bank and queries alike).

    Raises the typed errors of :func:`karung.vision.decode.decode_image`.
    """
    image = decode_image(
        data,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        target_size=HASH_DECODE_TARGET,
        max_decode_bytes=max_decode_bytes,
    )
    return hash_input(image)


def compute_hashes(image: Image.Image, *, trim: bool = True, partials: bool = True) -> ImageHashes:
    """PDQ (version 2, with quality and the 8 dihedral variants), reference PDQ and pHash.

    With ``trim`` (the default) an image framed by a uniform border also gets the hashes of its
    content without the border in :attr:`ImageHashes.trimmed`; with ``partials`` the hashes of
    its partial images (:attr:`ImageHashes.partials`).

    Raises:
        TooSmallToHash: the image is smaller than 2x2 pixels (nothing to hash).
    """
    if image.width < 2 or image.height < 2:
        raise TooSmallToHash(
            f"a {image.width}x{image.height} image has no perceptual hash (sha256 only)"
        )
    img = hash_input(image)
    pixels = _rgb_array(img)  # one array for the border check and PDQ
    box = trim_box(pixels) if trim else None
    trimmed = (
        compute_hashes(img.crop(box), trim=False, partials=partials) if box is not None else None
    )
    even = even_box(box, img.size) if box is not None else None
    evened = _plain_hashes(img.crop(even)) if even is not None and even != box else None
    dihedral, quality = pdq_dihedral(img)
    crops, specs = _partials(img) if partials else ((), ())
    plain, mirrored = phash_both_ways(img)
    return ImageHashes(
        pdq=dihedral[0],
        pdq_quality=quality,
        pdq_dihedral=dihedral,
        phash=plain,
        trimmed=trimmed,
        reference=_pdq_from_rgb(pixels),
        partials=crops,
        partial_specs=specs,
        evened=evened,
        phash_mirrored=mirrored,
    )


def _plain_hashes(img: Image.Image) -> ImageHashes:
    """Version-2 PDQ (dihedral) and pHash only: no trimmed, reference or partial hashes."""
    dihedral, quality = pdq_dihedral(img)
    return ImageHashes(dihedral[0], quality, dihedral, phash(img))


def normalise_for_pdq(image: Image.Image) -> Image.Image:
    """``image`` area-averaged (or, when smaller, interpolated) to PDQ_SIDE x PDQ_SIDE, RGB."""
    img = image if image.mode == "RGB" else image.convert("RGB")
    if img.size == (PDQ_SIDE, PDQ_SIDE):
        return img
    shrink = min(img.size) >= PDQ_SIDE
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return img.resize((PDQ_SIDE, PDQ_SIDE), method)


def _partials(img: Image.Image) -> tuple[tuple[CropHashes, ...], tuple[int, ...]]:
    """Hashes of the usable partial images of :data:`variants.QUERY_CROPS` and their positions
    (:mod:`karung.vision.partial_hash`: all of them in a few batched NumPy products)."""
    factor = -(-max(img.size) // PARTIAL_SIDE)  # integer box reduction: cheap and exact
    small = img.reduce(factor) if factor > 1 else img
    batch = partial_hash.partial_squares(_rgb_array(small))
    pdqs, qualities = partial_hash.pdq(batch)
    phashes = partial_hash.phash(batch)
    crops: list[CropHashes] = []
    specs: list[int] = []
    for position, (p, quality, h) in enumerate(zip(pdqs, qualities, phashes, strict=True)):
        if quality >= MIN_PDQ_QUALITY:
            crops.append(CropHashes(HashValue("pdq", p), HashValue("phash", h)))
            specs.append(position)
    return tuple(crops), tuple(specs)


def pdq_dihedral(image: Image.Image) -> tuple[tuple[HashValue, ...], int]:
    """The 8 dihedral version-2 PDQ hashes of an image and its quality (0..100)."""
    return _pdq_from_rgb(_rgb_array(normalise_for_pdq(image)))


def reference_pdq_dihedral(image: Image.Image) -> tuple[tuple[HashValue, ...], int]:
    """The 8 dihedral version-1 (reference) PDQ hashes of an RGB image and its quality."""
    return _pdq_from_rgb(_rgb_array(image))


def _rgb_array(image: Image.Image) -> np.ndarray:
    """A C-contiguous (H, W, 3) uint8 view of ``image`` (no copy when it is already RGB)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _pdq_from_rgb(pixels: np.ndarray) -> tuple[tuple[HashValue, ...], int]:
    try:
        native = pdq_native.load()
    except pdq_native.NativePdqUnavailable:
        return _pdq_binding(pixels)
    words, quality = native(pixels)
    return tuple(HashValue("pdq", bits) for bits in words), quality


def _pdq_binding(pixels: np.ndarray) -> tuple[tuple[HashValue, ...], int]:
    """pdqhash's Cython binding: the reference :mod:`karung.vision.pdq_native` must equal."""
    import pdqhash

    vectors, quality = pdqhash.compute_dihedral(pixels)
    # The binding returns bit 255 first, so packing MSB-first yields the reference hex layout.
    return tuple(HashValue("pdq", _pack(vec)) for vec in vectors), int(quality)


def phash(image: Image.Image) -> HashValue:
    """The 64-bit DCT pHash of ``image`` (``imagehash.phash``)."""
    import imagehash

    value = imagehash.phash(image)
    return HashValue("phash", _pack(np.asarray(value.hash).reshape(-1)))


def phash_both_ways(image: Image.Image) -> tuple[HashValue, HashValue]:
    """:func:`phash` of ``image`` and of ``image`` mirrored left to right, from one reduction
    (``imagehash.phash`` reduces to 32 x 32 grey first, which a mirror commutes with)."""
    side = 32  # imagehash's hash_size 8 times its highfreq_factor 4
    small = image.convert("L").resize((side, side), Image.Resampling.LANCZOS)
    return phash(small), phash(small.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=bool)).tobytes()
