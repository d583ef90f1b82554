"""The pipeline's steps, one module each; ``REGISTRY`` orders them by their declarations."""

from . import (ap_tracking, cell_type_labels, dense_noise_sta, dsgc, file_metadata, gsheet_metadata, load_recording,
               rf_geometry, section_spike_times, section_time, soma_geometry)
from .registry import Registry, Step, StepContext

REGISTRY = Registry([
    load_recording.STEP,
    section_time.STEP,
    section_spike_times.STEP,
    dense_noise_sta.STEP,
    file_metadata.STEP,
    soma_geometry.STEP,
    rf_geometry.STEP,
    gsheet_metadata.STEP,
    cell_type_labels.STEP,
    ap_tracking.STEP,
    dsgc.STEP,
])

__all__ = ["REGISTRY", "Registry", "Step", "StepContext"]
