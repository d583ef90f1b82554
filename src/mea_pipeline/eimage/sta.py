"""Electrical-image STA: mean high-passed sensor window around each unit's spikes.

One streaming pass over the sensor block ``[0, T)`` serves all units, and the recording itself
is never filtered. The zero-phase high-pass is linear: a spike's filtered window is its raw
window through a fixed (L, L) matrix plus the responses to two filter states, P at the window
start (everything before it) and Q at its end (everything after it); see ``zero_phase``. So per
unit only raw int16 samples (exact integer sums) and those states are summed, and a small
float64 product at the end turns the sums into the mean filtered window.

Per buffer of ``chunk_samples`` frames (read by a background thread that asks the OS to read
the next buffer ahead):

1. grid inputs: int16 -> float32 in cache-sized tiles, each times a (4S, 32) matrix, giving
   every 32-sample block's increment of P and Q (and of its first / second half);
2. two short sequential scans over that grid, run in parallel: P forward (its end state carried
   to the next buffer), Q backward from the buffer end, which lies ``overlap`` samples past the
   last window so that starting Q at zero there changes nothing above 1e-8 of the kernel;
3. per spike, one contiguous int16 slice (the window plus the < 16 samples back to the grid
   point before it and on to the grid point after it) added into its unit's integer sums, and
   the grid states at those two points, times powers of the poles, summed per unit.

``sosfiltfilt``'s start handling (odd extension, steady-state initial condition) enters as the
initial P; its end handling only matters within ``overlap`` of T, where windows use the exact
filtered tail. Each sample is read once; the overlap between buffers is copied in memory.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .accumulator import Accumulator
from .params import EimageParams
from .plan import Plan
from .reader import BufferReader, max_abs
from .zero_phase import ZeroPhaseHighpass


@dataclass
class EimageResult:
    """STA per unit and the spike bookkeeping behind it."""

    sta: np.ndarray
    n_spikes_used: np.ndarray
    n_spikes_excluded: np.ndarray
    n_samples_used: int


def compute_eimage_sta(
    sensor,
    spike_samples: Sequence[np.ndarray],
    sampling_rate_hz: float,
    params: EimageParams = EimageParams(),
) -> EimageResult:
    """Mean zero-phase high-passed sensor window around each unit's spikes.

    Parameters
    ----------
    sensor : array-like
        int16 sensor frames, shape (n_frames, rows, cols), sliceable along axis 0 (an h5py
        Dataset is read with ``read_direct``).
    spike_samples : sequence of ndarray
        Spike sample indices per unit.
    sampling_rate_hz : float
        Sampling rate of ``sensor``.
    params : EimageParams
        See the class.

    Returns
    -------
    EimageResult
        ``sta`` float32 (n_units, L, rows, cols), NaN for units without a usable spike. The
        filtered signal is ``sosfiltfilt(butter(order, cutoff, 'high'), sensor[:T], axis=0)``
        with scipy's default edge handling, ``T = min(round(duration_s * fs), n_frames)``. As
        in the lab's recipe, a unit's first ``spike_limit`` spikes in ``[0, T)`` are selected
        and the selected spikes whose window lies inside ``[0, T)`` (``s + w0 >= 0`` and
        ``s + w1 <= T``) are averaged: ``n_spikes_used`` counts those,
        ``n_spikes_excluded`` the selected ones whose window spills over an end.
    """
    n_frames, n_rows, n_cols = sensor.shape
    if np.dtype(sensor.dtype) != np.int16:
        raise TypeError(f"sensor must be int16, got {sensor.dtype}")
    t_used = int(min(round(params.duration_s * sampling_rate_hz), n_frames))
    w0, w1 = params.window
    if w1 <= w0:
        raise ValueError(f"empty window {params.window}")
    used, excluded = _select_spikes(spike_samples, t_used, w0, w1, params.spike_limit)
    n_used = np.array([len(s) for s in used], dtype=np.int64)
    if n_used.any():
        zp = ZeroPhaseHighpass(params.filter_order, params.cutoff_hz, sampling_rate_hz)
        if t_used <= zp.padlen:
            raise ValueError(f"{t_used} samples are too few for the filter (padlen {zp.padlen})")
        plan = Plan(t_used, w1 - w0, params.chunk_samples, zp.settle_samples())
        sta = _stream(sensor, plan, zp, [s + w0 for s in used], n_rows * n_cols)
    else:
        sta = np.full((len(used), w1 - w0, n_rows * n_cols), np.nan, dtype=np.float32)
    return EimageResult(
        sta=sta.reshape(len(used), w1 - w0, n_rows, n_cols),
        n_spikes_used=n_used,
        n_spikes_excluded=excluded,
        n_samples_used=t_used,
    )


def _select_spikes(spike_samples, t_used, w0, w1, limit):
    """Per unit: the averaged spikes (sorted) and how many selected spikes could not be averaged.

    The selection is the first ``limit`` spikes in ``[0, t_used)``, then the window must fit:
    the lab's order, so ``n_spikes_excluded`` keeps the lab's meaning (selected, not averaged)
    and never counts the spikes beyond the limit.
    """
    used, excluded = [], []
    for spikes in spike_samples:
        s = np.sort(np.asarray(spikes).astype(np.int64).ravel())
        selected = s[(s >= 0) & (s < t_used)][:limit]
        ok = selected[(selected + w0 >= 0) & (selected + w1 <= t_used)]
        used.append(ok)
        excluded.append(len(selected) - len(ok))
    return used, np.array(excluded, dtype=np.int64)


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _stream(sensor, plan: Plan, zp: ZeroPhaseHighpass, starts, n_channels):
    """Mean filtered window per unit, float32 (n_units, L, C), from one pass over the sensor."""
    n_used = np.array([len(s) for s in starts])
    starts_all = np.concatenate(starts)
    units_all = np.repeat(np.arange(len(starts)), [len(s) for s in starts])
    n_workers = max(1, min(_cpu_count(), 8))
    # One worker thread per core; OpenMP teams inside the ops (torch's default) would fight the
    # reader thread for the cores, which costs several times more than it gains. The setting is
    # process-wide, so it is restored on the way out.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(n_workers, thread_name_prefix="eimage") as pool:
            acc = Accumulator(zp, [len(s) for s in starts], plan, n_channels, n_workers, pool)
            reader = BufferReader(sensor, plan, n_channels, max_abs)
            try:
                for i, (raw, bound) in enumerate(reader):
                    o0, o1 = plan.origins[i], plan.out_ends[i]
                    final = i == len(plan.reads) - 1
                    o1_generic = min(o1, plan.tail_start)
                    pick = (starts_all >= o0) & (starts_all < o1_generic)
                    carry_to = o1_generic if final else o1
                    tail = final & (starts_all >= plan.tail_start)
                    acc.process(raw, bound, i, units_all[pick], starts_all[pick] - o0, carry_to,
                                units_all[tail], starts_all[tail] - plan.tail_start)
                    reader.release()
            finally:
                reader.close()
    finally:
        torch.set_num_threads(threads)
    return acc.result(n_used)
