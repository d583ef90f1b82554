"""Parameters of the electrical-image STA, apart from its (torch-based) computation.

load_recording declares its parameters from this class; keeping it in a module of its own lets the step
registry be read without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EimageParams:
    """Parameters of the electrical-image STA (defaults = the lab's recipe).

    Attributes
    ----------
    duration_s : float
        Sensor data used (s) from the recording's start: only spikes, and filtered samples, in
        that stretch count; longer averages more spikes and reads more of the file.
    window : tuple[int, int]
        Samples ``[start, stop)`` around each spike kept in the eimage (spike at sample 0); the
        lab's (-10, 40) gives 50 samples with the spike at index 10.
    spike_limit : int
        Most spikes selected per unit: its first this many in ``duration_s`` (those whose window
        spills over an end are then dropped, not replaced).
    cutoff_hz : float
        Cutoff (Hz) of the Butterworth high-pass applied to the sensor signal before averaging.
    filter_order : int
        Order of that Butterworth high-pass, applied forward and backward (zero phase).
    chunk_samples : int
        Sensor samples read per buffer of the streaming pass; changes memory use and speed, not
        the result beyond float rounding.
    """

    duration_s: float = 120.0
    window: tuple[int, int] = (-10, 40)
    spike_limit: int = 10_000
    cutoff_hz: float = 100.0
    filter_order: int = 2
    chunk_samples: int = 20_000
