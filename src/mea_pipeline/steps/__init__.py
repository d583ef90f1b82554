"""The pipeline's steps, one module each; ``REGISTRY`` orders them by their declarations.

The run order (and each step's public number) follows from the steps' ``upstream`` declarations,
ties broken by their ``position``, not from the order of this set.
"""

from . import (ap_tracking, cell_type_labels, dense_noise_sta, dsgc, file_metadata, gsheet_metadata, load_recording,
               nwb_export, rf_geometry, section_spike_times, section_time, soma_geometry)
from .registry import Registry, Step, StepContext

REGISTRY = Registry([module.STEP for module in (
    ap_tracking, cell_type_labels, dense_noise_sta, dsgc, file_metadata, gsheet_metadata, load_recording,
    nwb_export, rf_geometry, section_spike_times, section_time, soma_geometry)])

__all__ = ["REGISTRY", "Registry", "Step", "StepContext"]
