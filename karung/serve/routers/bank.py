"""The hash bank over HTTP: add known-bad photos (URL or upload), remove them, look hashes up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from karung.serve.auth.keys import Principal
from karung.serve.bank.errors import BankError
from karung.serve.bank.service import BankService
from karung.serve.deps import BankDep, BankReadScope, BankWriteScope, SettingsDep
from karung.serve.errors import InvalidInput
from karung.serve.scoring import decode_base64
from karung.vision.errors import KarungVisionError

router = APIRouter(prefix="/v1/bank", tags=["bank"])


class EntryIn(BaseModel):
    """A known-bad photo: exactly one of ``url`` and ``image_base64``, with its provenance."""

    url: str | None = Field(default=None, max_length=4096)
    image_base64: str | None = None
    bank: str = Field(default="default", max_length=64)
    listing_id: str | None = Field(default=None, max_length=256)
    seller_id: str | None = Field(default=None, max_length=256)
    note: str | None = Field(default=None, max_length=1000)


@router.post("/entries", status_code=status.HTTP_201_CREATED)
async def add_entry(
    body: EntryIn,
    principal: BankWriteScope,
    bank: BankDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Add a photo by URL (fetched with the hardened fetcher) or base64; 200 if already there."""
    if (body.url is None) == (body.image_base64 is None):
        raise InvalidInput("give exactly one of url and image_base64", code="item_invalid")
    # Fetch and image errors answer 422 with their own code (karung.serve.errors).
    if body.url is not None:
        fetcher = request.app.state.scorer.fetcher
        data = (await fetcher.fetch(body.url, principal.name)).data
    else:
        data = decode_base64(body.image_base64 or "", settings.max_upload_bytes)
    fields = body.model_dump(exclude={"url", "image_base64"})
    return await _add(bank, data, principal, response, source_url=body.url, **fields)


@router.post("/entries/upload", status_code=status.HTTP_201_CREATED)
async def upload_entry(
    principal: BankWriteScope,
    bank: BankDep,
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="the known-bad photo")],
    bank_name: Annotated[str, Form(alias="bank", max_length=64)] = "default",
    listing_id: Annotated[str | None, Form(max_length=256)] = None,
    seller_id: Annotated[str | None, Form(max_length=256)] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
) -> dict[str, Any]:
    """Add an uploaded photo (multipart) to the bank."""
    data = await file.read(settings.max_upload_bytes + 1)
    return await _add(
        bank, data, principal, response,
        bank=bank_name, listing_id=listing_id, seller_id=seller_id, note=note, source_url=None,
    )  # fmt: skip


async def _add(
    service: BankService, data: bytes, principal: Principal, response: Response, **fields: Any
) -> dict[str, Any]:
    # An unknown bank answers 404, a bad entry or image 422, each with its code.
    result = await run_in_threadpool(
        lambda: service.add_image(data, added_by=principal.name, **fields)
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return {"entry": result.entry.to_dict(), "created": result.created}


@router.delete("/entries/{entry_id}")
async def remove_entry(entry_id: int, _: BankWriteScope, bank: BankDep) -> dict[str, Any]:
    """Remove an entry; every replica's index drops it at its next poll (this one at once)."""
    await run_in_threadpool(bank.remove, entry_id)  # unknown: 404 entry_not_found
    return {"removed": entry_id}


@router.get("/lookup")
async def lookup(
    _: BankReadScope,
    bank: BankDep,
    kind: Annotated[str, Query(description="pdq, phash or sha256")],
    value: Annotated[str, Query(alias="hash", description="the hash in hex")],
) -> dict[str, Any]:
    """Entries whose hash of ``kind`` is within the bank's radius of ``hash``."""
    try:
        matches = await run_in_threadpool(bank.lookup_hash, kind, value)
    except (BankError, KarungVisionError, ValueError) as exc:
        raise InvalidInput(str(exc), code=getattr(exc, "code", "invalid_hash")) from exc
    return {"kind": kind, "hash": value, "matches": [m.to_dict() for m in matches]}


@router.get("/stats")
async def stats(_: BankReadScope, bank: BankDep) -> dict[str, Any]:
    """Index size and version of this replica's in-memory index."""
    return {"index_size": int(bank.index_size), "version": int(bank.version)}
