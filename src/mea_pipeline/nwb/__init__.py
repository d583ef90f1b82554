"""NWB 2.x export of a finished output file (``<recording_id>.nwb``, DANDI-ready).

``options`` (what the caller chooses and what the export reports), ``source`` (the output file,
read through the steps' declarations and readers only), ``session`` (NWBFile, start time,
provenance), ``subject`` (the sheet row as an NWB Subject), ``electrodes`` (device, group and the
65 x 65 electrode table), ``units`` (spike times in seconds, electrical images, unit features),
``stimulus`` (movie trials, moving-bar sweeps, display frames), ``receptive_fields`` (the
dense-noise STAs), ``atomic`` (temporary file renamed
on success) and ``export`` (:func:`export_nwb`, the one entry point).
"""

from .export import export_nwb, nwb_name
from .options import ExportReport, NwbOptions

__all__ = ["ExportReport", "NwbOptions", "export_nwb", "nwb_name"]
