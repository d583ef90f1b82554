"""From the CNN's axon probability volume to the axon's centroid track.

Volumes are (t, row, col) arrays (row = axis 1, col = axis 2). Connectivity is 4-connected within
a frame; frames are never connected to each other when labelling.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# 4-connected neighbours inside one frame only, for labelling a whole volume at once.
_IN_FRAME_CROSS = np.zeros((3, 3, 3), dtype=bool)
_IN_FRAME_CROSS[1] = ndimage.generate_binary_structure(2, 1)


def filter_noise(prediction: np.ndarray, threshold: float, min_cluster_size: int,
                 temporal_window_size: int) -> np.ndarray:
    """Remove isolated specks from a probability volume (the lab's three-stage filter).

    1. Probabilities below ``threshold`` become 0; the others keep their value.
    2. In each frame, 4-connected components smaller than ``min_cluster_size`` are removed,
       except that a frame with only 1 or 2 non-zero pixels in total keeps them (lab quirk).
    3. For frames 1 .. T-2 in increasing order, a non-zero pixel is zeroed when neither the
       previous frame (already filtered by this stage) nor the next frame (not yet) has a
       non-zero pixel within ``temporal_window_size // 2`` of it (a square neighbourhood,
       clipped at the edges). The first and last frames are not checked.

    Returns
    -------
    filtered : float32 array of the prediction's shape (the input is not modified)
    """
    filtered = np.where(prediction < threshold, 0.0, prediction).astype(np.float32)
    nonzero = filtered != 0
    labels, _ = ndimage.label(nonzero, structure=_IN_FRAME_CROSS)
    sizes = np.bincount(labels.ravel())
    few_pixels = np.isin(nonzero.sum(axis=(1, 2)), (1, 2))
    keep = (sizes[labels] >= min_cluster_size) | few_pixels[:, None, None]
    filtered[nonzero & ~keep] = 0.0

    side = 2 * (temporal_window_size // 2) + 1
    # The "next" frame is always still unfiltered by stage 3, so its neighbourhoods can be computed at once.
    near_next = ndimage.maximum_filter(filtered != 0, size=(1, side, side), mode="constant")
    for t in range(1, filtered.shape[0] - 1):
        near_previous = ndimage.maximum_filter(filtered[t - 1] != 0, size=side, mode="constant")
        filtered[t][~(near_previous | near_next[t + 1])] = 0.0
    return filtered


def axon_centroids(filtered: np.ndarray, soma_row: int, soma_col: int, start_frame: int,
                   exclude_radius: int, max_displacement: float) -> np.ndarray:
    """Probability-weighted centre of the largest signal patch of each frame, soma excluded.

    From ``start_frame`` on, each frame's square of half-width ``exclude_radius`` around the
    soma is zeroed; the largest 4-connected component (ties: the first in raster order) gives
    the centroid. A frame without signal, or whose centroid lies farther than
    ``max_displacement`` from the last accepted one, is skipped.

    Returns
    -------
    centroids : float32 array (N, 3) of [t, row, col]
    """
    volume = np.array(filtered[start_frame:], dtype=np.float64)
    r0, c0 = max(0, soma_row - exclude_radius), max(0, soma_col - exclude_radius)
    volume[:, r0:soma_row + exclude_radius + 1, c0:soma_col + exclude_radius + 1] = 0.0
    labels, n_labels = ndimage.label(volume != 0, structure=_IN_FRAME_CROSS)
    if n_labels == 0:
        return np.empty((0, 3), dtype=np.float32)
    ids = np.arange(1, n_labels + 1)
    sizes = np.bincount(labels.ravel())[1:]
    frames = np.array([box[0].start for box in ndimage.find_objects(labels)])
    # Per frame: largest component, the lowest label among equals (labels follow raster order).
    order = np.lexsort((ids, -sizes, frames))
    first_in_frame = order[np.unique(frames[order], return_index=True)[1]]
    chosen = ids[first_in_frame]
    centres = np.array(ndimage.center_of_mass(volume, labels, chosen)).reshape(-1, 3)

    track, previous = [], None
    for frame, (_, row, col) in zip(frames[first_in_frame], centres):
        if previous is not None and np.hypot(row - previous[0], col - previous[1]) > max_displacement:
            continue
        track.append((start_frame + frame, row, col))
        previous = (row, col)
    return np.array(track, dtype=np.float32).reshape(-1, 3)


def longest_smooth_segment(centroids: np.ndarray, max_jump: float) -> np.ndarray:
    """Drop outlier stretches: split the track at jumps over ``max_jump``, keep the longest part.

    Centroids are sorted by t (stable) first; the jump is the (row, col) distance between
    consecutive centroids. Ties between equally long parts go to the earliest.

    Returns
    -------
    centroids : float32 array (M, 3) of [t, row, col]
    """
    track = np.asarray(centroids, dtype=np.float32).reshape(-1, 3)
    track = track[np.argsort(track[:, 0], kind="stable")]
    if len(track) < 2:
        return track
    jumps = np.hypot(*np.diff(track[:, 1:], axis=0).T) > max_jump
    bounds = np.concatenate([[0], np.flatnonzero(jumps) + 1, [len(track)]])
    longest = int(np.argmax(np.diff(bounds)))  # argmax takes the first of equal lengths
    return track[bounds[longest]:bounds[longest + 1]]
