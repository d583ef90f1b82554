"""Parameters of a synthetic recording (:class:`SynthSpec`) and the playlist profiles."""

from __future__ import annotations

from dataclasses import dataclass

# Playlist written by write_stimulus_library for each profile. Movie names match the lab's set6
# protocol; lengths are shortened ('demo': about 4.5 min, 'tiny': about 1.5 min of display).
PLAYLISTS = {"demo": "demo_set6_short", "tiny": "demo_set6_tiny"}
MOVIES = (
    "baseline_127",
    "step_up_5s_5i_b0_3x",
    "green_blue_3s_3i_3x",
    "freq_step_5st_3x",
    "moving_h_bar_s5_d8_3x",
    "perfect_dense_noise_15x15_15hz_r42_3min",
    "step_up_5s_5i_b0_30x",
)
MOVING_BAR = "moving_h_bar_s5_d8_3x"
DENSE_NOISE = "perfect_dense_noise_15x15_15hz_r42_3min"


@dataclass(frozen=True)
class SynthSpec:
    """What to simulate. The same spec and recording ID always give the same bytes.

    Parameters
    ----------
    n_units : int
        Sorted units in the CMTR.
    seed : int
        Master seed; each recording mixes it with a hash of its recording ID.
    sensor_seconds : float
        Seconds of raw sensor data written (the analog channels cover the whole recording).
    tick_us : int
        Sample interval in µs (50 = 20 kHz, 40 = 25 kHz).
    unit_id_gaps : bool
        Number units 1, 2, 4, 7, 11, ... instead of 1..n.
    profile : str
        ``'demo'`` or ``'tiny'`` (much shorter movies, for fast tests).
    n_silent_units : int
        The last units get no included spike (only ``IncludePeak == 0`` peaks).
    excluded_peak_fraction : float
        ``IncludePeak == 0`` peaks per spike (sub-threshold peaks of the unit's source).
    rgc_every : int
        Every ``rgc_every``-th unit (4th, 8th, ...) is not a ganglion cell (no axon).
    tuned_fraction : float
        Fraction of ganglion cells that are direction-tuned under the moving bar.
    frame_rate_hz : float
        Display refresh rate (one frame-sync pulse per display frame).
    noise_adc : float
        Standard deviation of the sensor noise (ADC counts).
    spike_amplitude_adc : tuple of float
        Range of the soma spike trough depth (ADC counts).
    axon_amplitude_adc : tuple of float
        Range of the axon signal depth along the path (ADC counts).
    axon_velocity_m_s : tuple of float
        Range of axon conduction velocities.
    base_rate_hz : tuple of float
        Range of the spontaneous firing rates.
    lead_in_s, tail_s : float
        Recording time before the first display frame and after the last one.
    stimulus_mirror : bool
        The projected stimulus is transposed (column <-> row) against the electrodes before it
        is rotated: the default, the geometry of earlier versions. The four ``stimulus_*``
        fields place each receptive field over its soma (:mod:`.stimulus_frame`).
    stimulus_rotation_deg : float
        Rotation of the stimulus on the chip (degrees, from +column toward +row, electrode frame).
    stimulus_scale : float
        Magnification: at 1 the noise grid's checker centres 0..14 span electrodes 0..64.
    stimulus_offset : tuple of float
        Shift (column, row electrodes) of the stimulus centre from the chip centre.
    """

    n_units: int = 12
    seed: int = 0
    sensor_seconds: float = 1.0
    tick_us: int = 50
    unit_id_gaps: bool = False
    profile: str = "demo"
    n_silent_units: int = 0
    excluded_peak_fraction: float = 0.3
    rgc_every: int = 4
    tuned_fraction: float = 0.5
    frame_rate_hz: float = 60.4
    noise_adc: float = 12.0
    spike_amplitude_adc: tuple[float, float] = (80.0, 220.0)
    axon_amplitude_adc: tuple[float, float] = (20.0, 40.0)
    axon_velocity_m_s: tuple[float, float] = (0.5, 1.0)
    base_rate_hz: tuple[float, float] = (5.0, 12.0)
    lead_in_s: float = 0.5
    tail_s: float = 0.5
    stimulus_mirror: bool = True
    stimulus_rotation_deg: float = 0.0
    stimulus_scale: float = 1.0
    stimulus_offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        if self.profile not in PLAYLISTS:
            raise ValueError(f"profile must be one of {', '.join(PLAYLISTS)}, got {self.profile!r}")
        if self.tick_us <= 0 or self.n_units < 1 or self.sensor_seconds <= 0:
            raise ValueError("tick_us, n_units and sensor_seconds must be positive")
        if not 0 <= self.n_silent_units <= self.n_units:
            raise ValueError("n_silent_units must be between 0 and n_units")
        if not self.stimulus_scale > 0:
            raise ValueError(f"stimulus_scale must be positive, got {self.stimulus_scale}")

    @property
    def sampling_rate_hz(self) -> float:
        return 1e6 / self.tick_us

    @property
    def playlist(self) -> str:
        return PLAYLISTS[self.profile]


def unit_numbers(n_units: int, gaps: bool) -> list[int]:
    """1..n, or with growing gaps 1, 2, 4, 7, 11, ... (so 'Unit 10' sorts before 'Unit 2' in HDF5)."""
    if not gaps:
        return list(range(1, n_units + 1))
    numbers, step = [1], 1
    while len(numbers) < n_units:
        numbers.append(numbers[-1] + step)
        step += 1
    return numbers
