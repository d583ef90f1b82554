"""The AP-tracking CNN weights (``--ap-model``; default: the packaged weights) and the device they run on.

Fingerprint: the weights' content and the device. Pre-flight loads them strictly into the lab's
architecture on the configured device.
"""

from __future__ import annotations

from ..ap_tracking.packaged import default_model_path
from .declaration import PATH, TEXT, ExternalInput, InputOption, content_fingerprint


def _check_batch(report, config) -> None:
    # torch is imported only when a selected step reads the weights.
    from ..ap_tracking.model_io import load_model

    report.attempt(load_model, config.ap_model, config.device)


AP_MODEL = ExternalInput(
    "ap_model", "AP-tracking CNN weights (--ap-model; default: the packaged weights) and --device",
    fingerprint=lambda rec, config: content_fingerprint(config.ap_model or default_model_path())
    | {"device": config.device},
    options=(InputOption("ap_model", PATH, "AP-tracking CNN weights (default: the packaged weights)"),
             InputOption("device", TEXT, "auto, cpu or cuda (AP-tracking CNN)", "auto")),
    check_batch=_check_batch)
