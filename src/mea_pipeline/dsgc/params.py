"""dsgc's parameters, apart from the step so that its helper modules can import them."""

from __future__ import annotations

from dataclasses import dataclass

from ..frames.registration import SIMILARITY


@dataclass(frozen=True)
class DsgcParams:
    """dsgc's parameters (lab values as defaults).

    ``area_box``, ``prominence_fraction``, ``off_fraction`` and ``off_floor`` are the crossing rule
    of the lab's ON/OFF dictionary (:mod:`mea_pipeline.dsgc.crossings`); they do not apply to a
    table read from ``--on-off-dict``. The ``registration_*`` parameters and ``electrode_pitch_um``
    fit the stimulus -> electrode registration (:mod:`mea_pipeline.frames.registration`) to the
    units with both an RF centre (rf_geometry) and a soma centre (soma_geometry); it carries each
    preferred direction to the electrode and retina frames.

    Attributes
    ----------
    movie : str
        The moving-bar movie sectioned by direction; a recording whose playlist lacks it
        completes as ``no_moving_bar``.
    rf_movie_pattern : str
        RF centres come from the first of rf_geometry's movies whose name contains this text.
    stimulus_px : int
        Side (stimulus pixels) of the square stimulus image: the bar movie's frame size, and the
        RF grid's checkers per side divide it into checkers.
    n_directions : int
        Bar directions per repetition: the movie JSON's ``directions_deg`` must list this many
        (else they are spaced evenly from 0 degrees), and without ``frames_per_direction`` a
        trial's sweep frames are split into this many sweeps.
    padding_frames : int
        Movie frames each sweep's spike window reaches before the bar reaches the unit's RF
        centre (ON) and after it leaves (OFF).
    area_box : int
        Side (stimulus pixels) of the square around a pixel whose mean level picks ON among the
        candidate frames.
    prominence_fraction : float
        ON candidates are peaks of the pixel's frame-to-frame change with a prominence of at
        least this fraction of the sweep's largest change.
    off_fraction : float
        OFF is the first frame after ON whose change is at most ``-off_fraction`` times the
        size of the change at ON (and at most ``off_floor``).
    off_floor : float
        OFF's change must also be at most this (movie pixel levels per frame).
    n_permutations : int
        Random relabellings of the sweep counts behind the p-value; the smallest p-value is
        ``1 / (n_permutations + 1)``, and more cost time.
    seed : int
        Seed of those relabellings and of the registration's random minimal samples: the same
        seed gives the same results.
    registration_kind : str
        Form of the registration: ``'similarity'`` (rotation, uniform scale and translation;
        reflection allowed) or ``'affine'`` (any invertible linear map and translation).
    registration_min_units : int
        Fewest paired units, and fewest units agreeing with the fit, the registration needs;
        with fewer it is refused and directions stay in the stimulus frame only.
    registration_outlier_um : float
        A unit whose soma lies farther (um) than this from where the fit maps its RF centre is
        an outlier, left out of the fit.
    registration_max_hypotheses : int
        Minimal samples tried to find the outliers: all of them when there are at most this
        many, else this many drawn at random (``seed``).
    registration_min_spread : float
        The registration is refused when the RF centres are nearly collinear: the smaller over
        the larger standard deviation along their principal axes is below this.
    electrode_pitch_um : float
        Electrode spacing (um) of the array (16 for the 65 x 65 CMOS-MEA): turns electrodes into
        um for the outlier threshold, the residuals and ``scale_um_per_px``.
    """

    movie: str = "moving_h_bar_s5_d8_3x"
    rf_movie_pattern: str = "dense_noise"
    stimulus_px: int = 300
    n_directions: int = 8
    padding_frames: int = 40
    area_box: int = 50
    prominence_fraction: float = 0.3
    off_fraction: float = 0.5
    off_floor: float = -50.0
    n_permutations: int = 1000
    seed: int = 0
    registration_kind: str = SIMILARITY
    registration_min_units: int = 6
    registration_outlier_um: float = 150.0
    registration_max_hypotheses: int = 2000
    registration_min_spread: float = 0.1
    electrode_pitch_um: float = 16.0
