"""Every key of an HDF5 file (groups, datasets, ``owner@attribute``) and each value, read once.

A lab-scale output holds ~126 000 datasets, so the walk and the reads use h5py's low-level API:
the high-level ``File[path][()]`` costs about twice as much per small dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError

GROUP, DATASET, ATTRIBUTE = "group", "dataset", "attribute"


@dataclass(frozen=True)
class Value:
    """What a dataset or attribute holds: its dtype, its shape (None when empty) and its data."""

    dtype: np.dtype
    shape: tuple[int, ...] | None
    data: np.ndarray | None


def open_file(path: Path, role: str) -> h5py.File:
    """``path`` opened read-only; one clear InputError naming the file when it cannot be."""
    path = Path(path)
    usage = "compare takes the lab's file and ours: mea-pipeline compare LAB.h5 OURS.h5"
    if not path.exists():
        raise InputError(f"{role} file {path} does not exist; {usage}")
    if path.is_dir():
        raise InputError(f"{role} file {path} is a folder; {usage}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{role} file {path} is not readable (permission denied); {usage}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        # h5py says "file signature not found" for a file that is not HDF5, else the OS reason.
        reason = "not an HDF5 file" if not _readable_hdf5(path) else f"unreadable ({exc})"
        raise InputError(f"{role} file {path} is {reason}; {usage}") from exc


def _readable_hdf5(path: Path) -> bool:
    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


def walk(h5: h5py.File) -> dict[str, str]:
    """Every key of ``h5`` and what it is (:data:`GROUP`, :data:`DATASET` or :data:`ATTRIBUTE`).

    Attributes are keyed ``owner@name`` (``@name`` for the root's). Soft and external links are
    not followed: a key is an object stored in the file.
    """
    keys: dict[str, str] = {}
    owners = [""] if h5py.h5o.get_info(h5.id).num_attrs else []

    def visit(name: bytes, info) -> None:
        path = name.decode()
        keys[path] = GROUP if info.type == h5py.h5o.TYPE_GROUP else DATASET
        if info.num_attrs:
            owners.append(path)

    h5py.h5o.visit(h5.id, visit, info=True)
    for owner in owners:
        for attribute in (h5[owner] if owner else h5).attrs:
            keys[f"{owner}@{attribute}"] = ATTRIBUTE
    return keys


def read(h5: h5py.File, key: str, kind: str) -> Value:
    """The value of a dataset or attribute key."""
    if kind == ATTRIBUTE:
        owner, _, name = key.partition("@")
        attrs = (h5[owner] if owner else h5).attrs
        attr_id = attrs.get_id(name)
        if attr_id.shape is None:
            return Value(attr_id.dtype, None, None)
        return Value(attr_id.dtype, attr_id.shape, np.asarray(attrs[name]))
    dataset = h5py.h5d.open(h5.id, key.encode())
    file_type = dataset.get_type()
    dtype, shape = file_type.dtype, dataset.shape
    if shape is None:  # an HDF5 null dataspace (h5py.Empty)
        return Value(dtype, None, None)
    data = np.empty(shape, dtype=dtype)
    # Plain numbers are read as stored (no conversion path to build); other types through h5py's.
    memory_type = file_type if dtype.kind in "fiu" and not dtype.names else None
    try:
        dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, data, memory_type)
    except TypeError:  # a type the low-level read cannot convert into ``dtype``: let h5py choose
        data = np.asarray(h5[key][()])
    return Value(dtype, shape, data)
