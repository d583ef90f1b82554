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

    def number(self, out: Out, **where) -> float:
        """A scalar output as float, NaN when absent."""
        path = out.at(**where)
        return float(self.h5[path][()]) if path in self.h5 else float("nan")

    def text(self, out: Out, **where) -> str:
        """A string scalar output, '' when absent."""
        path = out.at(**where)
        return self.h5[path].asstr()[()] if path in self.h5 else ""

    def array(self, out: Out, **where) -> np.ndarray | None:
        """A dataset output, None when absent."""
        path = out.at(**where)
        return self.h5[path][()] if path in self.h5 else None

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
