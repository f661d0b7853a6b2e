"""One exception hierarchy: every error names a file and line and says what to do next."""

from __future__ import annotations

from pathlib import Path

from runbook.model import Diagnostic, Origin, Runbook, Step, SubStep, location

# Documented exit codes (docs/cli.md keeps these in step).
EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_NEEDS_OPERATOR = 4
EXIT_INTERRUPTED = 130


class RunbookError(Exception):
    """Base of all runbook errors; carries where it happened and a next step."""

    exit_code = EXIT_INVALID

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
        at: Origin | None = None,
    ) -> None:
        """``at``, when given, gives ``path`` and ``line`` at once."""
        super().__init__(message)
        if at is not None:
            path, line = at.path, at.line
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.hint = hint

    @property
    def location(self) -> str:
        """Return ``file:line`` (or just ``file``) for people, empty when unknown."""
        return location(self.path, self.line)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message

    def diagnostic(self) -> Diagnostic:
        """Return this error as a lint diagnostic (its code is the error's class name)."""
        origin = Origin(Path(self.path), self.line or 1) if self.path else None
        return Diagnostic("error", origin, self.message, type(self).__name__, self.hint or "")


class UsageError(RunbookError):
    """The command line asked for something impossible."""

    exit_code = EXIT_USAGE


class GuideError(RunbookError):
    """The guide, a snippet or the site configuration is invalid."""

    exit_code = EXIT_INVALID


class IncludeError(GuideError):
    """An include is missing, cyclic or leaves the include root."""


class TemplateError(GuideError):
    """Jinja could not render a page (syntax error, undefined variable)."""


class ConfigError(GuideError):
    """``mkdocs.yml`` or the plugin configuration cannot be used."""


class StateError(RunbookError):
    """The guide's checklist cannot be changed as asked."""

    exit_code = EXIT_INVALID


class LockedError(StateError):
    """Another process holds the guide."""

    exit_code = EXIT_INVALID


class ConcurrentEditError(StateError):
    """The guide changed underneath and the target item is no longer where it was."""


class StepFailed(RunbookError):
    """A step's action failed; the run stops."""

    exit_code = EXIT_STEP_FAILED


class NeedsOperator(RunbookError):
    """A non-interactive run reached something only a person can decide."""

    exit_code = EXIT_NEEDS_OPERATOR


class Interrupted(RunbookError):
    """The operator interrupted the run."""

    exit_code = EXIT_INTERRUPTED


def step_of(book: Runbook, number: int) -> Step:
    """Return step ``number`` of ``book``; refuse a number the guide has no step for."""
    step = book.step(number)
    if step is None:
        known = ", ".join(str(s.number) for s in book.steps) or "none"
        raise UsageError(
            f"no step {number} (steps: {known})",
            path=book.path,
            hint=f"see 'runbook list {location(book.path)}' for the steps",
        )
    return step


def substep_of(step: Step, sub: int) -> SubStep:
    """Return part ``sub`` of ``step``, or refuse naming the parts it has."""
    if 1 <= sub <= len(step.substeps):
        return step.substeps[sub - 1]
    has = (
        f"has {len(step.substeps)} numbered sub-headings"
        if step.substeps
        else "has no numbered sub-headings ('#### 1. …')"
    )
    raise UsageError(
        f"step {step.number} {has}, so there is no part {step.number}.{sub}",
        at=step.origin,
        hint=f"'runbook show GUIDE {step.number}' shows the whole step",
    )
