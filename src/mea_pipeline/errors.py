"""Errors a user can cause. Each message names the file or field and says how to fix it."""


class PipelineError(Exception):
    """Base class: the command line prints these as one line, without a traceback."""


class InputError(PipelineError, ValueError):
    """A file, folder or field given by the user is missing or malformed."""


class StepDependencyError(PipelineError):
    """A step was asked to run before the steps whose output it reads."""


class RecordingError(PipelineError):
    """One recording was not processed (a step failed, or another run holds it); others are unaffected."""
