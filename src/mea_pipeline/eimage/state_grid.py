"""The grid of filter states the electrical-image STA reads each spike's edge states from.

The scans know the causal state P and the anti-causal state Q every ``COARSE`` samples, and
one extra grid input gives them halfway between, so a state is known every ``FINE`` samples: a
spike's window edge lies fewer than ``FINE`` samples from a grid point, and the raw samples in
between are summed with the window (:mod:`.accumulator`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .zero_phase import ZeroPhaseHighpass

COARSE = 32  # spacing of the state scans
FINE = 16  # spacing of the grid points that edge states are taken from


def spike_terms(units, t0, length, state_base):
    """Per-spike raw slices and grid-state terms (buffer-relative window starts ``t0``).

    Returns ``slices`` (unit, first row, end row, t_a, t_b) sorted by unit and time, and for P
    and Q the terms ``(unit, S-block of grid, power of p)`` whose sum is the spike's
    ``p**d P(t0 - d)`` or ``p**e Q(t1 + e - 1)``: a state at a coarse point is one grid
    block; halfway, it is ``p**F`` times the coarse state (P: before, Q: after) plus the
    half-block increment.
    """
    f = FINE
    d = t0 % f
    t1 = t0 + length
    e = (-t1) % f
    slices = np.stack([units, f - 1 - d, f - 1 + length + e, t0 - d, t1 + e], axis=1)
    slices = slices[np.lexsort((t0, units))]
    p_terms = grid_terms(units, t0 - d, d, 0, state_base)
    q_terms = grid_terms(units, t1 + e, e, 1, state_base)
    return slices, p_terms, q_terms


def grid_terms(units, at, power, q_side, state_base):
    """Terms summing to ``p**power * state(at)`` for grid points ``at`` (multiples of F)."""
    k, half = np.divmod(at // FINE, 2)
    off = half == 1
    # P at a half point grows from the coarse state before it, Q (anti-causal) from the one after.
    coarse = k + half * q_side
    units = np.concatenate([units, units[off]])
    blocks = np.concatenate([state_base + 2 * coarse + q_side, (4 * k + 2 + q_side)[off]])
    powers = np.concatenate([power + FINE * half, power[off]])
    return units, blocks, powers


def state_sum(table, zp: ZeroPhaseHighpass, terms, n_units):
    """Per-unit ``sum of p**power * table[rows]`` over the terms, float32 (n_units, S, C).

    ``rows`` are S-blocks of ``table`` (real/imag rows per pole). Complex
    factors act on (real, imag) row pairs as 2x2 blocks: each term and pole adds four weighted
    rows, gathered with ``embedding_bag``.
    """
    units, rows, power = terms
    s = zp.n_states
    coef = zp.poles[None, :] ** power[:, None]  # (n_terms, poles)
    q = np.arange(len(zp.poles))
    blocks = [(0, 0, coef.real), (0, 1, -coef.imag), (1, 0, coef.imag), (1, 1, coef.real)]
    bag = np.concatenate([(units[:, None] * s + 2 * q + i).ravel() for i, _, _ in blocks])
    row = np.concatenate([(rows[:, None] * s + 2 * q + j).ravel() for _, j, _ in blocks])
    w = np.concatenate([v.ravel() for _, _, v in blocks])
    order = np.argsort(bag, kind="stable")
    offsets = np.searchsorted(bag[order], np.arange(n_units * s))
    out = F.embedding_bag(
        torch.from_numpy(row[order]), table, torch.from_numpy(offsets),
        mode="sum", per_sample_weights=torch.from_numpy(w[order].astype(np.float32)),
    )
    return out.view(n_units, s, -1)


def grid_weights(zp: ZeroPhaseHighpass) -> np.ndarray:
    """(4S, COARSE) weights: coarse P and Q increments, first-half P and second-half Q ones."""
    full = zp.grid_weights(COARSE)
    half = zp.grid_weights(FINE)
    s = zp.n_states
    mid = np.zeros((2 * s, COARSE))
    mid[:s, :FINE] = half[:s]
    mid[s:, FINE:] = half[s:]
    return np.concatenate([full, mid])
