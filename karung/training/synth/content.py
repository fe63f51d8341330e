"""What a label renderer hands to the compositor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Content:
    """Either a ``sprite`` to place on the scene's background or a finished ``image``.

    ``image`` is used for real photos and for full-frame scenes (posters, screenshots); its
    size is the scene's content size. ``info`` goes to the manifest.
    """

    sprite: np.ndarray | None = None
    image: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    ground: bool = True  # sits on the floor (contact shadow) rather than floating

    def __post_init__(self) -> None:
        if (self.sprite is None) == (self.image is None):
            raise ValueError("Content needs exactly one of sprite or image")
