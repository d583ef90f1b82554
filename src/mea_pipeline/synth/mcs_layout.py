"""MCS HDF5 conventions McsPyDataTools requires (docs/mcs-format.md).

McsPy dispatches on the ``ID.TypeID`` GUID, needs ``ID.Type``, ``ID.TypeID``, ``ID.Instance``
and ``ID.InstanceID`` on every object it wraps, decodes string attributes with ``.decode()``
(so they must be fixed-length byte strings) and reads numeric attributes as ``value[0]`` (so
they must be 1-element arrays).
"""

from __future__ import annotations

import re
import uuid

import numpy as np

from .. import __version__
from ..mcs_io import SYNTH_MARK

TYPE_IDS = {
    "root": "cabb6cdd-47e0-417a-8e04-5664cbbc449b",
    "acquisition": "650d88ce-9f24-4b20-ac2b-254defd12761",
    "sensor_stream": "15e5a1fe-df2f-421b-8b60-23eeb2213c45",
    "sensor_data": "49da47df-f397-4121-b5da-35317a93e705",
    "sensor_meta": "ab2aa189-2e72-4148-a2ef-978119223412",
    "channel_stream": "9217aeb4-59a0-4d7f-bdcd-0371c9fd66eb",
    "channel_data": "5efe7932-dcfe-49ff-ba53-25accff5d622",
    "channel_meta": "9e8ac9cd-5571-4ee5-bbfa-8e9d9c436daa",
    "spike_sorter": "7263d1b7-f57a-42de-8f51-5d6326d22f2a",
    "units": "7cffd022-c99e-42c2-b9f7-f79be7b4dfe6",
    "unit": "0e5a97df-9de0-4a22-ab8c-54845c1ff3b9",
    "peaks": "147721c1-1ca8-4a16-b697-08fbefddc180",
    "unit_info": "ae5e3dbc-cca6-4565-8647-e681821a1801",
    "source": "4b383ee7-f561-4dbd-abc9-1c0bf831c02c",
    "roi_stas": "58c6e2a7-281c-4ace-884c-69f706bbc75e",
    "unmixing": "1dc2e95d-f66e-4a95-b3f9-a40da9533601",
}

# Unit Info / Units columns in the order the lab's newer CMOS-MEA-Tools files list them.
UNIT_INFO_DTYPE = np.dtype([
    ("Row", "<i4"), ("Column", "<i4"), ("SensorID", "<i4"), ("UnitID", "<i4"), ("RoiID", "<i4"),
    ("SNR", "<f8"), ("Separability", "<f8"), ("IsoINN", "<f8"), ("IsoIBg", "<f8"), ("AmplitudeSD", "<f8"),
    ("NoiseStd", "<f8"), ("SDScore", "<f8"), ("RSTD", "<f8"), ("Skewness", "<f8"), ("Kurtosis", "<f8"),
    ("IcaConverged", "<i4"), ("IcaIterations", "<i4"), ("Tags", "S64"),
])


def text(value: str) -> np.bytes_:
    """Fixed-length byte string attribute."""
    return np.bytes_(value.encode("utf-8"))


def number(value, dtype: str = "<i8") -> np.ndarray:
    """1-element numeric attribute."""
    return np.array([value], dtype=dtype)


def guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def set_ids(obj, id_type: str, type_key: str, instance: str, rng: np.random.Generator) -> None:
    """The four ``ID.*`` attributes McsPy needs on an object."""
    obj.attrs["ID.Type"] = text(id_type)
    obj.attrs["ID.TypeID"] = text(TYPE_IDS[type_key])
    obj.attrs["ID.Instance"] = text(instance)
    obj.attrs["ID.InstanceID"] = text(guid(rng))


def date_time(recording_id: str) -> str:
    """``DateTime`` in CMOS-MEA-Control's ``dd.mm.yyyy HH:MM:SS`` form, from the recording ID."""
    match = re.match(r"(\d{4})\.(\d{2})\.(\d{2})[-.](\d{2})\.(\d{2})\.(\d{2})", recording_id)
    if not match:
        return "01.01.2024 00:00:00"
    y, mo, d, h, mi, s = match.groups()
    return f"{d}.{mo}.{y} {h}:{mi}:{s}"


def set_root(f, recording_id: str, file_name: str, program: str, version: str, duration_us: int,
             rng: np.random.Generator) -> None:
    set_ids(f, "McsData", "root", file_name, rng)
    f.attrs["FileVersion"] = number(2, "<i4")
    f.attrs["DateTime"] = text(date_time(recording_id))
    f.attrs["ProgramName"] = text(program)
    f.attrs["ProgramVersion"] = text(version)
    f.attrs["LB.RecordingDuration"] = number(duration_us)
    # Says the file is synthetic: step 10 warns when its packaged weights meet a file without it.
    f.attrs[SYNTH_MARK] = text(f"mea-pipeline synth {__version__}")
