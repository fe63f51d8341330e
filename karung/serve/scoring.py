"""The scoring pipeline behind ``POST /v1/score``.

Per item, concurrently: get the bytes (fetch the URL, decode base64 or take the upload), then in
the intake pool (:mod:`karung.serve.intake`, worker processes) hash the bytes, decode at model
size, preprocess and compute the perceptual hashes, then look them up in the bank (a thread),
then get probabilities from the micro-batcher, then apply :mod:`karung.serve.policy`. Every
failure is caught per item, so one bad item never fails the batch. Finally, in one transaction,
review-band items and the QC sample go to the moderators' queue and bank matches are recorded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.admission import DecodeMemory, RequestBudget
from karung.serve.batcher import MicroBatcher
from karung.serve.drift import RiskSample, record_batch
from karung.serve.errors import ItemError, item_error
from karung.serve.fetch import Fetcher
from karung.serve.fetch_errors import FetchError
from karung.serve.intake import Intake, IntakePool
from karung.serve.metrics import Metrics
from karung.serve.policy import decide, queue_reason
from karung.serve.review.diverse import DiverseSampler
from karung.serve.review.queue import QueueItemIn, enqueue, make_thumbnail
from karung.serve.verdict import FailedItem, ItemRef, ItemVerdict, Match, ScoredItem
from karung.vision.classifier import Classifier
from karung.vision.decode import DEFAULT_MAX_DECODE_BYTES, decode_cost, decode_image
from karung.vision.errors import ImageTooComplex, ImageTooLarge
from karung.vision.hashing import HASH_DECODE_TARGET, ImageHashes
from karung.vision.labels import Thresholds

log = logging.getLogger("karung.serve.scoring")


class InvalidItem(ItemError, code="item_invalid"):
    """The item has neither (or both) of ``url`` and ``image_base64``."""


class InvalidBase64(ItemError, code="invalid_base64"):
    """``image_base64`` is not valid base64."""


class BankLike(Protocol):
    """The part of the hash bank the scorer uses."""

    def match_hashes(
        self, hashes: ImageHashes | None, sha256: str | None = None
    ) -> Sequence[Match]: ...

    def record_match_event(
        self,
        query_sha256: str,
        seller_id: str | None,
        listing_id: str | None,
        matches: Sequence[Match],
    ) -> Any: ...


@dataclass(frozen=True)
class ScoreItem:
    """One image to score and the listing it belongs to."""

    url: str | None = None
    image_base64: str | None = None
    data: bytes | None = None  # multipart upload
    listing_id: str | None = None
    seller_id: str | None = None
    category: str | None = None
    invalid: str | None = None  # why the raw item did not validate (reported in its slot)


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding may cost: per image, per request, and how long an item waits for room."""

    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES
    request_pixels: int = 200_000_000
    wait_seconds: float = 30.0


@dataclass(frozen=True)
class ScoreContext:
    """Everything fixed for one request: the model captured at its start and the policy."""

    classifier: Classifier
    thresholds: Thresholds
    sample_allow: float
    sample_block: float
    rng: random.Random = field(default_factory=random.Random)
    key: str | None = None  # the API key's name: its share of the fetch slots


@dataclass(frozen=True)
class Prepared:
    """An item after intake and matching: its bytes, content hash, model input, bank matches."""

    data: bytes
    sha256: str
    pixels: np.ndarray  # (1, S, S, 3) uint8 model input
    matches: tuple[Match, ...]
    hash_note: str | None = None  # why the image has no perceptual hash (too small)


@dataclass
class _Outcome:
    verdict: ItemVerdict
    prepared: Prepared | None = None
    queue_reason: str | None = None


def decode_base64(text: str, max_bytes: int) -> bytes:
    """Decode ``image_base64`` (a ``data:`` URL prefix is tolerated) under the byte cap."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise ImageTooLarge(f"image_base64 decodes to more than {max_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(f"image_base64 is not valid base64: {exc}") from exc


class Scorer:
    """Runs the pipeline for one request at a time (many requests may share one scorer)."""

    # Set by the review area when diverse sampling is on (karung.serve.review.diverse).
    diverse: DiverseSampler | None = None

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        batcher: MicroBatcher,
        intake: IntakePool,
        decode_pool: Executor,
        sessions: sessionmaker[Session],
        metrics: Metrics,
        bank: Callable[[], BankLike | None],
        max_bytes: int,
        max_pixels: int,
        decode: DecodeLimits | None = None,
        memory: DecodeMemory | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.batcher = batcher
        self.intake = intake
        self.decode_pool = decode_pool  # threads: bank lookups, queue writes, thumbnails
        self.sessions = sessions
        self.metrics = metrics
        self._bank = bank
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.decode = decode or DecodeLimits()
        self.memory = memory or DecodeMemory(4 * self.decode.max_decode_bytes)

    async def score(self, items: Sequence[ScoreItem], ctx: ScoreContext) -> list[ItemVerdict]:
        """Score ``items`` in order; failures are reported per item (a :class:`FailedItem`)."""
        self.metrics.batch_items.observe(len(items))
        budget = RequestBudget(self.decode.request_pixels)
        outcomes = await asyncio.gather(
            *(self._one(i, item, ctx, budget) for i, item in enumerate(items))
        )
        queued = [
            o for o in outcomes if o.queue_reason is not None or (o.prepared and o.prepared.matches)
        ]
        if queued:
            await asyncio.get_running_loop().run_in_executor(
                self.decode_pool, self._persist, queued, ctx
            )
        verdicts = [o.verdict for o in outcomes]
        # Drift: one upsert per batch into the per-day risk histogram (karung.serve.drift).
        samples = [RiskSample.of(v) for v in verdicts if isinstance(v, ScoredItem)]
        if samples:  # a batch of errors only has nothing to count: no thread hop, no transaction
            await asyncio.get_running_loop().run_in_executor(
                self.decode_pool, record_batch, self.sessions, samples
            )
        return verdicts

    async def _one(
        self, index: int, item: ScoreItem, ctx: ScoreContext, budget: RequestBudget
    ) -> _Outcome:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        base = ItemRef(index, item.url, item.listing_id, item.seller_id, item.category)
        try:
            data = await self._bytes(item, timings, ctx)
            t0 = time.perf_counter()
            prepared = await self._prepare(data, ctx.classifier, budget)
            timings["decode_ms"] = _ms(t0)
            t0 = time.perf_counter()
            probs = await self.batcher.probs(ctx.classifier, prepared.pixels)
            timings["infer_ms"] = _ms(t0)
        except Exception as exc:  # per-item isolation: report, count, carry on
            return self._failed(base, exc, timings, started)
        return self._scored(base, prepared, probs, ctx, timings, started)

    async def _prepare(
        self, data: bytes, classifier: Classifier, budget: RequestBudget
    ) -> Prepared:
        """Admission (the image's decode cost from its header, against the per-image budget,
        the request's pixels and the process's decoding memory), intake on a worker, then the
        bank lookup on a thread (the index lives here)."""
        bank = self._bank()
        pre = classifier.preprocessing
        # The smaller target decodes larger: cost the larger of the two decodes intake may do.
        target = min(pre.input_size, HASH_DECODE_TARGET) if bank is not None else pre.input_size
        cost = decode_cost(
            data, max_bytes=self.max_bytes, max_pixels=self.max_pixels, target_size=target
        )
        limit = self.decode.max_decode_bytes
        if cost.peak_bytes > limit:
            raise ImageTooComplex(
                f"decoding this {cost.width}x{cost.height} image would take about "
                f"{cost.peak_bytes // 2**20} MiB; the limit is {limit // 2**20} MiB"
            )
        budget.take(cost.pixels)
        async with self.memory.reserve(cost.peak_bytes, self.decode.wait_seconds):
            got: Intake = await self.intake.run(
                data, pre, self.max_bytes, self.max_pixels, bank is not None, limit
            )
        matches: Sequence[Match] = ()
        if bank is not None:
            matches = await asyncio.get_running_loop().run_in_executor(
                self.decode_pool, bank.match_hashes, got.hashes, got.sha256
            )
        return Prepared(data, got.sha256, got.pixels, tuple(matches), got.hash_note)

    async def _bytes(self, item: ScoreItem, timings: dict[str, float], ctx: ScoreContext) -> bytes:
        if item.invalid is not None:
            raise InvalidItem(item.invalid)
        given = [x is not None for x in (item.url, item.image_base64, item.data)]
        if sum(given) != 1:
            raise InvalidItem("give exactly one of url, image_base64 or an uploaded file")
        if item.url is not None:
            t0 = time.perf_counter()
            result = await self.fetcher.fetch(item.url, ctx.key)
            timings["fetch_ms"] = _ms(t0)
            self.metrics.stage_seconds.labels("fetch").observe(timings["fetch_ms"] / 1000)
            return result.data
        if item.image_base64 is not None:
            return decode_base64(item.image_base64, self.max_bytes)
        if item.data is None:
            raise InvalidItem("no image given")
        return item.data

    def _failed(
        self, base: ItemRef, exc: Exception, timings: dict[str, float], started: float
    ) -> _Outcome:
        err = item_error(exc)
        code = err["code"]
        extra = {"index": base.index, "code": code, "listing_id": base.listing_id}
        if code == "internal_error":
            log.error("item %s failed", base.index, exc_info=exc, extra=extra)
        else:  # the client's problem, not ours: info, with the code and no URL or bytes
            log.info("item %s failed: %s", base.index, code, extra=extra)
        if isinstance(exc, FetchError):
            self.metrics.fetch_errors.labels(code).inc()
        self.metrics.item_errors.labels(code).inc()
        timings["total_ms"] = _ms(started)
        return _Outcome(FailedItem(base, code, err["message"], timings))

    def _scored(
        self,
        base: ItemRef,
        prepared: Prepared,
        probs: np.ndarray,
        ctx: ScoreContext,
        timings: dict[str, float],
        started: float,
    ) -> _Outcome:
        clf = ctx.classifier
        risk = float(clf.risk_head.risk(probs[None, :])[0])
        policy = decide(risk, prepared.matches, ctx.thresholds)
        reason = queue_reason(policy.decision, ctx.rng.random(), ctx.sample_allow, ctx.sample_block)
        if reason is None and self.diverse is not None:  # karung.serve.review.diverse
            reason = self.diverse.pick(prepared.pixels, ctx.rng, prepared.sha256)
        self.metrics.decisions.labels(str(policy.decision)).inc()
        if prepared.matches:
            self.metrics.bank_matches.inc()
        timings["total_ms"] = _ms(started)
        self.metrics.stage_seconds.labels("total").observe(timings["total_ms"] / 1000)
        verdict = ScoredItem(
            ref=base,
            sha256=prepared.sha256,
            scores={name: round(float(p), 6) for name, p in zip(clf.labels, probs, strict=True)},
            risk=round(risk, 6),
            label=clf.labels[int(np.argmax(probs))],
            model_decision=policy.model_decision,
            decision=policy.decision,
            reasons=tuple(policy.reasons),
            matches=prepared.matches,
            model_version=clf.model_version,
            notes=(prepared.hash_note,) if prepared.hash_note else (),
            timings_ms=timings,
        )
        return _Outcome(verdict, prepared, reason)

    def _persist(self, outcomes: list[_Outcome], ctx: ScoreContext) -> None:
        """Queue review/QC items in one transaction, then record bank matches (worker thread)."""
        queued = [
            (o, o.verdict, o.prepared, o.queue_reason)
            for o in outcomes
            if isinstance(o.verdict, ScoredItem)
            and o.queue_reason is not None
            and o.prepared is not None
        ]
        try:
            # Thumbnails before the transaction: decoding and encoding inside it would hold
            # the write lock.
            thumbs = [self._thumbnail(prepared, ctx) for _, _, prepared, _ in queued]
            with self.sessions() as session, session.begin():
                for (outcome, scored, _, reason), thumb in zip(queued, thumbs, strict=True):
                    item_id = self._enqueue(session, scored, thumb, reason, ctx)
                    outcome.verdict = replace(scored, review_item_id=item_id)
        except Exception:  # the platform still gets its answer; the failure is logged
            log.exception("could not enqueue %d item(s) for review", len(queued))
        bank = self._bank()
        for outcome in outcomes:
            verdict = outcome.verdict
            if bank is None or not isinstance(verdict, ScoredItem) or not verdict.matches:
                continue
            try:
                ref = verdict.ref
                bank.record_match_event(
                    verdict.sha256, ref.seller_id, ref.listing_id, verdict.matches
                )
            except Exception:
                log.exception("could not record a bank match event")

    def _thumbnail(self, prepared: Prepared, ctx: ScoreContext) -> bytes:
        """The review thumbnail of a queued item, from the image decoded again: only queued
        items (the review band and a small QC sample) need pixels after intake, so the workers
        do not send them back."""
        image = decode_image(
            prepared.data,
            max_bytes=self.max_bytes,
            max_pixels=self.max_pixels,
            target_size=ctx.classifier.preprocessing.input_size,
            max_decode_bytes=self.decode.max_decode_bytes,
        )
        return make_thumbnail(image)

    def _enqueue(
        self,
        session: Session,
        verdict: ScoredItem,
        thumbnail: bytes,
        reason: str,
        ctx: ScoreContext,
    ) -> int:
        item_id = enqueue(
            session,
            QueueItemIn(
                sha256=verdict.sha256,
                thumbnail=thumbnail,
                scores=dict(verdict.scores),
                risk=verdict.risk,
                # What the model decided, not the final decision: a bank match's block is
                # not the model's (moderators and the webhook compare the two).
                model_decision=str(verdict.model_decision),
                model_version=verdict.model_version,
                block_threshold=ctx.thresholds.block,
                reason=reason,
                url=verdict.ref.url,
                listing_id=verdict.ref.listing_id,
                seller_id=verdict.ref.seller_id,
                matches=verdict.matches,
            ),
        )
        self.metrics.review_enqueued.labels(reason).inc()
        return item_id


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
