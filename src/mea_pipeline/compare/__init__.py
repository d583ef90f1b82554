"""``mea-pipeline compare LAB.h5 OURS.h5``: a lab's own file against ours, key by key.

:func:`compare_files` classifies every key (equal, within tolerance, documented, differs,
missing, extra) using the schema's lab-key marks; :func:`format_summary` is the one-screen
text; ``Report.to_json()`` the full per-key report; ``Report.exit_code`` 0 when nothing differs
and nothing is missing, else 1.
"""

from .files import CLASSES, KeyResult, Report, compare_files
from .summary import format_summary, pattern
from .values import RTOL

__all__ = ["CLASSES", "RTOL", "KeyResult", "Report", "compare_files", "format_summary", "pattern"]
