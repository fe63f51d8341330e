"""The summary of a finished backfill: ``summary.json`` and a short ``report.md``.

Counts per decision and per error code, the sellers with the most flagged (``block`` or
``review``) listings, and clusters of sellers found by shared photos: two sellers are linked
when rows of theirs have the same sha256 or PDQ hashes within :data:`PDQ_LINK_DISTANCE` bits
(re-uploads after recompression), or when a seller's photo matched a bank entry of another
seller.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from karung.serve.bank.sellers import UnionFind
from karung.vision.hashing import MIN_PDQ_QUALITY
from karung.vision.mih import MultiIndexHashing

PDQ_LINK_DISTANCE: Final = 31  # the bank's default PDQ threshold
# Near-duplicate search runs on the driver; above this many distinct photos only exact
# (sha256 and identical PDQ) links are drawn, so a huge catalogue's summary stays minutes.
NEAR_SEARCH_MAX: Final = 500_000
TOP_SELLERS: Final = 20
FLAGGED: Final = ("block", "review")
COLUMNS: Final = [
    "listing_id", "seller_id", "sha256", "decision", "error_code", "matches", "pdq", "pdq_quality",
]  # fmt: skip


def summarise(table: pa.Table, extra: dict[str, Any]) -> dict[str, Any]:
    """The summary of ``table`` (the shards' rows), merged with ``extra`` (run facts)."""
    rows = table.select(COLUMNS).to_pylist()
    decisions = Counter(r["decision"] or "error" for r in rows)
    errors = Counter(r["error_code"] for r in rows if r["error_code"])
    clusters, method = seller_clusters(rows)
    return {
        **extra,
        "rows": len(rows),
        "decisions": dict(sorted(decisions.items())),
        "errors": dict(errors.most_common()),
        "top_sellers": top_sellers(rows),
        "seller_clusters": clusters,
        "cluster_method": method,
    }


def top_sellers(rows: Iterable[dict[str, Any]], n: int = TOP_SELLERS) -> list[dict[str, Any]]:
    """Sellers by number of distinct flagged listings (a row without listing counts alone)."""
    flagged: dict[str, set[str]] = defaultdict(set)
    for i, r in enumerate(rows):
        if r["seller_id"] and r["decision"] in FLAGGED:
            flagged[r["seller_id"]].add(r["listing_id"] or f"row:{i}")
    ranked = sorted(flagged.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:n]
    return [{"seller_id": s, "flagged_listings": len(ls)} for s, ls in ranked]


def seller_clusters(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Groups of two or more sellers linked by shared photos, largest first."""
    union = UnionFind()
    evidence: Counter[str] = Counter()
    by_photo: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        seller = r["seller_id"]
        if not seller or r["error_code"]:
            continue
        by_photo["sha:" + r["sha256"]].add(seller)
        for match in r["matches"] or []:
            if match["seller_id"] and match["seller_id"] != seller:
                _link(union, evidence, seller, match["seller_id"])
    method = _photo_links(rows, by_photo)
    for sellers in by_photo.values():
        first, *others = sorted(sellers)
        for other in others:
            _link(union, evidence, first, other)
    groups = [g for g in union.groups() if len(g) > 1]
    out = [{"sellers": g, "links": sum(evidence[s] for s in g)} for g in groups]
    return out, method


def _link(union: UnionFind, evidence: Counter[str], a: str, b: str) -> None:
    union.union(a, b)
    evidence[min(a, b)] += 1


def _photo_links(rows: list[dict[str, Any]], by_photo: dict[str, set[str]]) -> str:
    """Group sellers by identical PDQ, and by near PDQ when the catalogue is small enough."""
    usable = [
        r for r in rows
        if r["seller_id"] and r["pdq"] and (r["pdq_quality"] or 0) >= MIN_PDQ_QUALITY
    ]  # fmt: skip
    hashes = sorted({r["pdq"] for r in usable})
    for r in usable:
        by_photo["pdq:" + r["pdq"]].add(r["seller_id"])
    if not hashes or len(hashes) > NEAR_SEARCH_MAX:
        return "sha256, identical PDQ, bank matches"
    words = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8").astype(np.uint64)
    words = words.reshape(len(hashes), 4)
    index = MultiIndexHashing.build(np.arange(len(hashes)), words, 256)
    for i in range(len(hashes)):
        for j, _ in index.search(words[i], PDQ_LINK_DISTANCE):
            if j > i:  # merge j's sellers into i's group
                by_photo["pdq:" + hashes[i]] |= by_photo["pdq:" + hashes[int(j)]]
    return f"sha256, PDQ within {PDQ_LINK_DISTANCE} bits, bank matches"


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``report.md`` in ``out``."""
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(summary))


def markdown(summary: dict[str, Any]) -> str:
    """A short human report of ``summary``."""
    lines = [
        "# Backfill report",
        "",
        f"{summary['rows']} inputs, model `{summary.get('model_version', '?')}`, "
        f"bank version {summary.get('bank_version', '?')} "
        f"({summary.get('bank_entries', 0)} entries).",
        "",
        "| decision | rows |",
        "|---|---:|",
        *(f"| {k} | {v} |" for k, v in summary["decisions"].items()),
        "",
    ]
    if summary["errors"]:
        lines += ["| error code | rows |", "|---|---:|"]
        lines += [f"| `{k}` | {v} |" for k, v in summary["errors"].items()]
        lines.append("")
    lines += ["## Top sellers by flagged listings", ""]
    lines += [f"- `{s['seller_id']}`: {s['flagged_listings']}" for s in summary["top_sellers"]]
    lines += ["" if summary["top_sellers"] else "(none)", "", "## Seller clusters", ""]
    lines.append(f"Linked by {summary['cluster_method']}.")
    lines.append("")
    for c in summary["seller_clusters"][:TOP_SELLERS]:
        lines.append(f"- {', '.join(f'`{s}`' for s in c['sellers'])} ({c['links']} links)")
    if not summary["seller_clusters"]:
        lines.append("(none)")
    return "\n".join(lines) + "\n"
