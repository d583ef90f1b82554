"""NWB 2.x export of a finished output file (``<recording_id>.nwb``, DANDI-ready).

``options`` (what the caller chooses and what the export reports), ``source`` (the output file,
read through the steps' declarations and readers only), ``session`` (NWBFile, start time,
provenance), ``subject`` (the sheet row as an NWB Subject), ``electrodes`` (device, group and the
65 x 65 electrode table), ``units`` (spike times in seconds, electrical images, unit features),
``stimulus`` (movie trials, moving-bar sweeps, display frames), ``receptive_fields`` (the
dense-noise STAs), ``atomic`` (temporary file renamed
on success) and ``export`` (:func:`~.export.export_nwb` for a file, :func:`~.export.export_open`
for an open one, as the ``nwb_export`` step does).

Nothing is imported here: the ``nwb_export`` step's parameters (``options``) load with the step
registry, without pynwb, and the export modules import the steps' readers.
"""
