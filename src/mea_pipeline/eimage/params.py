"""Parameters of the electrical-image STA, apart from its (torch-based) computation.

load_recording declares its parameters from this class; keeping it in a module of its own lets the step
registry be read without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EimageParams:
    """Parameters of the electrical-image STA (defaults = the lab's recipe)."""

    duration_s: float = 120.0
    window: tuple[int, int] = (-10, 40)
    spike_limit: int = 10_000
    cutoff_hz: float = 100.0
    filter_order: int = 2
    chunk_samples: int = 20_000
