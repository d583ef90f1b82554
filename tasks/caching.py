"""Prefect cache keys for step tasks, kept in agreement with the output file.

The key is the step's cache key from :func:`mea_pipeline.runner.plan_step`: recording ID,
fingerprints of the raw files and stimulus library the step reads, the upstream steps' records,
the step's parameters and its code version. When the output file does not hold a valid record
for that key (file deleted, truncated or edited, step never run), the Prefect cache record of
the key is removed before Prefect looks it up, so a cache hit always means "the file has it".
"""

from __future__ import annotations

from pathlib import Path

from mea_pipeline.errors import PipelineError
from mea_pipeline.runner import plan_step
from mea_pipeline.steps import REGISTRY


def storage_folder(task) -> Path | None:
    """Folder of the task's cache records (a Path, or a local file-system block)."""
    storage = getattr(task, "result_storage", None)
    if isinstance(storage, (str, Path)):
        return Path(storage).expanduser()
    basepath = getattr(storage, "basepath", None)
    return Path(basepath).expanduser() if basepath else None


def step_cache_key(context, parameters: dict) -> str | None:
    """``cache_key_fn`` of every step task (task name == step name)."""
    step = REGISTRY[context.task.name]
    try:
        plan = plan_step(step, parameters["recording"], parameters["config"])
    except (PipelineError, OSError):
        return None  # no key: the task body runs and reports the same problem clearly
    if not plan.up_to_date:
        folder = storage_folder(context.task)
        if folder is not None:
            (folder / plan.cache_key).unlink(missing_ok=True)
    return plan.cache_key
