"""A real browser (Debian's headless Chromium via playwright) moderates with the keyboard."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from review.reviewkit import PASSWORD, Live
from sqlalchemy import select

from karung.serve.review.models import AuditEntry, ReviewDecision, ReviewItem

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

AddItems = Callable[..., list[int]]


def expect(locator: Any) -> Any:
    """playwright's auto-waiting assertions (no page-side eval, which the CSP forbids)."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


@pytest.fixture
def page() -> Iterator[Any]:
    """A fresh Chromium page (1400x900)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def _wait_for(predicate: Callable[[], Any], what: str, deadline_s: float = 20.0) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _log_in(page: Any, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/review")
    assert "/review/login" in page.url  # sent to the login page first
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#grid .card.selected")


def test_keyboard_moderation_end_to_end(
    live_factory: Callable[..., Live], add_items: AddItems, page: Any, tmp_path: Path
) -> None:
    live = live_factory(double_review_share=0.0)
    # Distinct distances to the block threshold (0.9) fix the grid order: 0.88 first.
    risks = [0.88, 0.80, 0.72, 0.64, 0.56]
    ids = [
        add_items(live.sessions, 1, risk=r, seller_id=f"seller-{i}")[0] for i, r in enumerate(risks)
    ]
    _log_in(page, live.base_url, "ana")
    order = [
        int(x)
        for x in page.eval_on_selector_all("#grid .card", "cs => cs.map(c => c.dataset.itemId)")
    ]
    assert order == ids
    shot = Path(os.environ.get("KARUNG_REVIEW_SCREENSHOT", tmp_path / "queue.png"))
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000

    page.keyboard.press("1")  # first card: bale, reason 'visual'
    page.keyboard.press("r")  # reason -> 'bank_match'
    page.keyboard.press("2")  # second card: sack
    page.keyboard.press("3")  # third card: garment
    expect(page.locator("#grid .card")).to_have_count(2)
    page.keyboard.press("u")  # undo the garment: the card comes back, selected
    page.wait_for_selector(f"#grid .card.selected[data-item-id='{ids[2]}']")
    page.keyboard.press("4")  # ... and it becomes 'other'
    expect(page.locator("#grid .card")).to_have_count(2)

    def decided() -> list[tuple[int, str | None, str]]:
        with live.sessions() as s:
            rows = s.execute(
                select(ReviewItem.id, ReviewItem.final_label, ReviewItem.status).where(
                    ReviewItem.status == "decided"
                )
            ).all()
        return sorted((int(r[0]), r[1], r[2]) for r in rows)

    got = _wait_for(lambda: len(decided()) == 3 and decided(), "three decided items")
    assert got == [
        (ids[0], "bale", "decided"),
        (ids[1], "sack", "decided"),
        (ids[2], "other", "decided"),
    ]
    with live.sessions() as s:
        decisions = s.execute(
            select(
                ReviewDecision.item_id,
                ReviewDecision.label,
                ReviewDecision.reason_code,
                ReviewDecision.moderator,
                ReviewDecision.undone_at.is_not(None),
            ).order_by(ReviewDecision.id)
        ).all()
        assert [tuple(d) for d in decisions] == [
            (ids[0], "bale", "visual", "ana", False),
            (ids[1], "sack", "bank_match", "ana", False),
            (ids[2], "garment", "bank_match", "ana", True),
            (ids[2], "other", "bank_match", "ana", False),
        ]
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert [a for a in actions if a != "moderator_add"] == [
            "login",
            "decide",
            "decide",
            "decide",
            "undo",
            "decide",
        ]
    # the untouched items are still held by ana, not decided
    with live.sessions() as s:
        rest = s.execute(
            select(ReviewItem.status, ReviewItem.claimed_by).where(ReviewItem.id.in_(ids[3:]))
        ).all()
    assert [tuple(r) for r in rest] == [("claimed", "ana"), ("claimed", "ana")]

    page.goto(f"{live.base_url}/review/history")
    assert page.locator("table.table tbody tr").count() == 4
    page.goto(f"{live.base_url}/review/audit")
    assert "undo" in page.inner_text("table.audit")
