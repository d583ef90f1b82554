"""The output HDF5 file of one recording, committed one step at a time.

``output_file`` (:class:`OutputFile`: reading, step states, which records are verified),
``transaction`` (:class:`StepTransaction`: one step's outputs and record, committed atomically),
``atomic`` (the temporary copy replacing the file), ``records`` (what ``pipeline/steps/<step>``
holds), ``digest`` (CRCs of a step's outputs), ``writes`` (cheap dataset creation, compaction),
``verified_memo`` (which records are verified, by file identity), ``recommit`` (a step committed
again with the outputs it holds: the store's work of a rerun, measured by the size test and the
lab-scale benchmark).
"""

from .output_file import OutputFile
from .records import BOOKKEEPING, COMPLETED_STEPS, StepRecord
from .transaction import StepTransaction

__all__ = ["BOOKKEEPING", "COMPLETED_STEPS", "OutputFile", "StepRecord", "StepTransaction"]
