"""Commit a step again with the outputs and record it already holds: the store's whole work of a
rerun whose results are equal, without the step's science (what file growth over reruns measures)."""

from __future__ import annotations

import numpy as np

from .output_file import OutputFile
from .records import StepRecord


def recommit(output: OutputFile, step: str, order: list[str]) -> tuple[StepRecord, StepRecord]:
    """Rewrite ``step``'s outputs as they are through a new transaction.

    Returns the record before and the one written (their ``output_digest`` must be equal).
    """
    values, group_attrs = {}, {}
    with output.open() as h5:
        record = StepRecord.read(h5, step)
        for path in record.outputs:
            obj_path, _, attr = path.partition("@")
            if attr:
                group_attrs.setdefault(obj_path, {})[attr] = h5[obj_path].attrs[attr]
                continue
            dataset = h5[obj_path]
            value = dataset[()]
            if dataset.dtype.kind == "O":  # strings come back as bytes
                value = [v.decode() for v in np.ravel(value)] if dataset.shape else value.decode()
            values[obj_path] = (value, dict(dataset.attrs) or None)
    with output.transaction(step, (), order) as tx:
        for path, (value, attrs) in values.items():
            tx.write(path, value, attrs=attrs)
        for path, attrs in group_attrs.items():
            tx.set_attrs(path, attrs)
        tx.commit(cache_key=record.cache_key, code_version=record.code_version, parameters=record.parameters,
                  input_fingerprint=record.input_fingerprint, warnings=record.warnings, summary=record.summary)
    return record, tx.record
