"""CRC32 digests of a step's outputs in the output file.

A step's digest combines one CRC per owned path, sorted by path: a dataset's CRC covers its
absolute name, dtype, shape and values, then its attributes; ``group@attr`` covers the value of
one attribute of a group the step does not own. Because each path has its own CRC, a commit
computes them from what the step wrote (:func:`dataset_crc` on the values in memory) instead of
reading its outputs back; :func:`digest_paths` computes the same digest by re-reading the file,
which is how an edited, truncated or deleted output is recognised.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

import h5py
import numpy as np


def _payload(value, dtype: np.dtype) -> bytes:
    if dtype.kind == "O":  # variable-length strings: written as str, read back as bytes
        return "\0".join(v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(value)).encode()
    return np.ascontiguousarray(value).tobytes()


def dataset_crc(name: str, dtype: np.dtype, shape: tuple, value) -> int:
    """CRC of a dataset's name, dtype, shape and ``value`` (attributes: :func:`with_attrs`).

    ``value`` is either what the step wrote (numbers in the dataset's dtype, or strings) or what
    h5py reads back; both give the same CRC.
    """
    crc = zlib.crc32(name.encode())
    crc = zlib.crc32(f"{dtype}{shape}".encode(), crc)
    return zlib.crc32(_payload(value, dtype), crc)


def with_attrs(crc: int, attrs: h5py.AttributeManager) -> int:
    """``crc`` extended by the object's attributes (names sorted)."""
    for key in sorted(attrs):
        crc = zlib.crc32(key.encode(), crc)
        crc = attr_crc(attrs[key], crc)
    return crc


def attr_crc(value, crc: int = 0) -> int:
    """CRC of one attribute value as h5py returns it."""
    return zlib.crc32(np.asarray(value).tobytes(), crc)


def _object_crc(obj) -> int:
    if isinstance(obj, h5py.Dataset):
        crc = dataset_crc(obj.name, obj.dtype, obj.shape, obj[()])
    else:
        crc = zlib.crc32(obj.name.encode())
        for key in sorted(obj):
            crc = zlib.crc32(_object_crc(obj[key]).to_bytes(4, "big"), crc)
    return with_attrs(crc, obj.attrs)


def path_crc(h5: h5py.File, path: str) -> int | None:
    """CRC of one owned path re-read from the file; None when it is missing."""
    obj_path, _, attr = path.partition("@")
    obj = h5.get(obj_path)
    if obj is None:
        return None
    if attr:
        return attr_crc(obj.attrs[attr]) if attr in obj.attrs else None
    return _object_crc(obj)


def combine(crcs: Mapping[str, int]) -> str:
    """The step digest from the CRC of each owned path."""
    crc = 0
    for path in sorted(crcs):
        crc = zlib.crc32(path.encode() + b"\0" + crcs[path].to_bytes(4, "big"), crc)
    return f"{crc:08x}"


def digest_paths(h5: h5py.File, paths: Iterable[str]) -> str:
    """The digest of ``paths`` re-read from the file; a missing path yields ``missing:<path>``,
    which no real content produces."""
    crcs = {}
    for path in paths:
        crc = path_crc(h5, path)
        if crc is None:
            return "missing:" + path
        crcs[path] = crc
    return combine(crcs)
