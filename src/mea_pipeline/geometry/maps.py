"""Centre and size logic shared by soma_geometry and rf_geometry.

Both steps find a centre as the argmax of a per-pixel peak-to-peak map of temporally smoothed
traces, and a size as the connected threshold region of a frame-range max - min map that
contains that centre.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, label
from scipy.signal import savgol_filter

SIZE_KEYS = ("size_x", "size_y", "area", "equivalent_diameter")


def remove_baseline(data: np.ndarray, baseline_frames: int) -> np.ndarray:
    """``data`` (t, ...) as float64 with NaN -> 0, minus each pixel's mean over the first frames."""
    clean = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0)
    return clean - clean[:baseline_frames].mean(axis=0, keepdims=True)


def finite_peak_to_peak(data: np.ndarray) -> np.ndarray:
    """Per pixel max - min over axis 0 of the finite samples (0 where a pixel has none)."""
    data = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(data)
    high = np.where(finite, data, -np.inf).max(axis=0)
    low = np.where(finite, data, np.inf).min(axis=0)
    return np.where(finite.any(axis=0), high - low, 0.0)


def varies_in_time(data: np.ndarray) -> bool:
    """True when at least one pixel's finite samples are not all equal along axis 0."""
    return bool(finite_peak_to_peak(data).max() > 0)


def savgol_smooth(data: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing of every pixel's trace along axis 0 in one vectorised call.

    The window is shrunk to the longest odd length that fits the trace and the order to
    ``window - 1`` if needed, so short traces still work.
    """
    n = data.shape[0]
    window = min(window, n if n % 2 else n - 1)
    order = min(order, window - 1)
    return savgol_filter(data, window, order, axis=0)


def peak_to_peak_map(data: np.ndarray, window: int, order: int) -> np.ndarray:
    """max - min over time of the Savitzky-Golay smoothed traces of ``data`` (t, rows, cols)."""
    smooth = savgol_smooth(data, window, order)
    return smooth.max(axis=0) - smooth.min(axis=0)


def argmax_center(values: np.ndarray) -> tuple[int, int]:
    """(axis 1, axis 2) index of the largest value, first in row-major order on ties."""
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row), int(col)


def frame_range_diff(data: np.ndarray, frame_range: tuple[int, int]) -> np.ndarray:
    """max - min over frames ``frame_range[0] .. frame_range[1]`` inclusive, clipped to the data.

    NaN samples are ignored; a pixel with no finite sample gives 0.
    """
    first = int(np.clip(frame_range[0], 0, data.shape[0] - 1))
    last = int(np.clip(frame_range[1], first, data.shape[0] - 1))
    return finite_peak_to_peak(data[first:last + 1])


def threshold_size(diff_map: np.ndarray, center: tuple[int, int], size_sigma: float,
                   threshold_fraction: float) -> dict[str, float]:
    """Extents and area of the thresholded, smoothed ``diff_map`` region around ``center``.

    The map is smoothed by a 2-D Gaussian (``size_sigma``, reflect edges), thresholded at
    ``threshold_fraction`` of its maximum (strictly above) and split into 4-connected
    components. The component containing ``center`` is measured; if ``center`` lies in none,
    the whole mask is. ``size_x`` is the extent along axis 2 (columns), ``size_y`` along axis 1
    (rows), ``area`` the pixel count and ``equivalent_diameter`` the diameter of the disc of
    that area (0 for an empty region).
    """
    smooth = gaussian_filter(diff_map, size_sigma)
    mask = smooth > threshold_fraction * smooth.max()
    labels, _ = label(mask)
    region = labels == labels[center] if labels[center] else mask
    rows, cols = np.nonzero(region)
    area = float(len(rows))
    if not area:
        return dict.fromkeys(SIZE_KEYS, 0.0)
    return {
        "size_x": float(cols.max() - cols.min() + 1),
        "size_y": float(rows.max() - rows.min() + 1),
        "area": area,
        "equivalent_diameter": float(2.0 * np.sqrt(area / np.pi)),
    }
