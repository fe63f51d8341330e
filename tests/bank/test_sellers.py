"""Seller linking: a renamed account lands in one cluster with the account it replaced."""

from __future__ import annotations

from hashing.hashkit import jpeg, png, scene
from PIL import ImageOps

from karung.serve.bank.sellers import Link, UnionFind, clusters
from karung.serve.bank.service import BankService

W, H = 400, 300


def test_renamed_account_is_linked_by_a_match_event(service: BankService) -> None:
    old = service.add_image(
        png(scene(0, W, H)), bank="stolen", seller_id="old_shop", listing_id="L-old"
    )
    service.add_image(png(scene(1, W, H)), bank="stolen", seller_id="someone_else")
    # The scorer sees the old photo, mirrored, from a new account and records the match.
    upload = jpeg(ImageOps.mirror(scene(0, W, H)))
    matches = service.match_bytes(upload)
    assert [m.seller_id for m in matches] == ["old_shop"]
    assert service.record_match_event("c" * 64, "new_shop", "L-new", matches) == 1
    assert service.record_match_event("c" * 64, "new_shop", "L-new", matches) == 0  # recorded
    [cluster] = service.seller_clusters()
    assert cluster.sellers == ("new_shop", "old_shop")
    [link] = cluster.links
    assert (link.seller_a, link.seller_b, link.source) == ("old_shop", "new_shop", "event")
    assert (link.entry_a, link.query_sha256, link.listing_b) == (old.entry.id, "c" * 64, "L-new")
    assert link.kind == "pdq"
    assert service.links_for_seller("new_shop") == cluster
    lonely = service.links_for_seller("someone_else")
    assert lonely.sellers == ("someone_else",) and lonely.links == ()


def test_bank_entries_of_different_sellers_that_match_are_linked(service: BankService) -> None:
    a = service.add_image(png(scene(3, W, H)), bank="stolen", seller_id="A").entry.id
    b = service.add_image(
        jpeg(scene(3, W, H).resize((200, 150))), bank="stolen", seller_id="B"
    ).entry.id
    c = service.add_image(png(scene(3, W, H)), bank="partner", seller_id="C").entry.id
    service.add_image(png(scene(4, W, H)), bank="stolen", seller_id="D")
    [cluster] = service.seller_clusters()
    assert cluster.sellers == ("A", "B", "C")
    pairs = {(link.entry_a, link.entry_b): link.kind for link in cluster.links}
    assert pairs[(a, c)] == "sha256"  # the same file in two banks
    assert pairs[(a, b)] in ("pdq", "phash") and pairs[(b, c)] in ("pdq", "phash")
    assert cluster.to_dict()["size"] == 3
    # C's copy matched A's entry when it was banked: that match event stays as evidence, while
    # the entry-to-entry links of a disabled bank are no longer drawn.
    service.configure_bank("partner", enabled=False)
    [cluster] = service.seller_clusters()
    assert cluster.sellers == ("A", "B", "C")
    assert {(x.source, x.seller_b) for x in cluster.links if "C" in (x.seller_a, x.seller_b)} == {
        ("event", "C")
    }


def test_union_find_merges_chains() -> None:
    uf = UnionFind()
    for a, b in [("a", "b"), ("c", "d"), ("b", "c"), ("x", "y")]:
        uf.union(a, b)
    uf.find("alone")
    assert uf.groups() == [["a", "b", "c", "d"], ["x", "y"], ["alone"]]


def test_clusters_carry_their_own_links() -> None:
    def link(a: str, b: str) -> Link:
        return Link(a, b, "event", "pdq", 3, 1, None, "d" * 64, None, None)

    result = clusters([link("a", "b"), link("c", "d"), link("b", "e")], sellers=["z"])
    assert [c.sellers for c in result] == [("a", "b", "e"), ("c", "d"), ("z",)]
    assert [len(c.links) for c in result] == [2, 1, 0]


def test_banking_a_copy_under_a_new_account_links_the_accounts(service: BankService) -> None:
    first = service.add_image(png(scene(5, W, H)), bank="stolen", seller_id="banned").entry.id
    rotated = jpeg(scene(5, W, H).rotate(90, expand=True))
    service.add_image(rotated, bank="stolen", seller_id="renamed", listing_id="L2")
    [cluster] = service.seller_clusters()
    assert cluster.sellers == ("banned", "renamed")
    [link] = [x for x in cluster.links if x.source == "event"]
    assert (link.entry_a, link.seller_b, link.listing_b, link.kind) == (
        first,
        "renamed",
        "L2",
        "pdq",
    )
