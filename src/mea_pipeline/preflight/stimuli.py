"""The stimulus library as the selected steps will read it.

The ``stimuli`` input's own check opens the library and reads the playlist and its movie
lengths; then every selected step that declares a ``library_check`` reads what it reads of the
library (trial layouts, movies, ...) with the readers it uses, through a :class:`LibraryCheck`.
Bad content stops the batch here instead of becoming a silent result (a movie dropped with a
warning, an STA from half the frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import PipelineConfig
from ..inputs.stimuli import open_playlist
from ..steps.registry import Registry, Step
from ..stimulus_library import StimulusLibrary
from .report import Report


@dataclass
class LibraryCheck:
    """What a step's ``library_check`` gets: the library, the playlist's movies and a way to report.

    Attributes
    ----------
    library : StimulusLibrary
    movies : list of str
        The playlist's movies, each once, in playlist order.
    config : PipelineConfig
    params : object
        The checked step's parameters (as configured).
    """

    report: Report
    library: StimulusLibrary
    movies: list[str]
    config: PipelineConfig
    registry: Registry
    params: Any = None
    _done: dict = field(default_factory=dict)

    def for_step(self, step: Step) -> "LibraryCheck":
        self.params = self.config.params_for(step)
        return self

    def params_of(self, step_name: str):
        """Another step's parameters (e.g. which movies it reads), as configured."""
        return self.config.params_for(self.registry[step_name])

    def attempt(self, read: Callable[..., Any], *args, **kwargs) -> Any:
        """``read(*args, **kwargs)``; a bad input becomes one error finding and None.

        Two steps reading the same thing (the same movie) are checked, and reported, once.
        """
        key = (read, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return self.report.attempt(read, *args, **kwargs)
        if key not in self._done:
            self._done[key] = self.report.attempt(read, *args, **kwargs)
        return self._done[key]

    def warning(self, message: str) -> None:
        self.report.warning(message)

    def error(self, message: str) -> None:
        self.report.error(message)


def check_library_reads(report: Report, config: PipelineConfig, selected: list[Step], registry: Registry) -> None:
    """Every selected step's ``library_check``, on a library the ``stimuli`` check could open."""
    checking = [step for step in selected if step.library_check is not None]
    if not checking:
        return
    library, movies = open_playlist(Report(), config)  # its findings are the stimuli input's own
    if library is None:
        return
    check = LibraryCheck(report, library, movies, config, registry)
    for step in checking:
        step.library_check(check.for_step(step))
