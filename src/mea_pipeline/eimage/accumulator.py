"""Per-unit sums of raw samples and filter states over the streamed buffers of the STA."""

from __future__ import annotations

import queue
import threading

import numpy as np
import torch
from scipy.linalg import toeplitz

from .state_grid import COARSE, FINE, grid_weights, spike_terms, state_sum

_TILE = 96  # rows per float32 conversion tile: 96 x 4225 float32 = 1.6 MB, stays in L2


class Accumulator:
    """Per-unit sums of raw samples and of edge states over the streamed buffers.

    States are known on a grid: every ``COARSE`` samples from the scans, and halfway between
    from one extra grid input. For a spike with window ``[t0, t1)``, ``P(t0)`` comes from the
    grid point ``t0 - d`` at or before ``t0`` plus the ``d < FINE`` samples in between, and
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
        self.n_rows = self.length + 2 * FINE - 1
        # |int16| <= 32768, so int32 sums stay exact for up to 65535 spikes per unit.
        dtype = np.int32 if max(n_spikes) < 65536 else np.int64
        torch_dtype = torch.int32 if dtype == np.int32 else torch.int64
        self.sums = torch.zeros(self.n_units, self.n_rows, n_channels, dtype=torch_dtype).numpy()
        self.stage = torch.zeros(self.n_units, self.n_rows, n_channels, dtype=torch.int16).numpy()
        self.staged = np.zeros(self.n_units, dtype=np.int64)  # bound on |stage| per unit
        self.counts = np.zeros((self.n_units, self.n_rows), dtype=np.int64)
        s = self.n_states = zp.n_states
        nb_max = -(-plan.max_rows // COARSE)
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
        self.weights = torch.tensor(grid_weights(zp), dtype=torch.float32)
        self.step = torch.tensor(zp.step_matrix(COARSE), dtype=torch.float32)
        self.state_sums = torch.zeros(2, self.n_units, s, n_channels, dtype=torch.float64)
        self.tail_sums: dict[int, np.ndarray] = {}

    # -- per buffer -------------------------------------------------------------------------
    def process(self, raw: np.ndarray, bound: int, i: int, units, t0, carry_to: int, tail_units, tail_t0):
        """Add buffer ``i``'s spikes (window starts ``t0``, buffer-relative) to their units.

        ``bound`` is the buffer's largest |sample|. ``tail_units`` / ``tail_t0`` (relative to
        ``tail_start``) are the spikes that use the exact filtered tail; only the last buffer
        has any.
        """
        b, n = COARSE, raw.shape[0]
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
        slices, p_terms, q_terms = spike_terms(units, t0, self.length, self.state_base)
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
        b, n = COARSE, raw.shape[0]
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
        k_carry = (carry_to - self.origin) // COARSE
        self.p_state[0].copy_(self.p_carry)
        for k in range(k_carry):
            torch.addmm(self.p_in[k], self.step, self.p_state[k], out=self.p_state[k + 1])
        self.p_carry = self.p_state[k_carry].clone()
        if len(units):
            self.state_sums[0] += state_sum(self.grid, self.zp, terms, self.n_units)

    def _scan_q(self, carry_to: int, units, terms):
        """Q backward from the buffer end (zero there: the look-ahead is long enough); Q sums."""
        if not len(units):
            return
        self.q_state[self.n_blocks].zero_()
        k_low = (int(terms[1].min()) - self.state_base) // 2
        for k in range(self.n_blocks - 1, max(k_low, 0) - 1, -1):
            torch.addmm(self.q_in[k], self.step, self.q_state[k + 1], out=self.q_state[k])
        self.state_sums[1] += state_sum(self.grid, self.zp, terms, self.n_units)

    def _add_tail(self, raw: np.ndarray, units: np.ndarray, offsets: np.ndarray):
        """Add windows starting in the last ``overlap`` samples from the exact filtered tail."""
        if len(units) == 0:
            return
        k = (self.plan.tail_start - self.origin) // COARSE
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
        f, length, c, g = FINE, self.length, self.sums.shape[2], 16
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
