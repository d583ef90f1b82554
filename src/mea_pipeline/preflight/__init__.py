"""Pre-flight: every input a batch will read, checked in seconds before any heavy step.

:func:`check_batch` runs once per batch (output folder, stimulus library and every movie the
steps read, sheet, label folder, CNN weights, crossing pickle, the selection itself);
:func:`check_recording` runs per recording just before its steps (raw file headers, upstream
outputs, sheet row, label folder). Both return a :class:`Report` of one-line findings;
``mea-pipeline check`` prints them all, ``batch`` stops on a batch error and fails a recording on
its own errors before reading its raw data.
"""

from .batch import check_batch
from .recording import check_recording, refuse_recording
from .report import PreflightError, Report
