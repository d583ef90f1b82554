"""The lab's moving-bar crossing pickle (``--on-off-dict``, optional): the bar's crossing frames per electrode.

Fingerprint: the file's content. Its contents are checked against the moving bar's layout by
the step that reads it (its library check), since only that step knows the layout.
"""

from __future__ import annotations

from .declaration import PATH, ExternalInput, InputOption, content_fingerprint

ON_OFF_DICT = ExternalInput(
    "on_off_dict", "the lab's moving-bar crossing pickle (--on-off-dict, optional)",
    fingerprint=lambda rec, config: content_fingerprint(config.on_off_dict),
    options=(InputOption("on_off_dict", PATH, "The lab's moving-bar crossing pickle (optional)"),),
    check_batch=lambda report, config: report.attempt(content_fingerprint, config.on_off_dict) and None)
