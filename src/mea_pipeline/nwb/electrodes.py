"""Device, electrode group and the 65 x 65 electrode table of the MCS CMOS-MEA."""

from __future__ import annotations

import numpy as np
from pynwb import NWBFile

from ..steps import file_metadata
from .source import Source

GRID = 65  # electrodes per side; the table has GRID * GRID rows, row-major in the eimage axes


def electrode_pitch(source: Source, default_um: float, notes: list[str]) -> float:
    """Electrode spacing (um): a raw-file attribute naming a pitch when there is one, else ``default_um``."""
    if source.has("file_metadata"):
        for name in source.fields(file_metadata.CMCR_ATTRIBUTE, "attribute"):
            if "pitch" in name.lower():
                value = source.number(file_metadata.CMCR_ATTRIBUTE, attribute=name)
                if np.isfinite(value) and value > 0:
                    return value
    notes.append(f"electrode pitch: the raw file gives none; {default_um:g} um used")
    return default_um


def add_electrodes(nwbfile: NWBFile, pitch_um: float) -> None:
    """Add the device, one electrode group and the 4225 electrodes.

    Electrode ``i`` sits at eimage axis 1 index ``row = i // 65`` and axis 2 index ``col = i % 65``
    (the pipeline's electrode frame: rows grow downward), so a (65, 65) electrical-image frame
    flattened in C order follows the table. ``rel_x`` = col x pitch, ``rel_y`` = row x pitch (um);
    ``sensor_id`` is the MCS SensorID (1-based, = i + 1).
    """
    device = nwbfile.create_device(name="CMOS-MEA", description="65 x 65 CMOS microelectrode array "
                                   "(CMOS-MEA5000 family), recorded with CMOS-MEA-Control",
                                   manufacturer="Multi Channel Systems MCS GmbH")
    group = nwbfile.create_electrode_group(name="cmos_mea", description=f"all {GRID * GRID} electrodes of the array",
                                           location="retina", device=device)
    nwbfile.add_electrode_column("row", "eimage axis 1 index (0-based; rows grow downward)")
    nwbfile.add_electrode_column("col", "eimage axis 2 index (0-based)")
    nwbfile.add_electrode_column("sensor_id", "MCS SensorID = 65 * (MCS Column - 1) + MCS Row (1-based)")
    for index in range(GRID * GRID):
        row, col = divmod(index, GRID)
        nwbfile.add_electrode(group=group, location="retina", rel_x=col * pitch_um, rel_y=row * pitch_um,
                              row=row, col=col, sensor_id=index + 1)
