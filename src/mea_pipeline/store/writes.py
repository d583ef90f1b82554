"""The HDF5 calls behind the store's commits, made cheap for tens of thousands of small datasets.

At 400 units a step writes up to ~35 000 datasets. Through h5py's high-level ``create_dataset``
each costs about a millisecond of Python checks (``__contains__``, dtype and shape validation,
property lists); :func:`create_small` makes the same dataset (same type, layout, link encoding
and intermediate groups) through the low-level API at a fraction of that.

Output files are created with persistent free-space tracking (:data:`FRESH_FILE`), so much of the
space of outputs a rerun deletes is reused by later writes instead of growing the file;
:func:`rewrite_fresh` copies a file into a new, compact one.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

STRING = h5py.string_dtype("utf-8")
# File-creation options of every output file: freed space is tracked in the file and reused.
FRESH_FILE = {"fs_strategy": "fsm", "fs_persist": True, "fs_threshold": 1}

# Links named in UTF-8 as h5py names them. Intermediate groups are made by h5py's require_group,
# not by this property list: groups HDF5 creates on the way leak their space when deleted.
_LCPL = h5py.h5p.create(h5py.h5p.LINK_CREATE)
_LCPL.set_char_encoding(h5py.h5t.CSET_UTF8)
_DCPL = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
_DCPL.set_obj_track_times(False)  # as h5py's create_dataset: no timestamps in the bytes


def create_small(h5: h5py.File, path: str, array: np.ndarray, groups: dict[str, h5py.h5g.GroupID]) -> None:
    """Create contiguous dataset ``path`` holding ``array`` (numbers, or an object array of str).

    ``groups`` caches the parent groups opened so far (forget those deleted meanwhile). Raises
    ``ValueError`` when ``path`` exists, like ``create_dataset``.
    """
    parent, _, name = path.rpartition("/")
    group = groups.get(parent)
    if group is None:
        group = groups[parent] = h5.require_group(parent).id if parent else h5.id
    tid = h5py.h5t.py_create(array.dtype, logical=1)
    space = h5py.h5s.create(h5py.h5s.SCALAR) if array.ndim == 0 else h5py.h5s.create_simple(array.shape)
    dataset = h5py.h5d.create(group, name.encode(), tid, space, dcpl=_DCPL, lcpl=_LCPL)
    if array.size:
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(array))
    dataset.close()


def rewrite_fresh(h5: h5py.File, target: Path) -> None:
    """Copy every object and root attribute of ``h5`` into a new file ``target``, byte for byte
    in content (``H5Ocopy``: same types, layouts, filters and attributes)."""
    with h5py.File(target, "w", **FRESH_FILE) as out:
        for key in h5.attrs:
            attr = h5.attrs.get_id(key)
            out.attrs.create(key, h5.attrs[key], dtype=attr.dtype)
        for name in h5:
            h5py.h5o.copy(h5.id, name.encode(), out.id, name.encode(), lcpl=_LCPL)
