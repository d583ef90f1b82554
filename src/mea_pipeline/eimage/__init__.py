"""Electrical-image STA: the mean high-passed sensor window around each unit's spikes (load_recording).

``params`` (:class:`EimageParams`), ``sta`` (:func:`~.sta.compute_eimage_sta`: one streaming
pass for all units), ``plan`` (the buffers of the pass), ``reader`` (the raw block read ahead in
a background thread), ``accumulator`` (per-unit sums of raw samples and filter states),
``state_grid`` (where each spike's edge states come from), ``zero_phase`` (the filter).

Only the parameters are exported here: the computation needs torch, and load_recording declares its
parameters from this package, so reading the step registry does not import torch
(``from mea_pipeline.eimage.sta import compute_eimage_sta`` where the STA is computed).
"""

from .params import EimageParams

__all__ = ["EimageParams"]
