"""How one streaming pass of the electrical-image STA cuts the sensor block into buffers."""

from __future__ import annotations

from .state_grid import COARSE


class Plan:
    """Chunk layout of one pass.

    Reads are ``chunk`` frames long, except a short first one and a short last one, so that the
    pipeline fills and drains quickly. Buffer ``i`` also holds the last ``overlap`` samples of
    buffer ``i - 1`` (copied, not re-read). A spike belongs to the buffer whose output range
    holds its window start ``t0``; output ranges lag the reads by ``overlap`` so that every
    window, its edge samples and the anti-causal state's look-ahead are inside the buffer.
    Windows starting at or after ``tail_start`` use the exact filtered tail.
    """

    def __init__(self, t_used: int, length: int, chunk_samples: int, settle: int):
        b = COARSE
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


def _round_up(n: int, b: int) -> int:
    return -(-int(n) // b) * b
