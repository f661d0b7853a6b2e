"""The MkDocs plugin: render includes through the same code as ``runbook exec``.

It imports the loading side only (site, render, guide), never the execution side.
"""

from __future__ import annotations

import contextlib
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
from runbook.serve_page import mark_page, read_only, serving, with_script
from runbook.site import PLUGIN_OPTIONS, plugin_settings, site_with


class RunbookConfig(Config):  # type: ignore[no-untyped-call]
    """Options under ``plugins: - runbook:`` in ``mkdocs.yml`` (see ``PLUGIN_OPTIONS``)."""

    # One table of options for the plugin and the command line, so they cannot drift.
    _schema = tuple(
        (name, c.Type(option.kind, default=option.default))
        for name, option in PLUGIN_OPTIONS.items()
    )


class RunbookPlugin(BasePlugin[RunbookConfig]):  # type: ignore[no-untyped-call]
    """Render Jinja includes in every page; keep snippets out of the site."""

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        config_file = Path(config.config_file_path or "mkdocs.yml").absolute()
        try:
            self.site = site_with(
                config_file,
                Path(config.docs_dir),
                plugin_settings(dict(self.config), config_file),
                plugin="runbook",
                extra=dict(config.extra or {}),
            )
        except RunbookError as exc:
            raise _plugin_error(exc) from None
        self.renderer = Renderer(self.site.include_dir)
        if self.site.include_dir.is_dir():
            # mkdocs serve: a snippet edit rebuilds the pages that include it.
            watch = list(config.watch or [])
            if str(self.site.include_dir) not in watch:
                config.watch = [*watch, str(self.site.include_dir)]
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        for file in list(files):
            if file.src_uri.endswith(".md") and self.site.is_snippet(Path(file.abs_src_path or "")):
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
            raise _plugin_error(exc) from None
        if serving():
            return mark_page(rendered.text, path, self.site, self.renderer, rendered)
        return rendered.text

    def on_page_content(self, html: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
        # A box clickable in a static page shows a tick the file never gets.
        return read_only(html)

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str:
        return with_script(output) if serving() else output


def _plugin_error(exc: RunbookError) -> PluginError:
    """Say a runbook error the way MkDocs reports a plugin's."""
    hint = f" ({exc.hint})" if exc.hint else ""
    return PluginError(f"runbook: {exc}{hint}")
