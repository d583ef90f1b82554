"""Reads the raw sensor block buffer by buffer in a background thread, asking the OS to read ahead."""

from __future__ import annotations

import os
import queue
import threading

import h5py
import numpy as np
import torch

from .plan import Plan


class BufferReader:
    """Reads the plan's buffers in a background thread into two reusable int16 slots.

    The OS is asked to read the next buffer ahead, so the disk keeps streaming while this
    thread copies and the workers compute. Iterating yields ``(rows, bound)``: the buffer and,
    if ``bound_rows`` is given, ``bound_rows(new rows)`` maxed with the previous buffer's
    bound (which covers the copied overlap), else None.
    """

    def __init__(self, sensor, plan: Plan, n_channels: int, bound_rows=None):
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


def max_abs(rows: np.ndarray) -> int:
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
