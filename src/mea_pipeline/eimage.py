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
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg import toeplitz

from mea_pipeline.eimage_params import EimageParams
from mea_pipeline.zero_phase import ZeroPhaseHighpass

_COARSE = 32  # spacing of the state scans
_FINE = 16  # spacing of the grid points that edge states are taken from
_TILE = 96  # rows per float32 conversion tile: 96 x 4225 float32 = 1.6 MB, stays in L2


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
        plan = _Plan(t_used, w1 - w0, params.chunk_samples, zp.settle_samples())
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


class _Plan:
    """Chunk layout of one pass.

    Reads are ``chunk`` frames long, except a short first one and a short last one, so that the
    pipeline fills and drains quickly. Buffer ``i`` also holds the last ``overlap`` samples of
    buffer ``i - 1`` (copied, not re-read). A spike belongs to the buffer whose output range
    holds its window start ``t0``; output ranges lag the reads by ``overlap`` so that every
    window, its edge samples and the anti-causal state's look-ahead are inside the buffer.
    Windows starting at or after ``tail_start`` use the exact filtered tail.
    """

    def __init__(self, t_used: int, length: int, chunk_samples: int, settle: int):
        b = _COARSE
        self.t_used = t_used
        self.length = length
        self.overlap = _round_up(settle + length + b, b)
        self.chunk = max(_round_up(chunk_samples, b), self.overlap + b)
        self.tail_start = max(0, (t_used - settle - length - b) // b * b)
        short = min(self.chunk, _round_up(max(self.chunk // 4, self.overlap + b), b))
        bounds = [0] + list(range(short, t_used, self.chunk))
        cut = (t_used - short) // b * b
        if cut - bounds[-1] > self.overlap + b:
            bounds.append(cut)
        bounds.append(t_used)
        self.reads = list(zip(bounds[:-1], bounds[1:]))
        self.origins = [max(0, r - self.overlap) for r, _ in self.reads]
        self.out_ends = [e - self.overlap for _, e in self.reads[:-1]] + [t_used]
        self.max_rows = max(e - o for (_, e), o in zip(self.reads, self.origins))


class _Reader:
    """Reads the plan's buffers in a background thread into two reusable int16 slots.

    The OS is asked to read the next buffer ahead, so the disk keeps streaming while this
    thread copies and the workers compute. Iterating yields ``(rows, bound)``: the buffer and,
    if ``bound_rows`` is given, ``bound_rows(new rows)`` maxed with the previous buffer's
    bound (which covers the copied overlap), else None.
    """

    def __init__(self, sensor, plan: _Plan, n_channels: int, bound_rows=None):
        self._sensor = sensor
        self._plan = plan
        self._bound_rows = bound_rows
        self._hint = _read_ahead(sensor)
        # torch allocates without numpy's huge-page advice, whose first touch is slower here.
        self._slots = [torch.empty(plan.max_rows, n_channels, dtype=torch.int16).numpy() for _ in range(2)]
        self._free = threading.Semaphore(2)
        self._ready: queue.Queue = queue.Queue()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="eimage-reader", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            reads = self._plan.reads
            previous, bound = None, None
            for i, (r0, r1) in enumerate(reads):
                self._free.acquire()
                if self._stop:
                    return
                # The current buffer was hinted one step earlier (the first one just now).
                for j in ((0, 1) if i == 0 else (i + 1,)):
                    if j < len(reads):
                        self._hint(*reads[j])
                slot = self._slots[i % 2]
                head = r0 - self._plan.origins[i]
                if head:
                    slot[:head] = previous[len(previous) - head :]
                self._read(r0, r1, slot[head : head + r1 - r0])
                if self._bound_rows is not None:
                    new = self._bound_rows(slot[head : head + r1 - r0])
                    bound = max(new, bound) if head else new
                previous = slot[: head + r1 - r0]
                self._ready.put((previous, bound))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._ready.put(exc)

    def _read(self, r0, r1, dest):
        frames = dest.reshape((r1 - r0,) + tuple(self._sensor.shape[1:]))
        if isinstance(self._sensor, h5py.Dataset):
            self._sensor.read_direct(frames, np.s_[r0:r1])
        else:
            frames[...] = self._sensor[r0:r1]

    def __iter__(self):
        for _ in self._plan.reads:
            item = self._ready.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def release(self):
        """Give the oldest handed-out slot back to the reader."""
        self._free.release()

    def close(self):
        self._stop = True
        self._free.release()
        self._free.release()
        self._thread.join()


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _max_abs(rows: np.ndarray) -> int:
    """Largest |sample| of int16 rows."""
    lo, hi = torch.aminmax(torch.from_numpy(rows))
    return max(int(hi), -int(lo))


def _read_ahead(sensor):
    """``hint(r0, r1)``: ask the OS to read frames [r0, r1) of an HDF5 file dataset ahead.

    A no-op for anything else (arrays, other HDF5 drivers, chunks that split frames, systems
    without ``posix_fadvise``).
    """
    if not hasattr(os, "posix_fadvise"):
        return lambda r0, r1: None
    try:
        fd = sensor.file.id.get_vfd_handle()
        frame_shape = tuple(sensor.shape[1:])
        if sensor.chunks is None:
            base = sensor.id.get_offset()
            frame = sensor.dtype.itemsize * int(np.prod(frame_shape))

            def hint(r0, r1):
                os.posix_fadvise(fd, base + r0 * frame, (r1 - r0) * frame, os.POSIX_FADV_WILLNEED)

            return hint if base is not None else (lambda r0, r1: None)
        if tuple(sensor.chunks[1:]) != frame_shape:
            return lambda r0, r1: None
        step = sensor.chunks[0]

        def hint(r0, r1):
            for c in range(r0 // step * step, r1, step):
                info = sensor.id.get_chunk_info_by_coord((c,) + (0,) * len(frame_shape))
                if info.byte_offset is not None:
                    os.posix_fadvise(fd, info.byte_offset, info.size, os.POSIX_FADV_WILLNEED)

        return hint
    except (AttributeError, TypeError, ValueError, OSError):
        return lambda r0, r1: None


def _stream(sensor, plan: _Plan, zp: ZeroPhaseHighpass, starts, n_channels):
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
            acc = _Accumulator(zp, [len(s) for s in starts], plan, n_channels, n_workers, pool)
            reader = _Reader(sensor, plan, n_channels, _max_abs)
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


class _Accumulator:
    """Per-unit sums of raw samples and of edge states over the streamed buffers.

    States are known on a grid: every ``_COARSE`` samples from the scans, and halfway between
    from one extra grid input. For a spike with window ``[t0, t1)``, ``P(t0)`` comes from the
    grid point ``t0 - d`` at or before ``t0`` plus the ``d < _FINE`` samples in between, and
    ``Q(t1 - 1)`` from the grid point ``t1 + e`` at or after ``t1`` plus ``e`` samples. So the
    raw samples a spike needs form one contiguous slice ``[t0 - d, t1 + e)``, added into rows
    ``[F-1-d, F-1+L+e)`` of its unit's integer sums (rows: F-1 pre-window, L window, F
    post-window). Integer sums are exact; ``counts`` records how many samples each row summed,
    so the per-channel offset is removed afterwards in float64. Slices are first added into
    int16 sums (same-type adds run 2.5x faster than int16 into int32) as long as the number of
    spikes staged times the largest |sample| cannot overflow, then moved into the int32 sums.

    ``grid`` holds, in blocks of S rows of C: per coarse block ``k`` its P and Q increments,
    the first half-block's P increment and the second half-block's Q increment; then, per
    coarse point ``k``, the states P(kB) and Q(kB-1).
    """

    def __init__(self, zp, n_spikes, plan, n_channels, n_workers, pool):
        self.zp, self.plan, self.pool, self.n_workers = zp, plan, pool, n_workers
        self.n_units = len(n_spikes)
        self.length = plan.length
        self.n_rows = self.length + 2 * _FINE - 1
        # |int16| <= 32768, so int32 sums stay exact for up to 65535 spikes per unit.
        dtype = np.int32 if max(n_spikes) < 65536 else np.int64
        torch_dtype = torch.int32 if dtype == np.int32 else torch.int64
        self.sums = torch.zeros(self.n_units, self.n_rows, n_channels, dtype=torch_dtype).numpy()
        self.stage = torch.zeros(self.n_units, self.n_rows, n_channels, dtype=torch.int16).numpy()
        self.staged = np.zeros(self.n_units, dtype=np.int64)  # bound on |stage| per unit
        self.counts = np.zeros((self.n_units, self.n_rows), dtype=np.int64)
        s = self.n_states = zp.n_states
        nb_max = -(-plan.max_rows // _COARSE)
        self.state_base = 4 * nb_max  # first S-block of the states in ``grid``
        self.grid = torch.zeros((4 * nb_max + 2 * (nb_max + 1)) * s, n_channels)
        self.inputs = self.grid[: 4 * nb_max * s].view(nb_max, 4 * s, n_channels)
        states = self.grid[4 * nb_max * s :].view(nb_max + 1, 2 * s, n_channels)
        # Views made up front: per-step indexing would cost as much as the tiny matmuls.
        self.p_state = states[:, :s].unbind(0)
        self.q_state = states[:, s:].unbind(0)
        self.p_in = self.inputs[:, :s].unbind(0)
        self.q_in = self.inputs[:, s : 2 * s].unbind(0)
        self.scratch = [torch.empty(_TILE, n_channels) for _ in range(n_workers)]
        self.n_blocks = 0
        self.weights = torch.tensor(_grid_weights(zp), dtype=torch.float32)
        self.step = torch.tensor(zp.step_matrix(_COARSE), dtype=torch.float32)
        self.state_sums = torch.zeros(2, self.n_units, s, n_channels, dtype=torch.float64)
        self.tail_sums: dict[int, np.ndarray] = {}

    # -- per buffer -------------------------------------------------------------------------
    def process(self, raw: np.ndarray, bound: int, i: int, units, t0, carry_to: int, tail_units, tail_t0):
        """Add buffer ``i``'s spikes (window starts ``t0``, buffer-relative) to their units.

        ``bound`` is the buffer's largest |sample|. ``tail_units`` / ``tail_t0`` (relative to
        ``tail_start``) are the spikes that use the exact filtered tail; only the last buffer
        has any.
        """
        b, n = _COARSE, raw.shape[0]
        if i == 0:
            self.offset = np.round(raw[: min(n, 1000)].mean(axis=0))
            head = raw[: self.zp.padlen + 1] - self.offset
            self.p_carry = torch.tensor(self.zp.start_state(head), dtype=torch.float32)
            self.offset_t = torch.tensor(self.offset, dtype=torch.float32)
            shared = 0
        else:  # the overlap's grid inputs equal the end of the last buffer's
            shared = (self.plan.reads[i][0] - self.plan.origins[i]) // b
            self.inputs[:shared] = self.inputs[self.n_blocks - shared : self.n_blocks].clone()
        self.origin = self.plan.origins[i]
        self.n_blocks = -(-n // b)
        slices, p_terms, q_terms = _spike_terms(units, t0, self.length, self.state_base)
        grow = np.bincount(units, minlength=self.n_units) * max(bound, 1)
        staged = grow <= 32767
        flush = staged & (self.staged + grow > 32767)
        self.staged = np.where(flush, 0, self.staged) + np.where(staged, grow, 0)
        # All workers compute grid inputs; then worker 0 scans P (and adds the exact tail) while
        # worker 1 scans Q; then all take groups of units' slices until none are left.
        groups = queue.SimpleQueue()
        for part in _unit_groups(slices, 4 * self.n_workers):
            groups.put(part)
        tiles = np.array_split(np.arange(shared * b, n, _TILE), self.n_workers)
        sides = [(self._scan_p, p_terms), (self._scan_q, q_terms)]
        scans = [sides] if self.n_workers == 1 else [sides[:1], sides[1:]]
        loaded = threading.Barrier(self.n_workers)
        raw_t = torch.from_numpy(raw)

        def job(w):
            try:
                self._grid_inputs(raw_t, tiles[w], self.scratch[w])
                loaded.wait()
            except BaseException:
                loaded.abort()  # the other workers stop waiting and fail too
                raise
            for scan, terms in scans[w] if w < len(scans) else ():
                scan(carry_to, units, terms)
            if w == 0:
                self._add_tail(raw, tail_units, tail_t0)
            while True:
                try:
                    part = groups.get_nowait()
                except queue.Empty:
                    return
                self._add_slices(raw, part, staged, flush)

        jobs = [self.pool.submit(job, w) for w in range(self.n_workers)]
        if len(units):
            edges = np.zeros((self.n_units, self.n_rows + 1), dtype=np.int64)
            np.add.at(edges, (slices[:, 0], slices[:, 1]), 1)
            np.add.at(edges, (slices[:, 0], slices[:, 2]), -1)
            self.counts += np.cumsum(edges, axis=1)[:, :-1]
        for j in jobs:
            j.result()

    def _grid_inputs(self, raw: torch.Tensor, tiles, scratch: torch.Tensor):
        """Offset-free float32 tiles (cache-resident, zero-padded to whole blocks) times the weights."""
        b, n = _COARSE, raw.shape[0]
        for a in tiles:
            e = min(a + _TILE, n)
            eb = -(-e // b) * b
            tile = scratch[: e - a]
            tile.copy_(raw[a:e])
            tile.sub_(self.offset_t)  # large DC offsets would cost float32 precision in the states
            scratch[e - a : eb - a].zero_()  # only the last block of the recording is partial
            blocks = scratch[: eb - a].view(-1, b, scratch.shape[1])
            torch.matmul(self.weights, blocks, out=self.inputs[a // b : eb // b])

    def _add_slices(self, raw: np.ndarray, slices: np.ndarray, staged, flush):
        """Integer-add raw slices into unit sums; rows of (unit, first row, end row, t_a, t_b).

        Units in ``staged`` add into their int16 sums, after moving them into the int32 sums
        if ``flush``; the others add straight into the int32 sums.
        """
        for u in np.unique(slices[:, 0]):
            if flush[u]:
                np.add(self.sums[u], self.stage[u], out=self.sums[u])
                self.stage[u] = 0
        for u, a, z, ta, tb in slices.tolist():
            target = (self.stage if staged[u] else self.sums)[u, a:z]
            np.add(target, raw[ta:tb], out=target)

    def _scan_p(self, carry_to: int, units, terms):
        """P forward up to ``carry_to`` (kept for the next buffer); P state sums."""
        k_carry = (carry_to - self.origin) // _COARSE
        self.p_state[0].copy_(self.p_carry)
        for k in range(k_carry):
            torch.addmm(self.p_in[k], self.step, self.p_state[k], out=self.p_state[k + 1])
        self.p_carry = self.p_state[k_carry].clone()
        if len(units):
            self.state_sums[0] += _state_sum(self.grid, self.zp, terms, self.n_units)

    def _scan_q(self, carry_to: int, units, terms):
        """Q backward from the buffer end (zero there: the look-ahead is long enough); Q sums."""
        if not len(units):
            return
        self.q_state[self.n_blocks].zero_()
        k_low = (int(terms[1].min()) - self.state_base) // 2
        for k in range(self.n_blocks - 1, max(k_low, 0) - 1, -1):
            torch.addmm(self.q_in[k], self.step, self.q_state[k + 1], out=self.q_state[k])
        self.state_sums[1] += _state_sum(self.grid, self.zp, terms, self.n_units)

    def _add_tail(self, raw: np.ndarray, units: np.ndarray, offsets: np.ndarray):
        """Add windows starting in the last ``overlap`` samples from the exact filtered tail."""
        if len(units) == 0:
            return
        k = (self.plan.tail_start - self.origin) // _COARSE
        rows = raw[self.plan.tail_start - self.origin :] - self.offset
        y = self.zp.tail(rows, self.p_state[k].numpy().astype(np.float64))
        for u in np.unique(units):
            win = offsets[units == u][:, None] + np.arange(self.length)
            self.tail_sums[u] = y[win].sum(axis=0)

    # -- end of the recording ---------------------------------------------------------------
    def result(self, n_used: np.ndarray) -> np.ndarray:
        """Mean filtered window per unit, float32 (n_units, L, C); NaN where ``n_used`` is 0.

        The edge rows only enter through the two states, so they are folded into them first;
        only the window rows go through the (L, L) kernel matrix. Rows hold raw samples; the
        offset, counted per row, is removed after each map. Buffers are reused across unit
        batches: fresh large tensors cost page faults that are slow in VMs.
        """
        f, length, c, g = _FINE, self.length, self.sums.shape[2], 16
        kernel = torch.from_numpy(toeplitz(self.zp.kernel(length)))
        response = self.zp.window_response(length)
        edges = [  # (rows, fold into the state, state's response over the window, state index)
            (slice(0, f - 1), self.zp.powers(np.arange(f - 1, 0, -1)), response[0], 0),  # x[t0-i]
            (slice(f - 1 + length, None), self.zp.powers(np.arange(1, f + 1)), response[1], 1),  # x[t1-1+i]
        ]
        window = slice(f - 1, f - 1 + length)
        np.add(self.sums, self.stage, out=self.sums)
        offset = torch.from_numpy(self.offset).view(1, 1, c)
        # Scratch in the grid's memory, which is no longer needed and already paged in.
        scratch = self.grid.view(-1)
        sizes = [g * self.n_rows * c, g * length * c, g * self.n_states * c]
        if 2 * sum(sizes) <= scratch.numel():
            parts = scratch[: 2 * sum(sizes)].view(torch.float64).split(sizes)
        else:
            parts = [torch.empty(n, dtype=torch.float64) for n in sizes]
        rows = parts[0].view(g, self.n_rows, c)
        mean = parts[1].view(g, length, c)
        edge = parts[2].view(g, self.n_states, c)
        out = torch.empty(self.n_units, length, c)
        for a in range(0, self.n_units, g):
            z = min(a + g, self.n_units)
            r, y, e = rows[: z - a], mean[: z - a], edge[: z - a]
            r.copy_(torch.from_numpy(self.sums[a:z]))
            count = torch.from_numpy(self.counts[a:z, :, None].astype(np.float64))
            torch.matmul(kernel, r[:, window], out=y)
            y.addcmul_(kernel @ count[:, window], offset, value=-1)
            for part, fold, resp, k in edges:
                fold, resp = torch.from_numpy(fold), torch.from_numpy(resp)
                torch.matmul(fold, r[:, part], out=e)
                e.addcmul_(fold @ count[:, part], offset, value=-1)
                e.add_(self.state_sums[k, a:z])
                y.baddbmm_(resp.expand(z - a, -1, -1), e)
            for u, tail in self.tail_sums.items():
                if a <= u < z:
                    y[u - a].add_(torch.from_numpy(tail))
            y.div_(torch.from_numpy(n_used[a:z].astype(np.float64)).view(-1, 1, 1))  # 0/0: NaN
            out[a:z].copy_(y)
        return out.numpy()


def _unit_groups(slices, n_groups):
    """Split slices (sorted by unit) into about ``n_groups`` runs of whole units.

    One unit's slices add into the same rows, so a unit never spans two groups.
    """
    if not len(slices):
        return []
    size = np.cumsum(slices[:, 2] - slices[:, 1])
    cuts = np.searchsorted(size, size[-1] * np.arange(1, n_groups) / n_groups)
    cuts = np.unique(np.searchsorted(slices[:, 0], slices[np.minimum(cuts, len(slices) - 1), 0]))
    return [part for part in np.split(slices, cuts) if len(part)]


def _spike_terms(units, t0, length, state_base):
    """Per-spike raw slices and grid-state terms (buffer-relative window starts ``t0``).

    Returns ``slices`` (unit, first row, end row, t_a, t_b) sorted by unit and time, and for P
    and Q the terms ``(unit, S-block of grid, power of p)`` whose sum is the spike's
    ``p**d P(t0 - d)`` or ``p**e Q(t1 + e - 1)``: a state at a coarse point is one grid
    block; halfway, it is ``p**F`` times the coarse state (P: before, Q: after) plus the
    half-block increment.
    """
    f = _FINE
    d = t0 % f
    t1 = t0 + length
    e = (-t1) % f
    slices = np.stack([units, f - 1 - d, f - 1 + length + e, t0 - d, t1 + e], axis=1)
    slices = slices[np.lexsort((t0, units))]
    p_terms = _grid_terms(units, t0 - d, d, 0, state_base)
    q_terms = _grid_terms(units, t1 + e, e, 1, state_base)
    return slices, p_terms, q_terms


def _grid_terms(units, at, power, q_side, state_base):
    """Terms summing to ``p**power * state(at)`` for grid points ``at`` (multiples of F)."""
    k, half = np.divmod(at // _FINE, 2)
    off = half == 1
    # P at a half point grows from the coarse state before it, Q (anti-causal) from the one after.
    coarse = k + half * q_side
    units = np.concatenate([units, units[off]])
    blocks = np.concatenate([state_base + 2 * coarse + q_side, (4 * k + 2 + q_side)[off]])
    powers = np.concatenate([power + _FINE * half, power[off]])
    return units, blocks, powers


def _state_sum(table, zp: ZeroPhaseHighpass, terms, n_units):
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


def _grid_weights(zp: ZeroPhaseHighpass) -> np.ndarray:
    """(4S, _COARSE) weights: coarse P and Q increments, first-half P and second-half Q ones."""
    full = zp.grid_weights(_COARSE)
    half = zp.grid_weights(_FINE)
    s = zp.n_states
    mid = np.zeros((2 * s, _COARSE))
    mid[:s, :_FINE] = half[:s]
    mid[s:, _FINE:] = half[s:]
    return np.concatenate([full, mid])


def _round_up(n: int, b: int) -> int:
    return -(-int(n) // b) * b
