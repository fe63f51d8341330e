"""The renderer variants each label can produce (the manifest's ``variant`` column).

Whole variants can be held out of training for a leave-one-variant-out check, so the names
are stable and every label has several. The tests check that a manifest only lists these.
"""

from __future__ import annotations

from typing import Final

VARIANTS: Final[dict[str, tuple[str, ...]]] = {
    "bale": ("bale-film", "bale-woven", "bale-bare", "bale-open", "bale-strata"),
    "sack": (
        "sack-woven-tied",
        "sack-woven-sewn",
        "sack-woven-open",
        "sack-clear",
        "sack-milky",
        "sack-jute",
    ),
    "garment": (
        "garment-photo",
        "garment-bed",
        "garment-flat",
        "garment-polybag",
        "garment-stack",
        "garment-shelf",
        "garment-rack",
    ),
    "other": (
        "other-carton",
        "other-carton-strapped",
        "other-carton-wrapped",
        "other-food-sack",
        "other-wrapped-goods",
        "other-furniture",
        "other-electronics",
        "other-books",
        "other-household",
        "other-room",
        "other-shop",
        "other-warehouse",
        "other-poster",
        "other-screenshot",
        "other-blank",
        "other-backdrop",
    ),
}
