"""The site's Jinja environment: includes from the include root only, marked as loaded;
include cycles reported; every use of an undefined variable recorded.

While a render collects (``runbook lint``), an include that cannot be loaded is recorded
and renders as nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, ClassVar

import jinja2

from runbook.errors import GuideError, RunbookError
from runbook.model import rel
from runbook.render.collect import SKIPPED, Collected
from runbook.render.limits import BoundedEnvironment
from runbook.render.problems import Problems, Undefined, template_frames
from runbook.render.sources import decode
from runbook.source import read_source


class RecordingUndefined(jinja2.Undefined):
    """Record every use of an undefined variable so all can be reported at once."""

    __slots__ = ()
    problems: ClassVar[Problems]  # each renderer subclasses this, naming its own

    def _record(self) -> None:
        problems = type(self).problems
        path, line = problems.location()
        name = self._undefined_name or "?"
        if self._undefined_obj is not jinja2.utils.missing:
            name = f"{jinja2.utils.object_type_repr(self._undefined_obj)}.{name}"
        problems.undefined.append(Undefined(name, path, line))

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def __len__(self) -> int:
        self._record()
        return 0

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        self._record()
        return self


class SiteLoader(jinja2.BaseLoader):
    """Load includes from the include root only, and mark their lines."""

    def __init__(self, root: Path, problems: Problems, mark: Callable[[str, Path], str]) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.problems = problems
        self.mark = mark

    def resolve(self, template: str) -> Path:
        """Return the file ``template`` names, refusing anything outside the root."""
        parts = template.replace("\\", "/").split("/")
        if template.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise self.problems.include_error(
                f"include {template!r} leaves the include root {rel(self.root)}/",
                hint="name includes relative to the include directory, without '..'",
            )
        path = self.root.joinpath(*[p for p in parts if p not in ("", ".")])
        real = Path(os.path.realpath(path))
        if real != self.real_root and self.real_root not in real.parents:
            raise self.problems.include_error(
                f"include {template!r} resolves to {real}, outside the include root "
                f"{rel(self.root)}/ (through a symbolic link)",
                hint="keep snippets inside the include directory",
            )
        return path

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = self.resolve(template)
        if not path.exists() or path.is_dir():
            raise jinja2.TemplateNotFound(template)
        try:
            # A snippet is read as a guide is: a regular file, within the same size limit.
            data = read_source(path, "snippet")
        except RunbookError as exc:
            raise self.problems.include_error(
                f"cannot read include {template!r}: {exc.message}", hint=exc.hint
            ) from None
        text = decode(data, path)
        mtime = path.stat().st_mtime
        marked = self.mark(text, path)
        return marked, str(path), lambda: path.exists() and path.stat().st_mtime == mtime


class SiteEnvironment(BoundedEnvironment):
    """A sandboxed environment that reports include cycles instead of recursing forever."""

    def __init__(
        self, include_root: Path, problems: Problems, mark: Callable[[str, Path], str]
    ) -> None:
        undefined = type("Undefined", (RecordingUndefined,), {"problems": problems})
        super().__init__(
            loader=SiteLoader(include_root, problems, mark),
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self.problems = problems
        self.collected: Collected | None = None
        """What the render in progress collects, while it collects."""
        self._empty: jinja2.Template | None = None

    def empty_template(self) -> jinja2.Template:
        """Return a template that renders as nothing (for a left-out include)."""
        if self._empty is None:
            self._empty = self.from_string("")
        return self._empty

    def join_path(self, template: str, parent: str) -> str:
        stack = [t.name or "<page>" for t, _ in template_frames()]
        if template in stack:
            chain = [*reversed(stack[: stack.index(template) + 1]), template]
            error = self.problems.include_error(
                "include cycle: " + " -> ".join(chain),
                hint="remove one of these includes",
            )
            collected = self.collected
            if collected is None:
                raise error
            collected.add(error)
            return SKIPPED
        return template

    def _load_template(
        self, name: str, globals: MutableMapping[str, Any] | None
    ) -> jinja2.Template:
        # Jinja's one loading path for include, import and extends (get_template,
        # select_template); overridden to locate and, while collecting, skip failures.
        problems = self.problems
        collected = self.collected
        if collected is not None:
            site = problems.location()
            if name == SKIPPED or (*site, name) in collected.skipped:
                return self.empty_template()
        try:
            template: jinja2.Template = super()._load_template(name, globals)
            return template
        except jinja2.TemplateNotFound:
            # Where it was included from, for the error; "ignore missing" may yet catch it.
            problems.missing = (name, *problems.location())
            raise
        except (jinja2.TemplateSyntaxError, GuideError) as exc:
            # Not found, leaving the root, binary, not UTF-8, or not Jinja.
            if collected is None:
                raise
            if isinstance(exc, jinja2.TemplateSyntaxError):
                collected.add(problems.syntax_problem(exc, problems.page_path()))
            else:
                collected.add(exc)
            collected.skipped.add((*site, name))
            return self.empty_template()
