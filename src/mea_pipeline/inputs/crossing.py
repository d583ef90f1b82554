"""The lab's moving-bar crossing pickle (``--on-off-dict``, optional): the bar's crossing frames per electrode.

Fingerprint: the file's content. Pre-flight reads it in the library check of the step that reads
it, with that step's reader: only the step knows the moving bar's layout the table must fit.
"""

from __future__ import annotations

from .declaration import PATH, ExternalInput, InputOption, content_fingerprint

ON_OFF_DICT = ExternalInput(
    "on_off_dict", "the lab's moving-bar crossing pickle (--on-off-dict, optional)",
    fingerprint=lambda rec, config: content_fingerprint(config.on_off_dict),
    options=(InputOption("on_off_dict", PATH, "The lab's moving-bar crossing pickle (optional)"),))
