"""Registration of the stimulus frame to the electrode frame, and directions carried between frames.

Points are ``(x, y) = (column, row)`` in both frames, so an angle is ``atan2(y, x)``: 0 deg =
toward +column, 90 deg = toward +row, in either frame (:mod:`mea_pipeline.frames`). Stimulus
points are in stimulus pixels (pixel indices: pixel ``p`` is centred on ``p``), electrode points
in electrodes (eimage axis 2 = column, axis 1 = row).

A unit's receptive-field centre (stimulus frame) sits over its soma (electrode frame), so the
units that have both give matched point pairs, and ``electrode = matrix @ stimulus + offset``
is fitted to them. The fit:

* ``similarity``: ``matrix = scale * R(rotation_deg)``, or ``scale * R(rotation_deg) @ T`` when
  the stimulus is *reflected* against the electrodes, ``T = [[0, 1], [1, 0]]`` swapping column
  and row (the stimulus transposed, then rotated). Both handednesses are fitted and the one with
  the smaller residual is kept; the residual of the other is reported too. ``rotation_deg`` is
  the electrode-frame angle of the stimulus +column axis (not reflected) or of the stimulus +row
  axis (reflected).
* ``affine``: any invertible ``matrix``; ``reflected`` when its determinant is negative, and
  ``scale`` / ``rotation_deg`` are those of its nearest similarity (polar decomposition).

Outliers (a unit whose RF centre is far from its soma: a bad fit, a displaced dendritic field,
a merged unit) are found by consensus: transforms through minimal samples (2 pairs for a
similarity, 3 for an affine) are scored by how many units they bring within
``outlier_threshold_um``; the best is refitted on those units until the set is stable.
Residuals are reported in micrometres (``pitch_um`` per electrode; the 65 x 65 CMOS-MEA has a
16 um pitch, the value the synthetic recordings are built with, ``mea_pipeline.synth.cells``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

SIMILARITY, AFFINE = "similarity", "affine"
OK, REFUSED = "ok", "refused"
MAX_REFITS = 50   # refit on the consensus set until it stops changing; it settles in a few

# The stimulus transposed: column and row swapped (a reflection about the main diagonal).
TRANSPOSE = np.array([[0.0, 1.0], [1.0, 0.0]])

# Retina-frame angles of the four anatomical directions (the lab's convention, see retina_direction).
CARDINALS = {"nasal": 0.0, "dorsal": 90.0, "temporal": 180.0, "ventral": 270.0}


@dataclass(frozen=True)
class Registration:
    """A fitted (or refused) stimulus -> electrode transform.

    Attributes
    ----------
    status : str
        ``'ok'`` or ``'refused'``; when refused, ``reason`` says why and the numbers are NaN.
    reason : str
        Why the fit was refused ('' when ok).
    kind : str
        ``'similarity'`` or ``'affine'``.
    matrix : ndarray
        (2, 2) linear part, ``electrode_xy = matrix @ stimulus_xy + offset``.
    offset : ndarray
        (2,) translation, electrodes ``(column, row)``.
    reflected : bool
        The stimulus is mirrored against the electrodes (determinant < 0).
    scale : float
        Electrodes per stimulus unit (``sqrt(|det(matrix)|)``).
    rotation_deg : float
        Electrode-frame angle of the stimulus +column axis, or of its +row axis when reflected
        (the stimulus is transposed first), in [0, 360).
    residual_um : float
        RMS distance between the mapped RF centres and the somas of the units used.
    residual_other_handedness_um : float
        The same for the best fit of the other handedness on the same units (similarity only;
        NaN for affine): how clearly the data decide ``reflected``.
    inliers : ndarray
        (n,) bool, the units the fit used; the others are outliers.
    residuals_um : ndarray
        (n,) distance of every unit's mapped RF centre from its soma (NaN when refused).
    """

    status: str
    reason: str
    kind: str
    matrix: np.ndarray = field(default_factory=lambda: np.full((2, 2), np.nan))
    offset: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    reflected: bool = False
    scale: float = math.nan
    rotation_deg: float = math.nan
    residual_um: float = math.nan
    residual_other_handedness_um: float = math.nan
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    residuals_um: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_used(self) -> int:
        return int(self.inliers.sum())


def fit_registration(stimulus_xy, electrode_xy, *, kind: str, min_points: int,
                     outlier_threshold_um: float, pitch_um: float, max_hypotheses: int,
                     min_spread_ratio: float, seed: int) -> Registration:
    """Fit ``electrode_xy ~ matrix @ stimulus_xy + offset`` robustly; refuse with a reason when it cannot.

    Parameters
    ----------
    stimulus_xy : array_like
        (n, 2) RF centres ``(column, row)`` in stimulus units (pixels or checkers).
    electrode_xy : array_like
        (n, 2) soma centres ``(column, row)`` in electrodes, same order.
    kind : {'similarity', 'affine'}
        Rotation + uniform scale + translation with reflection allowed, or a general affine map.
    min_points : int
        Fewest pairs, and fewest consensus units, a fit needs; fewer is refused.
    outlier_threshold_um : float
        A unit farther than this from where the transform maps its RF centre is an outlier.
    pitch_um : float
        Electrode pitch (um per electrode) for the threshold and the residuals.
    max_hypotheses : int
        Every minimal sample is tried when there are at most this many; otherwise this many are
        drawn at random (``seed``).
    min_spread_ratio : float
        Refuse when the stimulus points are nearly collinear: the smaller over the larger
        standard deviation along their principal axes is below this (the handedness and the
        scale across the line are then undetermined).
    seed : int
        Seed of the random draw of minimal samples.

    Returns
    -------
    Registration
        Status ``'ok'``, or ``'refused'`` with the reason (never an exception for bad data).
    """
    if kind not in (SIMILARITY, AFFINE):
        raise ValueError(f"kind must be {SIMILARITY!r} or {AFFINE!r}, got {kind!r}")
    src = np.asarray(stimulus_xy, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(electrode_xy, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape:
        raise ValueError(f"stimulus_xy has {len(src)} points, electrode_xy {len(dst)}")
    n = len(src)
    finite = np.isfinite(src).all(axis=1) & np.isfinite(dst).all(axis=1)
    if not finite.all():
        raise ValueError("stimulus_xy and electrode_xy must be finite (drop the units without both centres)")
    if n < min_points:
        return Registration(REFUSED, f"{n} units have both a soma and an RF centre, {min_points} needed", kind)
    spread = np.linalg.svd(src - src.mean(axis=0), compute_uv=False)
    if spread[0] == 0 or spread[1] / spread[0] < min_spread_ratio:
        return Registration(REFUSED, f"the {n} RF centres lie nearly on a line (spread ratio "
                                     f"{spread[1] / spread[0] if spread[0] else 0:.3f} < {min_spread_ratio}): "
                                     "handedness and scale undetermined", kind)
    threshold = outlier_threshold_um / pitch_um
    handed = (False, True) if kind == SIMILARITY else (None,)

    inliers = _consensus(src, dst, kind, threshold, max_hypotheses, seed)
    for iteration in range(MAX_REFITS):
        if inliers.sum() < min_points:
            return Registration(REFUSED, f"only {int(inliers.sum())} of {n} units agree on one transform within "
                                         f"{outlier_threshold_um:g} um, {min_points} needed", kind,
                                inliers=inliers)
        fits = {h: _fit(src[inliers], dst[inliers], kind, h) for h in handed}
        best = min(fits, key=lambda h: _rms(fits[h], src[inliers], dst[inliers]))
        matrix, offset = fits[best]
        updated = _distances(matrix, offset, src, dst) <= threshold
        if np.array_equal(updated, inliers) or iteration == MAX_REFITS - 1:
            break   # (if the set still changes, keep the one this fit was made on)
        inliers = updated
    det = float(np.linalg.det(matrix))
    if not math.isfinite(det) or abs(det) < 1e-12:
        return Registration(REFUSED, "degenerate fit: the transform maps the stimulus onto a line or a point",
                            kind, inliers=inliers)
    other = math.nan
    if kind == SIMILARITY:
        other_fit = fits[not best]
        other = _rms(other_fit, src[inliers], dst[inliers]) * pitch_um
    scale, rotation_deg, reflected = decompose(matrix)
    residuals = _distances(matrix, offset, src, dst) * pitch_um
    return Registration(
        OK, "", kind, matrix=matrix, offset=offset, reflected=reflected, scale=scale, rotation_deg=rotation_deg,
        residual_um=float(np.sqrt(np.mean(residuals[inliers] ** 2))), residual_other_handedness_um=other,
        inliers=inliers, residuals_um=residuals)


def decompose(matrix) -> tuple[float, float, bool]:
    """``(scale, rotation_deg, reflected)`` of a 2 x 2 linear map (of its nearest similarity).

    ``matrix ~ scale * R(rotation_deg)`` or, when reflected, ``scale * R(rotation_deg) @ T``
    (``T`` swaps column and row); ``rotation_deg`` in [0, 360).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    det = float(np.linalg.det(matrix))
    reflected = det < 0
    proper = matrix @ TRANSPOSE if reflected else matrix
    u, _, vt = np.linalg.svd(proper)
    rotation = u @ vt                        # the orthogonal factor of the polar decomposition
    angle = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0])) % 360.0
    return math.sqrt(abs(det)), (0.0 if angle >= 360.0 else angle), reflected


def map_direction(angle_deg, matrix) -> np.ndarray:
    """Directions (degrees) carried through the linear part of a transform, in [0, 360).

    A motion along ``(cos a, sin a)`` in the source frame moves along ``matrix @ (cos a, sin a)``
    in the target frame (the offset moves positions, not directions). Under a reflection the
    sense of rotation flips: with ``matrix = R(r) @ T`` an angle ``a`` becomes ``r + 90 - a``.
    NaN stays NaN.
    """
    angle = np.radians(np.asarray(angle_deg, dtype=np.float64))
    matrix = np.asarray(matrix, dtype=np.float64)
    x = matrix[0, 0] * np.cos(angle) + matrix[0, 1] * np.sin(angle)
    y = matrix[1, 0] * np.cos(angle) + matrix[1, 1] * np.sin(angle)
    return _wrap(np.degrees(np.arctan2(y, x)))


def retina_direction(electrode_deg, correction_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Electrode-frame directions in the retina frame, and the nearest anatomical direction.

    The lab's convention (``soma_polar_coordinates`` of ap_tracking, ref-steps-6-11.md 5.10): the
    sheet's ``Center_xy`` gives where the recorded piece lies from the optic-nerve head, as
    ``(NT, DV)`` with nasal and dorsal positive (the sheet's DV sign flipped); the correction
    ``atan2(DV, NT) - angle(ONH -> reference point)`` turns electrode-frame angles into that
    plane (:func:`mea_pipeline.ap_tracking.orientation.angle_correction`). So a retina angle is
    ``electrode angle + correction``: 0 deg = nasal, 90 = dorsal, 180 = temporal, 270 = ventral.
    It is a rotation only, as in the lab: one reference vector cannot tell a mirror between
    chip and retina (eye side, which face lies on the chip), and the eye (L/R) is not used.
    Soma positions and preferred directions in this frame therefore agree with ap_tracking's
    ``theta_deg_corrected``.

    Parameters
    ----------
    electrode_deg : array_like
        Directions in the electrode frame (degrees); NaN stays NaN.
    correction_deg : float
        ap_tracking's ``angle_correction_deg``.

    Returns
    -------
    angle : ndarray
        Retina-frame directions in [0, 360).
    label : ndarray of str
        ``'nasal'``, ``'dorsal'``, ``'temporal'`` or ``'ventral'``, the nearest of the four
        (a tie goes to the earlier in that order); ``''`` for NaN.
    """
    angle = _wrap(np.asarray(electrode_deg, dtype=np.float64) + correction_deg)
    return angle, cardinal_label(angle)


def cardinal_label(retina_deg) -> np.ndarray:
    """Nearest of nasal (0), dorsal (90), temporal (180), ventral (270) to retina-frame angles; '' for NaN."""
    angle = np.asarray(retina_deg, dtype=np.float64)
    names = np.array(list(CARDINALS))
    centres = np.array(list(CARDINALS.values()))
    distance = np.abs((angle[..., None] - centres + 180.0) % 360.0 - 180.0)
    label = names[np.argmin(np.where(np.isfinite(distance), distance, 0.0), axis=-1)]
    return np.where(np.isfinite(angle), label, "")


def _wrap(angle: np.ndarray) -> np.ndarray:
    wrapped = np.mod(angle, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def _fit(src: np.ndarray, dst: np.ndarray, kind: str, reflected: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``(matrix, offset)`` on all given pairs (one handedness for a similarity)."""
    if kind == AFFINE:
        design = np.column_stack([src, np.ones(len(src))])
        solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
        return solution[:2].T, solution[2]
    # A proper similarity is multiplication by one complex number: z_e = a z_s + b.
    z_s = _complex(src @ TRANSPOSE.T if reflected else src)
    z_e = _complex(dst)
    ds, de = z_s - z_s.mean(), z_e - z_e.mean()
    power = np.sum(np.abs(ds) ** 2)
    a = np.sum(np.conj(ds) * de) / power if power > 0 else 0j
    matrix = np.array([[a.real, -a.imag], [a.imag, a.real]])
    if reflected:
        matrix = matrix @ TRANSPOSE
    return matrix, dst.mean(axis=0) - matrix @ src.mean(axis=0)


def _consensus(src: np.ndarray, dst: np.ndarray, kind: str, threshold: float, max_hypotheses: int,
               seed: int) -> np.ndarray:
    """Inlier mask of the minimal-sample transform that brings the most units within ``threshold``.

    Ties go to the smaller RMS over its inliers.
    """
    n, size = len(src), 2 if kind == SIMILARITY else 3
    if math.comb(n, size) <= max_hypotheses:
        samples = np.array(list(itertools.combinations(range(n), size)))
    else:
        rng = np.random.default_rng(seed)
        samples = np.array([rng.choice(n, size, replace=False) for _ in range(max_hypotheses)])
    if kind == SIMILARITY:
        hypotheses = [_pair_similarities(src, dst, samples, reflected) for reflected in (False, True)]
        matrices, offsets = np.concatenate([h[0] for h in hypotheses]), np.concatenate([h[1] for h in hypotheses])
    else:
        matrices, offsets = _triple_affines(src, dst, samples)
    mapped = np.einsum("hij,nj->hni", matrices, src) + offsets[:, None, :]
    distance = np.linalg.norm(mapped - dst[None], axis=2)
    distance[~np.isfinite(distance)] = np.inf
    inside = distance <= threshold
    counts = inside.sum(axis=1)
    rms = np.sqrt(np.sum(np.where(inside, distance, 0.0) ** 2, axis=1) / np.maximum(counts, 1))
    best = np.lexsort((rms, -counts))[0]
    return inside[best]


def _pair_similarities(src, dst, pairs, reflected):
    """Exact similarities through each pair (one handedness); NaN for coincident stimulus points."""
    z_s = _complex(src @ TRANSPOSE.T if reflected else src)
    z_e = _complex(dst)
    i, j = pairs[:, 0], pairs[:, 1]
    step = z_s[j] - z_s[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(step != 0, (z_e[j] - z_e[i]) / step, np.nan)
    matrices = np.stack([np.stack([a.real, -a.imag], axis=1), np.stack([a.imag, a.real], axis=1)], axis=1)
    if reflected:
        matrices = matrices @ TRANSPOSE
    offsets = dst[i] - np.einsum("hij,hj->hi", matrices, src[i])
    return matrices, offsets


def _triple_affines(src, dst, triples):
    """Exact affine maps through each triple; NaN for collinear stimulus points."""
    design = np.concatenate([src[triples], np.ones(triples.shape + (1,))], axis=2)   # (h, 3, 3)
    target = dst[triples]                                                             # (h, 3, 2)
    solvable = np.abs(np.linalg.det(design)) > 1e-9
    solution = np.full((len(triples), 3, 2), np.nan)
    if solvable.any():
        solution[solvable] = np.linalg.solve(design[solvable], target[solvable])
    return solution[:, :2].transpose(0, 2, 1), solution[:, 2]


def _distances(matrix, offset, src, dst) -> np.ndarray:
    return np.linalg.norm(src @ np.asarray(matrix).T + offset - dst, axis=1)


def _rms(fit, src, dst) -> float:
    return float(np.sqrt(np.mean(_distances(*fit, src, dst) ** 2)))


def _complex(xy: np.ndarray) -> np.ndarray:
    return xy[:, 0] + 1j * xy[:, 1]
