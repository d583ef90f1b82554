"""Device, electrode group and the 65 x 65 electrode table of the MCS CMOS-MEA."""

from __future__ import annotations

import numpy as np
from hdmf.common import VectorData
from pynwb import NWBFile
from pynwb.file import ElectrodesTable

from ..mcs_io import GRID
from ..steps import file_metadata
from .source import Source


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
    rows, cols = np.divmod(np.arange(GRID * GRID), GRID)
    # The table is built from whole columns: adding 4225 rows one by one takes pynwb seconds.
    columns = {
        "location": ("location of the electrode", ["retina"] * len(rows)),
        "group": ("electrode group of the electrode", [group] * len(rows)),
        "group_name": ("name of that group", [group.name] * len(rows)),
        "rel_x": ("x position (um) in the group: col x pitch", cols * pitch_um),
        "rel_y": ("y position (um) in the group: row x pitch (downward)", rows * pitch_um),
        "row": ("eimage axis 1 index (0-based; rows grow downward)", rows),
        "col": ("eimage axis 2 index (0-based)", cols),
        # eimage axis 1 is MCS Column - 1 and axis 2 MCS Row - 1 (mcs_io.sensor_frame_index), so the
        # flattened frame's order is the SensorID's.
        "sensor_id": ("MCS SensorID = 65 * (MCS Column - 1) + MCS Row (1-based)", rows * GRID + cols + 1),
    }
    nwbfile.electrodes = ElectrodesTable(id=np.arange(len(rows)), columns=[
        VectorData(name=name, description=description, data=data) for name, (description, data) in columns.items()])
