"""The synthesiser's settings, parsed once at the edge into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from karung.training.synth.errors import SynthConfigError

MIN_SIZE: Final = 64
MAX_SIZE: Final = 2048


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the bytes of a synthetic set (plus how fast it is made).

    ``workers`` changes only the speed, never the output: each image has its own RNG seeded
    from ``(seed, index)``.
    """

    out: Path
    n: int
    seed: int = 0
    source: Path | None = None
    size: int = 320
    workers: int = 1
    val_fraction: float = 0.2
    pool_size: int = 0  # garment cut-outs to segment; 0 = automatic from n
    contact_count: int = 48
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise SynthConfigError(f"--n must be at least 1, got {self.n}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise SynthConfigError(f"--size must be within [{MIN_SIZE}, {MAX_SIZE}]")
        if self.workers < 1:
            raise SynthConfigError(f"--workers must be at least 1, got {self.workers}")
        if not 0.0 < self.val_fraction < 1.0:
            raise SynthConfigError("--val-fraction must be strictly between 0 and 1")
        if self.pool_size < 0:
            raise SynthConfigError("--pool must be 0 (automatic) or positive")
        if self.seed < 0:
            raise SynthConfigError("--seed must be non-negative")

    def effective_pool_size(self) -> int:
        """Cut-outs to segment: enough variety for ``n`` without paying for all 5k photos."""
        if self.pool_size:
            return self.pool_size
        return min(1200, 160 + self.n // 25)
