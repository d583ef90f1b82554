"""What a pre-flight check found: errors (the batch or recording cannot run) and warnings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..faults import describe

ERROR = "error"
WARNING = "warning"


class PreflightError(InputError):
    """An input every recording of the batch reads is missing or malformed."""


@dataclass(frozen=True)
class Finding:
    """One problem, as one line naming the file or field and how to fix it."""

    level: str
    message: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.findings.append(Finding(ERROR, message))

    def warning(self, message: str) -> None:
        self.findings.append(Finding(WARNING, message))

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.level == WARNING]

    def attempt(self, check: Callable[..., Any], *args, **kwargs) -> Any:
        """``check(*args, **kwargs)``; an input error or OSError becomes an error finding and None.

        The checks are the readers the steps use, so a file a check accepts is one the step reads.
        """
        try:
            return check(*args, **kwargs)
        except InputError as exc:
            self.error(" ".join(str(exc).split()))
        except OSError as exc:
            self.error(describe(exc))
        return None

    def raise_for_errors(self) -> None:
        """Raise :class:`PreflightError` with the first error (and how many more there are)."""
        errors = self.errors
        if errors:
            more = f" (and {len(errors) - 1} more problem(s); `mea-pipeline check` lists them all)" \
                if len(errors) > 1 else ""
            raise PreflightError(errors[0] + more)
