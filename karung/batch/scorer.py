"""One batch of input rows in, one result row per input out (no Ray here: testable alone).

Per row: the bytes (the service's hardened :class:`~karung.serve.fetch.Fetcher` for a ``url``,
a capped read for a ``path``), the sha256, the model input decoded exactly as ``karung score``
decodes it, the perceptual hashes from the bank's own decode
(:func:`~karung.vision.hashing.decode_for_hashing`), bank matches against the snapshot, then the
whole batch through the classifier and the service's decision policy. Every failure becomes
that row's ``error_code`` (the same stable codes as the service); the batch carries on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from karung.batch.decoding import decode_both
from karung.batch.errors import BatchError
from karung.batch.schema import empty_row
from karung.errors import KarungError
from karung.serve.bank.matcher import Match, Matcher
from karung.serve.bank.store import NewEntry
from karung.serve.fetch import Fetcher, FetchLimits
from karung.serve.policy import decide, resolve_thresholds
from karung.serve.review.queue import make_thumbnail
from karung.vision.classifier import Classifier
from karung.vision.crops import crop_hashes
from karung.vision.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from karung.vision.errors import ImageTooLarge
from karung.vision.hashing import ImageHashes, compute_hashes
from karung.vision.labels import Decision, Thresholds

log = logging.getLogger("karung.batch.scorer")


class ItemInvalid(BatchError, code="item_invalid"):
    """The row has neither (or both) of ``url`` and ``path``."""


class FileUnreadable(BatchError, code="file_unreadable"):
    """A ``path`` row's file is missing or cannot be read (``karung score``'s code)."""


@dataclass(frozen=True)
class ScorerOptions:
    """How rows are fetched, decoded and decided, and which side outputs the driver wants."""

    fetch: FetchLimits = field(default_factory=FetchLimits)
    max_bytes: int = DEFAULT_MAX_BYTES  # files and decoding (karung score's default)
    max_pixels: int = DEFAULT_MAX_PIXELS
    block_threshold: float | None = None  # None: the model's
    review_threshold: float | None = None
    thumbnails: bool = False  # --enqueue-review: review-band rows carry a thumbnail
    bank_name: str | None = None  # --add-to-bank: rows with risk >= min_risk carry an entry
    min_risk: float = 1.0


@dataclass
class _Prepared:
    sha256: str
    model_image: Image.Image
    hash_image: Image.Image
    hashes: ImageHashes
    matches: list[Match]


def error_code(exc: BaseException) -> str:
    """The stable code of a per-row failure (``internal_error`` for anything unexpected)."""
    return exc.code if isinstance(exc, KarungError) else "internal_error"


class BatchScorer:
    """Scores batches of rows with one classifier and one bank matcher (one per worker)."""

    def __init__(self, classifier: Classifier, matcher: Matcher, options: ScorerOptions) -> None:
        self.classifier = classifier
        self.matcher = matcher
        self.options = options
        self.thresholds: Thresholds = resolve_thresholds(
            classifier.thresholds, (options.block_threshold, options.review_threshold)
        )
        self._loop = asyncio.new_event_loop()  # one loop per worker: the fetcher's semaphore
        self.fetcher = Fetcher(options.fetch)

    def score_rows(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """A result row per input row, in order."""
        version = self.classifier.model_version
        rows = [empty_row(item, version) for item in items]
        blobs = self._loop.run_until_complete(self._read_all(items))
        ready: list[tuple[dict[str, Any], _Prepared]] = []
        for row, blob in zip(rows, blobs, strict=True):
            try:
                if isinstance(blob, BaseException):
                    raise blob
                row["sha256"] = hashlib.sha256(blob).hexdigest()  # kept on decode errors too
                ready.append((row, self._prepare(blob, row["sha256"])))
            except Exception as exc:  # per-row isolation: the row reports it
                _fail(row, exc)
        self._decide(ready)
        return rows

    async def _read_all(self, items: Sequence[dict[str, Any]]) -> list[bytes | BaseException]:
        results = await asyncio.gather(
            *(self._read(item) for item in items), return_exceptions=True
        )
        return list(results)

    async def _read(self, item: dict[str, Any]) -> bytes:
        url, path = item.get("url"), item.get("path")
        if (url is None) == (path is None):
            raise ItemInvalid("a row needs exactly one of url and path")
        if url is not None:
            return (await self.fetcher.fetch(str(url))).data
        return _read_file(Path(str(path)), self.options.max_bytes)

    def _prepare(self, data: bytes, sha: str) -> _Prepared:
        """Decode as the two consumers expect (:func:`decode_both`): ``karung score``'s model
        input, and the bank's hashing decode (hashing any other decode moves PDQ by ~6 bits)."""
        size = self.classifier.preprocessing.input_size  # from the checkpoint, never fixed
        model_image, hash_image = decode_both(
            data, size, max_bytes=self.options.max_bytes, max_pixels=self.options.max_pixels
        )
        hashes = compute_hashes(hash_image)
        matches = self.matcher.match(hashes, sha)
        return _Prepared(sha, model_image, hash_image, hashes, matches)

    def _decide(self, ready: list[tuple[dict[str, Any], _Prepared]]) -> None:
        if not ready:
            return
        clf = self.classifier
        try:
            probs = clf.predict_proba([p.model_image for _, p in ready])
        except Exception as exc:  # the model itself failed: every row of the batch says so
            log.exception("the model failed on a batch of %d images", len(ready))
            for row, _ in ready:
                _fail(row, exc)
            return
        risks = clf.risk(probs)
        for (row, prepared), row_probs, risk in zip(ready, probs, risks, strict=True):
            self._fill(row, prepared, row_probs, float(risk))

    def _fill(self, row: dict[str, Any], prep: _Prepared, probs: np.ndarray, risk: float) -> None:
        labels = self.classifier.labels
        verdict = decide(risk, prep.matches, self.thresholds)
        row.update(
            sha256=prep.sha256,
            scores={name: round(float(p), 6) for name, p in zip(labels, probs, strict=True)},
            risk=round(risk, 6),
            label=labels[int(np.argmax(probs))],
            decision=str(verdict.decision),
            model_decision=str(verdict.model_decision),
            reasons=list(verdict.reasons),
            matches=[m.to_dict() for m in prep.matches],
            pdq=prep.hashes.pdq.hex(),
            pdq_quality=prep.hashes.pdq_quality,
            phash=prep.hashes.phash.hex(),
        )
        if self.options.thumbnails and verdict.decision is Decision.REVIEW:
            row["_thumbnail"] = make_thumbnail(prep.model_image)
        if self.options.bank_name is not None and risk >= self.options.min_risk:
            row["_bank_entry"] = pickle.dumps(self._bank_entry(row, prep))

    def _bank_entry(self, row: dict[str, Any], prep: _Prepared) -> NewEntry:
        """The entry ``karung bank add`` would store for this photo (crop variants included)."""
        return NewEntry.from_hashes(
            str(self.options.bank_name),
            prep.sha256,
            prep.hashes,
            crops=crop_hashes(prep.hash_image),
            listing_id=row["listing_id"],
            seller_id=row["seller_id"],
            source_url=row["url"],
            added_by="karung backfill",
        )


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageTooLarge(f"{size} bytes exceeds the limit of {max_bytes}")
        return path.read_bytes()
    except OSError as exc:
        raise FileUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc


def _fail(row: dict[str, Any], exc: BaseException) -> None:
    code = error_code(exc)
    if code == "internal_error":
        log.error("row %s failed", row["input_index"], exc_info=exc)
    row["error_code"] = code
    row["error_message"] = str(exc) if code != "internal_error" else "internal error"
