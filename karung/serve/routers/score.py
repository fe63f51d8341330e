"""``POST /v1/score`` (JSON: URLs or base64) and ``POST /v1/score/upload`` (multipart files)."""

from __future__ import annotations

import random
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from karung.serve.auth.keys import Principal
from karung.serve.deps import ClassifierDep, ScorerDep, ScoreScope, SettingsDep
from karung.serve.errors import PayloadTooLarge
from karung.serve.logs import current_request_id
from karung.serve.policy import resolve_thresholds
from karung.serve.scoring import ScoreContext, ScoreItem
from karung.serve.settings import Settings
from karung.serve.verdict import ItemVerdict
from karung.vision.classifier import Classifier
from karung.vision.labels import Thresholds

router = APIRouter(prefix="/v1", tags=["score"])


class ScoreItemIn(BaseModel):
    """One image: exactly one of ``url`` and ``image_base64``, plus listing metadata."""

    model_config = ConfigDict(extra="ignore")

    url: str | None = Field(
        default=None, max_length=4096, examples=["https://cdn.example/p/123.jpg"]
    )
    image_base64: str | None = Field(default=None, description="the encoded image, base64")
    listing_id: str | None = Field(default=None, max_length=256)
    seller_id: str | None = Field(default=None, max_length=256)
    category: str | None = Field(default=None, max_length=128)


class ThresholdsIn(BaseModel):
    """Per-request overrides of the decision thresholds on ``risk = P(bale) + P(sack)``."""

    block: float | None = Field(default=None, ge=0, le=1)
    review: float | None = Field(default=None, ge=0, le=1)


# Items are validated one by one: a malformed item, even a string or null where an object
# belongs, is reported in its slot, not as a 422 for the whole batch.
RawItem = Annotated[Any, WithJsonSchema(ScoreItemIn.model_json_schema())]
# The schema's cap is the largest KARUNG_MAX_ITEMS allows; the setting is checked on top.
ITEMS_CAP = 1024


class ScoreRequest(BaseModel):
    """Up to ``KARUNG_MAX_ITEMS`` (64) images; answers keep this order."""

    items: list[RawItem] = Field(min_length=1, max_length=ITEMS_CAP)
    thresholds: ThresholdsIn | None = None


class ItemErrorOut(BaseModel):
    """Why one item could not be scored."""

    code: str
    message: str


class ScoreItemOut(BaseModel):
    """The verdict on one item (``status`` ok) or its error (``status`` error)."""

    index: int
    status: Literal["ok", "error"]
    url: str | None = None
    listing_id: str | None = None
    seller_id: str | None = None
    category: str | None = None
    error: ItemErrorOut | None = None
    sha256: str | None = None
    scores: dict[str, float] | None = None
    risk: float | None = None
    label: str | None = None
    decision: Literal["block", "review", "allow"] | None = None
    model_decision: Literal["block", "review", "allow"] | None = None
    reasons: list[str] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list, description="e.g. why an image has no perceptual hash (1x1)"
    )
    matches: list[dict[str, Any]] = Field(default_factory=list)
    model_version: str | None = None
    review_item_id: int | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


class ScoreResponse(BaseModel):
    """Answers in request order, the model and thresholds used."""

    model_version: str
    thresholds: dict[str, float]
    request_id: str | None
    items: list[ScoreItemOut]
    timings_ms: dict[str, float]


@router.post("/score", response_model=ScoreResponse, response_model_exclude_none=False)
async def score(
    body: ScoreRequest,
    principal: ScoreScope,
    classifier: ClassifierDep,
    scorer: ScorerDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Score image URLs (or base64 images) of listings: block, review or allow each."""
    started = time.perf_counter()
    _check_count(len(body.items), settings)
    override = (body.thresholds.block, body.thresholds.review) if body.thresholds else None
    ctx = _context(classifier, settings, principal, override)
    items = [_parse_item(raw) for raw in body.items]
    results = await scorer.score(items, ctx)
    return _response(ctx, results, started)


@router.post("/score/upload", response_model=ScoreResponse)
async def score_upload(
    principal: ScoreScope,
    classifier: ClassifierDep,
    scorer: ScorerDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="one or more image files")],
    listing_id: Annotated[str | None, Form(max_length=256)] = None,
    seller_id: Annotated[str | None, Form(max_length=256)] = None,
    category: Annotated[str | None, Form(max_length=128)] = None,
    block_threshold: Annotated[float | None, Form(ge=0, le=1)] = None,
    review_threshold: Annotated[float | None, Form(ge=0, le=1)] = None,
) -> dict[str, Any]:
    """Score uploaded image files (multipart); the listing fields apply to every file."""
    started = time.perf_counter()
    _check_count(len(files), settings)
    ctx = _context(classifier, settings, principal, (block_threshold, review_threshold))
    items = []
    for upload in files:
        # Read one byte past the cap so an oversized file is reported, not silently cut.
        data = await upload.read(settings.max_upload_bytes + 1)
        items.append(
            ScoreItem(data=data, listing_id=listing_id, seller_id=seller_id, category=category)
        )
    results = await scorer.score(items, ctx)
    return _response(ctx, results, started)


def _check_count(count: int, settings: Settings) -> None:
    if count > settings.max_items:
        raise PayloadTooLarge(f"{count} items; at most {settings.max_items} per request")


def _context(
    classifier: Classifier,
    settings: Settings,
    principal: Principal,
    request_override: tuple[float | None, float | None] | None,
) -> ScoreContext:
    # Overrides that do not form 0 <= review <= block <= 1 answer 422 invalid_thresholds.
    thresholds = resolve_thresholds(
        classifier.thresholds,
        (settings.block_threshold, settings.review_threshold),
        (principal.block_threshold, principal.review_threshold),
        request_override or (None, None),
    )
    return ScoreContext(
        classifier=classifier,
        thresholds=thresholds,
        sample_allow=settings.review_sample_allow,
        sample_block=settings.review_sample_block,
        rng=random.Random(),
        key=principal.name,
    )


def _parse_item(raw: Any) -> ScoreItem:
    if not isinstance(raw, dict):
        return ScoreItem(invalid=f"an item must be a JSON object, got {_json_type(raw)}")
    try:
        item = ScoreItemIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ScoreItem(invalid=f"{where}: {first.get('msg', 'invalid')}")
    return ScoreItem(**item.model_dump())  # the same five fields, validated


def _json_type(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if value is None:
        return "null"
    return "an array" if isinstance(value, list) else names.get(type(value), "a value")


def _response(ctx: ScoreContext, results: list[ItemVerdict], started: float) -> dict[str, Any]:
    thresholds: Thresholds = ctx.thresholds
    return {
        "model_version": ctx.classifier.model_version,
        "thresholds": thresholds.to_dict(),
        "request_id": current_request_id(),
        "items": [r.to_dict() for r in results],  # the one place verdicts become JSON
        "timings_ms": {"total": round((time.perf_counter() - started) * 1000, 2)},
    }
