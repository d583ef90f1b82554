"""Direction and orientation selectivity of a unit from its spike counts per sweep.

Two direction selectivity indices are reported, named for what they are:

* ``dsi_vector`` = ``|sum_d r_d e^{i theta_d}| / sum_d r_d`` (0 = untuned, 1 = responds to one
  direction only), with ``preferred_direction_deg`` the angle of that vector sum;
* ``dsi_classic`` = ``(r_pref - r_null) / (r_pref + r_null)``, ``pref`` the direction of the highest
  mean count and ``null`` the opposite one.

``osi`` = ``|sum_d r_d e^{2 i theta_d}| / sum_d r_d``. ``r_d`` is the mean count over repetitions.
The p-value is that of ``dsi_vector`` under random direction labels: the individual sweeps' counts
are shuffled across directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Permuted DSIs this close to the observed one count as reaching it: floating-point sums of the same
# counts in another order must not decide the p-value.
_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Selectivity:
    """A unit's direction tuning (see the module docstring for the indices).

    ``spike_counts`` (n_directions,) float64 mean count per direction; ``preferred_direction_deg``
    in [0, 360); ``p_value`` = (k + 1) / (n + 1), k the permutations whose ``dsi_vector`` reaches
    the observed one; ``reason``: why the indices are NaN (no spikes, or for ``dsi_classic`` alone
    no opposite direction), else None.
    """

    spike_counts: np.ndarray
    n_spikes: int
    n_permutations: int
    preferred_direction_deg: float
    dsi_vector: float
    dsi_classic: float
    osi: float
    p_value: float
    reason: str | None


def _vector_sums(mean_counts: np.ndarray, angles_rad: np.ndarray, harmonic: int) -> np.ndarray:
    """``sum_d r_d e^{i k theta_d}`` over the last axis."""
    return mean_counts @ np.exp(1j * harmonic * angles_rad)


def direction_selectivity(counts: np.ndarray, directions_deg: np.ndarray, *, n_permutations: int,
                          seed: int) -> Selectivity:
    """Preferred direction, DSI (vector and classic), OSI and a permutation p-value.

    Parameters
    ----------
    counts : np.ndarray
        (n_directions, n_repetitions) spike count of each sweep window.
    directions_deg : np.ndarray
        (n_directions,) motion direction of each row, in degrees.
    n_permutations : int
        Random relabellings for the p-value.
    seed : int
        Seed of the relabellings (the same seed gives the same p-value).

    Returns
    -------
    Selectivity
    """
    counts = np.asarray(counts, dtype=np.float64)
    directions = np.asarray(directions_deg, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != len(directions):
        raise ValueError(f"counts must be (n_directions={len(directions)}, n_repetitions), "
                         f"got {counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("counts must be finite and non-negative")
    mean_counts = counts.mean(axis=1)
    n_spikes = int(counts.sum())
    if n_spikes == 0:
        nan = float("nan")
        return Selectivity(mean_counts, n_spikes, n_permutations, preferred_direction_deg=nan, dsi_vector=nan,
                           dsi_classic=nan, osi=nan, p_value=nan, reason="no spikes in any sweep window")

    angles = np.deg2rad(directions)
    total = mean_counts.sum()
    vector = _vector_sums(mean_counts, angles, 1)
    dsi_vector = float(abs(vector) / total)

    reason = None
    pref = int(np.argmax(mean_counts))
    opposite = np.flatnonzero(np.isclose(np.mod(directions - directions[pref], 360.0), 180.0))
    if len(opposite):
        r_pref, r_null = mean_counts[pref], mean_counts[opposite[0]]
        dsi_classic = float((r_pref - r_null) / (r_pref + r_null))
    else:
        dsi_classic = float("nan")
        reason = f"no direction opposite to {directions[pref]:g} deg for dsi_classic"

    # All relabellings at once: row p holds the sweeps' counts in the p-th random order.
    rng = np.random.default_rng(seed)
    flat = counts.ravel()
    order = rng.permuted(np.broadcast_to(np.arange(flat.size), (n_permutations, flat.size)), axis=1)
    shuffled_means = flat[order].reshape(n_permutations, *counts.shape).mean(axis=2)
    null_dsi = np.abs(_vector_sums(shuffled_means, angles, 1)) / total
    reached = int(np.count_nonzero(null_dsi >= dsi_vector - _TIE_TOLERANCE))

    return Selectivity(
        mean_counts, n_spikes, n_permutations,
        # The second modulo maps a tiny negative angle, which np.mod rounds up to 360.0, to 0.
        preferred_direction_deg=float(np.mod(np.rad2deg(np.angle(vector)), 360.0)) % 360.0,
        dsi_vector=dsi_vector,
        dsi_classic=dsi_classic,
        osi=float(abs(_vector_sums(mean_counts, angles, 2)) / total),
        p_value=(reached + 1) / (n_permutations + 1),
        reason=reason,
    )
