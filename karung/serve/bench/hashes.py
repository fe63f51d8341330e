"""The engine of ``karung bench hashes``: how well the bank catches edited re-uploads, and what
it falsely hits (``karung.cli.bench_hashes`` parses the arguments and prints the table).

Originals are added to a throw-away SQLite bank through the real
:class:`~karung.serve.bank.service.BankService`. Every original is then edited by each transform
of :data:`~karung.serve.bench.transforms.TRANSFORMS`, saved as a JPEG (quality 90, as a re-upload
would be) and matched as bytes. Recall is reported per transform for PDQ alone (8 dihedral
variants, threshold 31), pHash alone (threshold 10) and the combined matcher (the service's
answer). Unrelated distractor photos are matched too: any match at all is a false match. Use
photos that look alike (the CC0 garment photos: same kinds of clothes on similar backgrounds),
which makes the false-match rate honest.

A split by sender (a CSV with ``image,sender_id``) draws originals from half of the senders and
distractors from the other half, so the same dataset directory can serve as both.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path
from typing import Any, Final

from karung.serve.bench.transforms import TARGETS, TRANSFORMS, encode_upload
from karung.vision.hash_kinds import KINDS, PHASH, hash_kind

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


def run_benchmark(
    originals: list[Path], distractors: list[Path], names: list[str], seed: int
) -> dict[str, Any]:
    """Bank ``originals``, match each edited by every transform of ``names`` and every
    distractor; the report (recall per transform, false matches, index size)."""
    with tempfile.TemporaryDirectory(prefix="karung-bench-") as tmp:
        service = _bank(Path(tmp))
        stored = _add_originals(service, originals)
        rows = [_bench_transform(service, stored, name, seed) for name in names]
        false = _bench_distractors(service, stored, distractors)
        memory = {
            "index_bytes": service.matcher.index_nbytes,
            "index_hashes": service.matcher.index_hashes,
        }
        service.store.engine.dispose()
    return {
        "originals": len(stored),
        "index": memory,
        "distractors": len(distractors),
        "transforms": rows,
        "false_matches": false,
    }


def pick_images(
    images: str, distractor_dir: str, *, n: int, distractor_n: int, seed: int, split: str | None
) -> tuple[list[Path], list[Path]]:
    """Originals and distractors, sampled with the seed (split by sender when ``split`` names
    the CSV)."""
    rng = random.Random(seed)
    originals, distractors = _list_images(images), _list_images(distractor_dir)
    if split:
        import csv

        with open(split, encoding="utf-8", newline="") as f:
            sender = {row["image"]: row["sender_id"] for row in csv.DictReader(f)}
        senders = sorted(set(sender.values()))
        rng.shuffle(senders)
        first = set(senders[: len(senders) // 2])
        originals = [p for p in originals if sender.get(p.stem) in first]
        distractors = [p for p in distractors if p.stem in sender and sender[p.stem] not in first]
    rng.shuffle(originals)
    rng.shuffle(distractors)
    chosen = originals[:n]
    taken = {p.resolve() for p in chosen}
    return chosen, [p for p in distractors if p.resolve() not in taken][:distractor_n]


def _list_images(folder: str) -> list[Path]:
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _bank(tmp: Path) -> Any:
    from karung.serve.bank.service import BankService
    from karung.serve.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    migrate(engine)
    return BankService(engine, load=False)


def _add_originals(service: Any, paths: list[Path]) -> list[dict[str, Any]]:
    """Bank every original; keep its entry id, image and hashes for the per-kind recall."""
    from tqdm import tqdm

    from karung.vision.decode import decode_image
    from karung.vision.hashing import compute_hashes, decode_for_hashing

    stored = []
    for path in tqdm(paths, desc="bank originals", unit="img"):
        data = path.read_bytes()
        image = decode_image(data, max_bytes=1 << 26, max_pixels=1 << 27)
        sha = hashlib.sha256(data).hexdigest()
        decoded = decode_for_hashing(data, max_bytes=1 << 26, max_pixels=1 << 27)
        result = service.add_decoded(decoded, sha, bank="bench", listing_id=path.stem)
        stored.append({"id": result.entry.id, "image": image, "hashes": compute_hashes(decoded)})
    service.refresh_if_changed()
    return stored


def _bench_transform(
    service: Any, stored: list[dict[str, Any]], name: str, seed: int
) -> dict[str, Any]:
    from tqdm import tqdm

    hits = {**{kind: 0 for kind in KINDS}, "combined": 0}
    for i, item in enumerate(tqdm(stored, desc=name, unit="img", leave=False)):
        edited = TRANSFORMS[name](item["image"], random.Random(seed * 1_000_003 + i))
        data = encode_upload(edited, name)
        query = _query_hashes(data)
        for kind in KINDS:
            hits[kind] += kind_distance(query, item["hashes"], kind) <= _THRESHOLDS[kind]
        hits["combined"] += any(m.entry_id == item["id"] for m in service.match_bytes(data))
    n = len(stored)
    recall = {k: round(v / n, 4) for k, v in hits.items()}
    target = TARGETS.get(name)
    return {
        "transform": name,
        "n": n,
        **recall,
        "target": target,
        "meets_target": None if target is None else recall["combined"] >= target,
    }


def _bench_distractors(
    service: Any, stored: list[dict[str, Any]], paths: list[Path]
) -> dict[str, Any]:
    """Match every distractor; per kind and combined, count those that matched anything."""
    from tqdm import tqdm

    indexes = {kind: _kind_index(stored, kind) for kind in KINDS}
    counts = {**{kind: 0 for kind in KINDS}, "combined": 0}
    examples = []
    for path in tqdm(paths, desc="distractors", unit="img"):
        data = path.read_bytes()
        query = _query_hashes(data)
        for kind, index in indexes.items():
            counts[kind] += any(
                index.search(v, _THRESHOLDS[kind]) for v in _query_values(query, kind)
            )
        matches = service.match_bytes(data)
        if matches:
            counts["combined"] += 1
            examples.append({"distractor": str(path), "matches": [m.to_dict() for m in matches]})
    n = len(paths)
    return {
        "n": n,
        **{f"{k}_rate": round(v / n, 5) for k, v in counts.items()},
        **{f"{k}_count": v for k, v in counts.items()},
        "examples": examples[:20],
    }


def _kind_index(stored: list[dict[str, Any]], kind: str) -> Any:
    """A brute-force index of the originals' hashes of one kind (plain and trimmed)."""
    from karung.vision.hash_index import words_of

    keys, values = [], []
    for i, item in enumerate(stored):
        for variant, hashes in enumerate(item["hashes"].stored_variants()):
            if kind == PHASH.name or hashes.pdq_usable:
                keys.append(i * 2 + variant)
                values.append(hashes.phash if kind == PHASH.name else hashes.pdq)
    index = hash_kind(kind).brute_index()
    if values:
        index.add(keys, words_of(values))
    return index


def _query_values(query: Any, kind: str) -> list[Any]:
    """The hashes a query tries for one kind (PDQ: the 8 dihedral variants, usable quality)."""
    out: list[Any] = []
    for variant in query.variants():
        if kind == PHASH.name:
            out.append(variant.phash)
        elif variant.pdq_usable:
            out.extend(variant.pdq_dihedral)
    return out


_THRESHOLDS: Final = {k.name: k.default_threshold for k in KINDS.values()}


def _query_hashes(data: bytes) -> Any:
    from karung.vision.hashing import compute_hashes, decode_for_hashing

    return compute_hashes(decode_for_hashing(data, max_bytes=1 << 26, max_pixels=1 << 27))


def kind_distance(query: Any, stored: Any, kind: str) -> int:
    """Smallest distance between any variant of ``query`` and any variant of ``stored`` for one
    hash kind, as the matcher computes it (PDQ: 8 dihedral variants, quality >= 50)."""
    best = 10**6
    for q in query.variants():
        for s in stored.stored_variants():
            if kind == PHASH.name:
                best = min(best, q.phash.distance(s.phash))
            elif q.pdq_usable and s.pdq_usable:
                best = min(best, min(v.distance(s.pdq) for v in q.pdq_dihedral))
    return best
