"""The only reader of MCS CMOS-MEA files (``.cmcr`` raw data, ``.cmtr`` spike-sorter results).

Built on McsPyDataTools (``McsPy``); see ``docs/mcs-format.md`` for the layout and
for the McsPy pitfalls this module works around:

* the McsPy root object closes its HDF5 file when garbage-collected, so each reader keeps it
  alive while open, and ``close()`` closes the file explicitly and collects cycles (McsPy has
  no ``close``);
* ``Acquisition.SensorStreams`` & co. are class-level lists that point at the last file
  opened, so only per-instance named access is used (``Acquisition.Sensor_Data``);
* McsPy prints (not raises) "Error opening group ..." for children it cannot wrap, e.g. a
  CMTR's ``/Acquisition`` external link when the CMCR is not beside it; those prints go to
  this module's logger at debug level;
* only ``Peaks`` rows with ``IncludePeak == 1`` are spikes, timestamps are microseconds and
  sample index = ``(Timestamp - From) // Tick`` in integers;
* ``Unit Info`` columns differ between CMOS-MEA-Tools versions, so fields are taken by name;
* the CMTR ``Source`` traces (one value per sample per unit) are never read.

Sensor layout: a full-chip frame ``SensorData[t]`` holds the electrode at (Row, Column),
1-based, at ``[t, Column - 1, Row - 1]`` (flattened C order = SensorID - 1). Use
:func:`sensor_frame_index` rather than indexing by hand.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import h5py
import numpy as np
import McsPy.McsCMOSMEA as _mcspy_module
from McsPy.McsCMOSMEA import McsCMOSMEAData

from .errors import InputError

log = logging.getLogger(__name__)

GRID = 65
SENSOR_AXES = ("time", "column", "row")
PEAK_FIELDS = ("Timestamp", "PeakAmplitude", "IncludePeak")
# Root attribute of both files of a pair `mea-pipeline synth` wrote ("mea-pipeline synth <version>");
# MCS software never writes it, so a file without it is taken as a real recording.
SYNTH_MARK = "MeaPipelineSynth"


class McsFormatError(InputError):
    """A raw file is missing, is not an MCS CMOS-MEA file, or lacks a dataset the pipeline reads."""


def recording_id_from_path(path: str | Path) -> str:
    """File stem with trailing ``-`` removed (``2024.01.17-11.15.41-Rec-.cmtr`` -> ``2024.01.17-11.15.41-Rec``).

    Windows paths (``M:\\data\\x-Rec-.cmtr``, as in the lab's mapping CSV) work on any OS.
    """
    return PureWindowsPath(str(path)).stem.rstrip("-")


def unit_id(unit_number: int) -> str:
    """``7`` -> ``'unit_007'``, ``1234`` -> ``'unit_1234'``."""
    return f"unit_{int(unit_number):03d}"


def sensor_id(row: int, column: int) -> int:
    """MCS SensorID (1..4225) of the electrode at 1-based (row, column)."""
    return GRID * (int(column) - 1) + int(row)


def sensor_coordinates(sensor: int) -> tuple[int, int]:
    """1-based (row, column) of a SensorID."""
    index = int(sensor) - 1
    return index % GRID + 1, index // GRID + 1


def sensor_frame_index(row, column):
    """Index ``(axis 1, axis 2)`` of the electrode at 1-based (row, column) in a full-chip frame.

    Works on ints (returns ints) and elementwise on integer arrays.
    """
    if np.ndim(row) == 0 and np.ndim(column) == 0:
        return int(column) - 1, int(row) - 1
    return np.asarray(column, dtype=np.int64) - 1, np.asarray(row, dtype=np.int64) - 1


def decode_value(value):
    """HDF5 attribute/field value as a plain Python value.

    Byte strings become ``str``, 1-element arrays their single element, numpy scalars Python
    scalars, other arrays lists.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00").rstrip()
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return decode_value(value.reshape(-1)[0])
        return [decode_value(v) for v in value.reshape(-1)] if value.dtype.kind in "SO" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_attributes(attrs) -> dict:
    return {name: decode_value(value) for name, value in attrs.items()}


def _log_mcspy_print(*args, **_kwargs) -> None:
    log.debug("McsPy: %s", " ".join(str(a) for a in args))


# McsPy reports recoverable problems (e.g. a CMTR's /Acquisition link without its CMCR) with
# print(). A module-level name shadows the builtin inside McsPy only, which, unlike
# contextlib.redirect_stdout, is safe when several threads read files at once.
_mcspy_module.print = _log_mcspy_print


def _open_root(path: str | Path, kind: str) -> tuple[Path, McsCMOSMEAData]:
    path = Path(path)
    if not path.is_file():
        raise McsFormatError(f"{kind} file not found: {path}; check the path (mapping CSV row or --{kind})")
    if not h5py.is_hdf5(path):
        raise McsFormatError(
            f"{path} is not an HDF5 file, so not an MCS .{kind}; check it is the right file and "
            "copy it again if it may be truncated")
    try:
        root = McsCMOSMEAData(str(path))
    except Exception as exc:  # McsPy raises KeyError/IOError/TypeError for foreign HDF5 files
        raise McsFormatError(
            f"{path} is not an MCS CMOS-MEA file McsPyDataTools can read ({type(exc).__name__}: {exc}); "
            f"pass the .{kind} written by CMOS-MEA-{'Control' if kind == 'cmcr' else 'Tools'}") from exc
    return path, root


# What each kind of file must hold for the steps that read it (HDF5 paths, not McsPy names).
_REQUIRED_GROUPS = {"cmcr": ("Acquisition", "Acquisition/Sensor Data"), "cmtr": ("Spike Sorter",)}


def check_header(path: str | Path, kind: str) -> None:
    """Cheap check that ``path`` is a readable MCS ``.cmcr``/``.cmtr``: opens it, reads no data.

    Reads the HDF5 superblock and the root group's links only (a few kB even on an 80 GB file
    on a network drive), so a batch can reject a recording before the heavy steps start.

    Raises
    ------
    McsFormatError
        Missing, unreadable (permissions), not HDF5, truncated or damaged, not an MCS file, or
        without the group the steps read (``Acquisition/Sensor Data`` or ``Spike Sorter``).
    """
    path = Path(path)
    if not path.is_file():
        raise McsFormatError(f"{kind} file not found: {path}; check the path (mapping CSV row or --{kind})")
    try:
        with open(path, "rb") as handle:
            handle.read(8)
    except OSError as exc:
        raise McsFormatError(f"{path}: cannot read the .{kind} ({exc.strerror}); give this user read access") from None
    if not h5py.is_hdf5(path):
        raise McsFormatError(f"{path} is not an HDF5 file, so not an MCS .{kind}; check it is the right file and "
                             "copy it again if it may be truncated")
    try:
        with h5py.File(path, "r") as h5:
            if "ID.Type" not in h5.attrs:
                raise McsFormatError(f"{path} is HDF5 but not an MCS file (no root ID.Type); pass the .{kind} "
                                     f"written by CMOS-MEA-{'Control' if kind == 'cmcr' else 'Tools'}")
            missing = [group for group in _REQUIRED_GROUPS[kind] if group not in h5]
            # A .cmtr's Acquisition is an external link to its .cmcr: only the .cmcr holds the data.
            if kind == "cmcr" and not missing and not isinstance(h5.get("Acquisition", getlink=True), h5py.HardLink):
                missing = ["Acquisition"]
    except OSError as exc:
        raise McsFormatError(f"{path}: {_open_failure(exc)}") from None
    if missing:
        raise McsFormatError(f"{path}: no '{missing[0]}' group; is this the .{kind} "
                             f"({'raw data from CMOS-MEA-Control' if kind == 'cmcr' else 'spike sorter results'})?")


# HDF5's message for a file shorter than its superblock says: "... (truncated file: eof = 2097152,
# sblock->base_addr = 0, stored_eof = 4194304)".
_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*?stored_eof = (\d+)")


def _open_failure(exc: OSError) -> str:
    """Why HDF5 could not open a file, in the user's words (no HDF5 internals) with what to do."""
    text = " ".join(str(exc).split())
    if found := _TRUNCATED.search(text):
        return (f"the file is truncated: {int(found[1]):,} of the {int(found[2]):,} bytes its header announces "
                "(an interrupted copy?); copy it again")
    return f"HDF5 cannot open it ({text}); it is damaged or truncated: copy it again"


def _find(group, mcspy_name: str):
    """Named (per-instance) McsPy child, or None when the group has no such child."""
    try:
        return getattr(group, mcspy_name)
    except (AttributeError, IndexError, KeyError):  # McsPy properties raise IndexError for absent parts
        return None


def _require(group, mcspy_name: str, path: Path, what: str, fix: str):
    child = _find(group, mcspy_name)
    if child is None:
        raise McsFormatError(f"{path}: no {what}; {fix}")
    return child


class _McsFile:
    """Shared open/close of one MCS file; subclasses read their part."""

    kind = ""

    def __init__(self, path: str | Path):
        self.path, self._root = _open_root(path, self.kind)
        self.raw_root_attributes = dict(self._root.attrs.items())
        self.root_attributes = decode_attributes(self.raw_root_attributes)

    def close(self) -> None:
        """Close the HDF5 file now and drop every McsPy object that refers to it."""
        root, self._root = self._root, None
        self._drop_references()
        if root is not None:
            # h5py's close() also closes datasets still referenced elsewhere, so the OS handle goes
            # now; McsPy's reference cycles are left to Python's collector (a forced collection
            # here cost 0.2 s per file, five files per recording).
            root.h5_file.close()

    def _drop_references(self) -> None:
        """Forget McsPy objects derived from the root (subclasses extend)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class CmcrFile(_McsFile):
    """An open ``.cmcr``: root attributes, the lazy sensor dataset and the analog channels.

    Attributes
    ----------
    tick_us : int
        Sample interval in microseconds (``SensorMeta`` Tick).
    sampling_rate_hz : float
        ``1e6 / tick_us``.
    from_us : int
        Timestamp of sample 0 (sensor dataset ``From``, else Acquisition ``From``, else 0).
    sensor : h5py.Dataset
        ``(frames, 65, 65)`` int16, never read whole here; axes as in :data:`SENSOR_AXES`.
    """

    kind = "cmcr"

    def __init__(self, path: str | Path):
        super().__init__(path)
        try:
            self._init_streams()
        except Exception:
            self.close()
            raise

    def _init_streams(self) -> None:
        fix = "is this the raw .cmcr written by CMOS-MEA-Control (not a .cmtr)?"
        acquisition = _require(self._root, "Acquisition", self.path, "'Acquisition' group", fix)
        stream = _require(acquisition, "Sensor_Data", self.path, "'Acquisition/Sensor Data' stream", fix)
        self.sensor = _find(stream, "SensorData_1_1")
        if self.sensor is None:
            entities = list(stream.SensorData)
            if not entities:
                raise McsFormatError(f"{self.path}: 'Acquisition/Sensor Data' holds no sensor dataset; {fix}")
            self.sensor = entities[0]
        meta = _require(stream, "SensorMeta", self.path, "'Acquisition/Sensor Data/SensorMeta' table", fix)
        self.tick_us = int(meta["Tick"][0])
        if self.tick_us <= 0:
            raise McsFormatError(f"{self.path}: SensorMeta Tick is {self.tick_us} us; the file is damaged")
        self.sampling_rate_hz = 1e6 / self.tick_us
        start = self.sensor.attrs.get("From", acquisition.attrs.get("From", 0))
        self.from_us = int(decode_value(start))
        self.n_sensor_samples = int(self.sensor.shape[0])
        self.sensor_grid = tuple(int(n) for n in self.sensor.shape[1:])

        self._analog_entity = None
        self.analog_labels: list[str] = []
        analog_stream = _find(acquisition, "Analog_Data")
        if analog_stream is not None:
            entity = _find(analog_stream, "ChannelData_1")
            entities = [entity] if entity is not None else list(analog_stream.Data)
            if entities:
                self._analog_entity = entities[0]
                self.analog_labels = self._channel_labels(analog_stream)
        self.n_analog_samples = int(self._analog_entity.shape[1]) if self._analog_entity is not None else 0

        duration_us = self.root_attributes.get("LB.RecordingDuration")
        if duration_us is None:
            n = self.n_analog_samples or self.n_sensor_samples
            duration_us = n * self.tick_us
        self.duration_s = float(duration_us) / 1e6

    def _channel_labels(self, analog_stream) -> list[str]:
        """Labels of the analog rows (``ChannelMeta`` Label, else ``channel_<ChannelID>``)."""
        n_rows = int(self._analog_entity.shape[0])
        meta = _find(analog_stream, "ChannelMeta")
        rows = meta[()] if meta is not None else None
        fields = rows.dtype.names if rows is not None else ()
        group = self._analog_entity.name.rsplit(" ", 1)[-1]   # 'ChannelData <GroupID>'
        if "GroupID" in fields and group.isdigit():
            rows = rows[rows["GroupID"] == int(group)]
        labels = []
        for i in range(n_rows):
            row = rows[i] if rows is not None and i < len(rows) else None
            label = decode_value(row["Label"]) if row is not None and "Label" in fields else ""
            channel = decode_value(row["ChannelID"]) if row is not None and "ChannelID" in fields else i + 1
            labels.append(str(label) or f"channel_{channel}")
        return labels

    def analog(self) -> np.ndarray:
        """All analog channels as stored, ``(channels, samples)`` raw integers (read whole)."""
        if self._analog_entity is None:
            raise McsFormatError(
                f"{self.path}: no 'Acquisition/Analog Data/ChannelData 1' (light reference and frame sync); "
                "record the auxiliary channels in CMOS-MEA-Control")
        return self._analog_entity[()]

    def _drop_references(self) -> None:
        self.sensor = None
        self._analog_entity = None


@dataclass
class UnitMetadata:
    """One sorted unit's identity and sorter metadata (no peaks).

    ``unit_info`` and ``attributes`` hold decoded Python values (:func:`decode_value`);
    ``raw_unit_info`` and ``raw_attributes`` the same fields as h5py returns them (numpy
    scalars and arrays, bytes), for copying them the way the lab's scripts store them.
    """

    unit_number: int
    unit_id: str
    row: int
    column: int
    sensor_id: int
    unit_info: dict
    attributes: dict
    roi_stas: np.ndarray | None
    unmixing: np.ndarray | None
    raw_unit_info: dict = field(default_factory=dict)
    raw_attributes: dict = field(default_factory=dict)


@dataclass
class Unit:
    """One sorted unit with its spikes (``IncludePeak == 1`` peaks)."""

    unit_number: int
    unit_id: str
    row: int
    column: int
    sensor_id: int
    spike_samples: np.ndarray
    peak_amplitudes: np.ndarray
    waveform: np.ndarray
    unit_info: dict
    attributes: dict
    roi_stas: np.ndarray | None
    unmixing: np.ndarray | None


def cutout_fields(names) -> list[str]:
    """``Peaks`` cutout columns: the fields named by a sample number, in sample order."""
    return sorted((n for n in names if n.isdigit()), key=int)


def spikes_from_peaks(peaks: np.ndarray, tick_us: int, from_us: int = 0):
    """Spike samples, amplitudes and mean cutout from a ``Peaks`` table.

    Returns ``(samples int64 sorted, amplitudes float32, waveform float32)``; samples are
    ``(Timestamp - from_us) // tick_us`` of the ``IncludePeak == 1`` rows.
    """
    included = peaks[peaks["IncludePeak"] == 1]
    samples = (included["Timestamp"].astype(np.int64) - np.int64(from_us)) // np.int64(tick_us)
    order = np.argsort(samples, kind="stable")
    amplitudes = included["PeakAmplitude"].astype(np.float32)[order]
    fields = cutout_fields(peaks.dtype.names)
    if len(included) and fields:
        waveform = np.array([included[f].mean(dtype=np.float64) for f in fields], dtype=np.float32)
    else:
        waveform = np.zeros(0, dtype=np.float32)
    return samples[order], amplitudes, waveform


class CmtrFile(_McsFile):
    """An open ``.cmtr``: root attributes and the Spike Sorter units.

    Works without the ``.cmcr`` beside it: nothing is read through the ``/Acquisition``
    external link, and the per-unit ``Source`` traces are never read.
    """

    kind = "cmtr"

    def _sorter(self):
        return _require(self._root, "Spike_Sorter", self.path, "'Spike Sorter' group",
                        "run the spike sorter in CMOS-MEA-Tools and save its results in this .cmtr")

    def unit_metadata(self) -> list[UnitMetadata]:
        """Identity, ``Unit Info`` (by field name), attributes, RoiSTAs and Unmixing of every unit."""
        sorter = self._sorter()
        groups = sorter.get_units_by_id()
        return [self._metadata(group) for group in groups]

    def units(self, tick_us: int, from_us: int = 0) -> list[Unit]:
        """Every unit, sorted by unit number, with spikes as sample indices.

        Parameters
        ----------
        tick_us, from_us : int
            The CMCR's sample interval and start time (µs); ``(Timestamp - from_us) // tick_us``.
        """
        if int(tick_us) <= 0:
            raise ValueError(f"tick_us must be positive, got {tick_us}")
        sorter = self._sorter()
        groups = sorter.get_units_by_id()
        units = []
        for group in groups:
            meta = self._metadata(group)
            if "Peaks" not in group:
                raise McsFormatError(f"{self.path}: unit {meta.unit_number} has no 'Peaks' dataset; "
                                     "re-export the spike sorter results from CMOS-MEA-Tools")
            peaks = group["Peaks"][()]
            missing = [f for f in PEAK_FIELDS if f not in (peaks.dtype.names or ())]
            if missing:
                raise McsFormatError(f"{self.path}: unit {meta.unit_number} 'Peaks' lacks field(s) "
                                     f"{', '.join(missing)}; not a CMOS-MEA-Tools Peaks table")
            samples, amplitudes, waveform = spikes_from_peaks(peaks, int(tick_us), int(from_us))
            units.append(Unit(unit_number=meta.unit_number, unit_id=meta.unit_id, row=meta.row,
                              column=meta.column, sensor_id=meta.sensor_id, spike_samples=samples,
                              peak_amplitudes=amplitudes, waveform=waveform, unit_info=meta.unit_info,
                              attributes=meta.attributes, roi_stas=meta.roi_stas, unmixing=meta.unmixing))
        return units

    def _metadata(self, group) -> UnitMetadata:
        raw_attributes = dict(group.attrs.items())
        attributes = decode_attributes(raw_attributes)
        number = int(attributes["UnitID"])
        raw_unit_info = {}
        if "Unit Info" in group:
            table = group["Unit Info"][()]
            if len(table):
                raw_unit_info = {name: table[0][name] for name in table.dtype.names}
        unit_info = {name: decode_value(value) for name, value in raw_unit_info.items()}

        def pick(name):
            for source in (unit_info, attributes):
                if name in source:
                    return int(source[name])
            return None

        sensor, row, column = pick("SensorID"), pick("Row"), pick("Column")
        if row is None or column is None:
            if sensor is None:
                raise McsFormatError(f"{self.path}: unit {number} has neither Row/Column nor SensorID")
            row, column = sensor_coordinates(sensor)
        if sensor is None:
            sensor = sensor_id(row, column)
        return UnitMetadata(unit_number=number, unit_id=unit_id(number), row=row, column=column,
                            sensor_id=sensor, unit_info=unit_info, attributes=attributes,
                            roi_stas=_optional_matrix(group, "RoiSTAs"),
                            unmixing=_optional_matrix(group, "Unmixing"),
                            raw_unit_info=raw_unit_info, raw_attributes=raw_attributes)


def _optional_matrix(group, name: str) -> np.ndarray | None:
    return group[name][()].astype(np.float32) if name in group else None
