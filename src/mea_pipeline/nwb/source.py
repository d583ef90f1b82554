"""The output file as the export sees it: step records, and values named by the steps' declarations.

Nothing here types a path of the output layout: every value is found through an :class:`Out`
declaration (``Out.at``) or a step's ``@reader`` function, so the export follows the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from ..schema import Out
from ..store import StepRecord


@dataclass
class Source:
    """An open output file and the records of the steps whose outputs it verifiably holds.

    Attributes
    ----------
    h5 : h5py.File
        The output file, open read-only.
    records : dict
        Step name -> :class:`StepRecord` of every done and verified step.
    """

    h5: h5py.File
    records: dict[str, StepRecord]

    def has(self, step: str) -> bool:
        """Whether the file holds ``step``'s verified output."""
        return step in self.records

    def exists(self, out: Out, **where) -> bool:
        return out.at(**where) in self.h5

    # One lookup per value (``get``), not ``in`` then ``[]``: a path lookup in a lab-scale file
    # (~126 000 objects) costs a good fraction of a millisecond, and the export reads thousands.
    def number(self, out: Out, **where) -> float:
        """A scalar output as float, NaN when absent."""
        dataset = self.h5.get(out.at(**where))
        return float("nan") if dataset is None else float(dataset[()])

    def text(self, out: Out, **where) -> str:
        """A string scalar output, '' when absent."""
        dataset = self.h5.get(out.at(**where))
        return "" if dataset is None else dataset.asstr()[()]

    def array(self, out: Out, **where) -> np.ndarray | None:
        """A dataset output, None when absent."""
        dataset = self.h5.get(out.at(**where))
        return None if dataset is None else dataset[()]

    def attribute(self, out: Out, name: str, **where) -> str:
        """Text attribute ``name`` of a dataset output ('' when either is absent)."""
        path = out.at(**where)
        if path not in self.h5 or name not in self.h5[path].attrs:
            return ""
        value = self.h5[path].attrs[name]
        return value.decode() if isinstance(value, bytes) else str(value)

    def fields(self, out: Out, placeholder: str, **where) -> list[str]:
        """Names a ``{placeholder}`` at the end of ``out``'s pattern takes in this file."""
        probe = "probe"
        parent = out.at(**where, **{placeholder: probe}).removesuffix("/" + probe)
        return list(self.h5[parent]) if parent in self.h5 else []
