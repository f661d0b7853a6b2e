"""The MkDocs plugin: render includes through the same code as ``runbook exec``.

It imports the loading side only (site, render, guide), never the execution side.
"""

from __future__ import annotations

import contextlib
import fnmatch
from pathlib import Path

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from runbook.errors import RunbookError
from runbook.guide import page_variables
from runbook.render import Renderer, split_front_matter
from runbook.site import Site


class RunbookConfig(Config):  # type: ignore[no-untyped-call]
    """Options under ``plugins: - runbook:`` in ``mkdocs.yml``."""

    include_dir = c.Type(str, default="")
    """Where ``{% include %}`` names resolve (default: the docs folder)."""
    inputs = c.Type(dict, default={})
    """Default values for ``<placeholders>``."""
    hosts = c.Type(dict, default={})
    """Named hosts for ``host="…"`` blocks."""
    snippets = c.Type(str, default="_*.md")
    """File name pattern of snippets inside the docs folder, never published as pages."""


class RunbookPlugin(BasePlugin[RunbookConfig]):  # type: ignore[no-untyped-call]
    """Render Jinja includes in every page; keep snippets out of the site."""

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        root = Path(config.config_file_path or ".").parent
        docs_dir = Path(config.docs_dir)
        include = self.config.include_dir
        self.site = Site(
            root=root,
            config_file=Path(config.config_file_path) if config.config_file_path else None,
            docs_dir=docs_dir,
            include_dir=(root / include) if include else docs_dir,
            extra=dict(config.extra or {}),
            inputs={str(k): str(v) for k, v in self.config.inputs.items()},
            hosts=dict(self.config.hosts),
            plugin="runbook",
        )
        self.renderer = Renderer(self.site.include_dir)
        if self.site.include_dir.is_dir():
            # mkdocs serve: a snippet edit rebuilds the pages that include it.
            watch = list(config.watch or [])
            if str(self.site.include_dir) not in watch:
                config.watch = [*watch, str(self.site.include_dir)]
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        include = self.site.include_dir.resolve()
        for file in list(files):
            if not file.src_uri.endswith(".md"):
                continue
            path = Path(file.abs_src_path or "").resolve()
            inside = include != self.site.docs_dir.resolve() and include in path.parents
            if inside or fnmatch.fnmatch(Path(file.src_uri).name, self.config.snippets):
                files.remove(file)
        return files

    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str:
        path = Path(page.file.abs_src_path or page.file.src_uri)
        first_line = 1
        with contextlib.suppress(OSError, UnicodeError):
            _, _, first_line = split_front_matter(path.read_text(encoding="utf-8-sig"))
        try:
            rendered = self.renderer.render(
                markdown,
                path,
                first_line=first_line,
                variables=page_variables(self.site, page.meta or {}),
            )
        except RunbookError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise PluginError(f"runbook: {exc}{hint}") from None
        return rendered.text
