"""The code blocks runbook finds are exactly the ``<pre>`` blocks the site's renderer shows.

The expected blocks come from ``markdown.Markdown`` configured by mkdocs' own reading of the
site's ``mkdocs.yml`` (its built-in extensions included), never from runbook's code: for
every page of this repository, every parse fixture, and generated pages.
"""

from __future__ import annotations

import copy
import html.parser
from pathlib import Path
from typing import Any

import markdown
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.utils.yaml import get_yaml_loader, yaml_load

from runbook.guide import load_page
from runbook.render import Renderer
from runbook.site import load_site
from tests.conftest import FIXTURES, ROOT

# What a guide with no mkdocs.yml is read with (docs/user-guide/writing.md says so).
LONE_GUIDE_EXTENSIONS: list[Any] = [
    "admonition",
    "attr_list",
    "md_in_html",
    "pymdownx.details",
    "pymdownx.superfences",
    {"pymdownx.tabbed": {"alternate_style": True}},
    {"pymdownx.tasklist": {"custom_checkbox": True}},
]


_CODE = object()  # a Python name in mkdocs.yml


class _PreText(html.parser.HTMLParser):
    """Collect the text of every ``<pre>`` element, leaving out line-number columns."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._depth = 0  # open <pre> elements
        self._skip = 0  # open line-number elements
        self._stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        numbers = "linenos" in classes or "linenodiv" in classes
        if tag in ("br", "img", "input", "hr", "meta", "link"):
            return
        self._stack.append(numbers)
        self._skip += numbers
        if tag == "pre" and not self._skip:
            if self._depth == 0:
                self.blocks.append("")
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "img", "input", "hr", "meta", "link") or not self._stack:
            return
        if tag == "pre" and not self._skip and self._depth:
            self._depth -= 1
        self._skip -= self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._depth and not self._skip:
            self.blocks[-1] += data


def site_markdown(config_file: Path | None) -> markdown.Markdown:
    """Return the Markdown instance mkdocs would build pages with."""
    if config_file is None:
        data: dict[str, Any] = {"markdown_extensions": copy.deepcopy(LONE_GUIDE_EXTENSIONS)}
    else:
        loader = get_yaml_loader(loader=yaml.SafeLoader)
        # Python tags name code mkdocs would import; none decides what a code block is.
        loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: _CODE)
        with config_file.open("rb") as fd:
            data = yaml_load(fd, loader=loader)
        data["markdown_extensions"] = [
            {k: {o: v for o, v in opts.items() if v is not _CODE} for k, opts in e.items()}
            if isinstance(e, dict)
            else e
            for e in data.get("markdown_extensions") or []
        ]
    data.pop("plugins", None)  # plugins do not decide what a code block is
    data.setdefault("site_name", "x")
    config = MkDocsConfig(config_file_path=str(config_file or ROOT / "mkdocs.yml"))
    config.load_dict(data)
    errors, _ = config.validate()
    assert not [e for e in errors if e[0] in ("markdown_extensions", "mdx_configs")], errors
    return markdown.Markdown(
        extensions=config["markdown_extensions"], extension_configs=config["mdx_configs"]
    )


def rendered_blocks(md: markdown.Markdown, text: str) -> list[str]:
    """The text of each ``<pre>`` block the renderer makes of ``text``."""
    md.reset()
    parser = _PreText()
    parser.feed(md.convert(text))
    return [block.strip("\n") for block in parser.blocks]


def runbook_blocks(path: Path) -> tuple[str, list[str]]:
    """The rendered page text and the code of each block runbook finds in it."""
    book = load_page(path.absolute(), sets=None, site=load_site(path), renderer=None)
    return book.rendered.text, [action.code.strip("\n") for action in book.blocks]


def _pages() -> list[Path]:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    pages += sorted(p for p in (FIXTURES / "parse").rglob("guide.md"))
    return pages


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_blocks_of_real_pages_are_the_rendered_pre_blocks(page: Path) -> None:
    text, found = runbook_blocks(page)
    md = site_markdown(load_site(page).config_file)
    assert found == rendered_blocks(md, text)


# -- generated pages ------------------------------------------------------------------------

INFO = st.sampled_from(
    [
        "",
        "bash",
        "sh",
        "console",
        "yaml",
        "text",
        "bash { .run }",
        'bash { .run host="new" timeout="900" }',
        "{ .run }",
        "{ .bash .run }",
        "{.run}",
        ' title="application.yml"',
        'yaml title="conf/app.yml"',
        'python linenums="1"',
        'bash hl_lines="2"',
        "bash run",
        "bash{.run}",
        "log4j:ERROR Error occurred",
        "bash {",
        ".bash",
        " bash ",
        "c++",
        "sql { #id data-x=1 }",
        'bash { .run expect="Password:" send="<pw>" }',
    ]
)
BODY = st.lists(
    st.sampled_from(
        ["echo one", "ls -la /tmp", "", "  indented line", "# a comment", "x = 1", "* not a list"]
    ),
    min_size=0,
    max_size=3,
)


@st.composite
def fence(draw: st.DrawFn) -> str:
    mark = draw(st.sampled_from(["```", "````", "~~~"]))
    close = draw(st.sampled_from([mark, mark, mark, "```", "", mark + " ", "  " + mark]))
    lines = [mark + draw(INFO), *draw(BODY)]
    if close:
        lines.append(close)
    return "\n".join(lines)


def indent(text: str, by: str) -> str:
    return "\n".join(by + line if line else line for line in text.split("\n"))


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> str:
    choices = ["fence", "fence", "para", "indented", "list", "heading"]
    if depth < 2:
        choices += ["tab", "admonition", "details", "list-nested", "html"]
    kind = draw(st.sampled_from(choices))
    if kind == "fence":
        return indent(draw(fence()), draw(st.sampled_from(["", "", " ", "  ", "   ", "    "])))
    if kind == "para":
        return draw(st.sampled_from(["Some text.", "Run this:\nnext line", "`inline` code"]))
    if kind == "indented":
        return indent(draw(st.sampled_from(["echo hi", "a\n\nb", "```bash\nx\n```"])), "    ")
    if kind == "heading":
        return draw(st.sampled_from(["### 1. Step", "#### 2. Sub", "## Notes"]))
    if kind == "list":
        return draw(st.sampled_from(["* [ ] 1. Item", "1. First\n2. Second", "- a\n- b"]))
    inner = "\n\n".join(draw(st.lists(block(depth + 1), min_size=1, max_size=3)))
    pad = draw(st.sampled_from(["    ", "    ", "\t", "  ", "        "]))
    if kind == "tab":
        head = draw(st.sampled_from(['=== "Production"', '=== "Sandbox"', '===! "A"']))
        return head + "\n\n" + indent(inner, pad)
    if kind == "admonition":
        head = draw(st.sampled_from(["!!! note", '!!! warning "Careful"', "!!! danger"]))
        return head + "\n\n" + indent(inner, pad)
    if kind == "details":
        head = draw(st.sampled_from(['??? note "More"', "???+ tip"]))
        return head + "\n\n" + indent(inner, pad)
    if kind == "html":
        return '<div markdown="1">\n\n' + inner + "\n\n</div>"
    marker = draw(st.sampled_from(["* ", "1. ", "- "]))
    return marker + "Item\n\n" + indent(inner, pad)


PAGE = st.lists(block(), min_size=1, max_size=6).map(lambda parts: "\n\n".join(parts) + "\n")


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(PAGE)
def test_blocks_of_generated_pages_are_the_rendered_pre_blocks(
    tmp_path_factory: Any, page: str
) -> None:
    folder = tmp_path_factory.mktemp("page", numbered=True)
    guide = folder / "guide.md"
    guide.write_text(page)
    text, found = runbook_blocks(guide)
    assert text.rstrip("\n") == page.rstrip("\n")
    assert found == rendered_blocks(_LONE, text), page


_LONE = site_markdown(None)


def test_the_renderer_is_not_a_copy_of_runbook() -> None:
    # A fence with options only renders with a file name; a log line after backticks is text.
    md = site_markdown(None)
    assert rendered_blocks(md, '``` title="application.yml"\nkey: 1\n```') == ["key: 1"]
    assert rendered_blocks(md, "```log4j:ERROR Error occurred\nx\n```") == []
    assert isinstance(Renderer, type)


_SPANS = st.lists(st.tuples(st.text("ab", max_size=2), st.integers(-2, 12), st.integers(-2, 12)))


@given(st.lists(st.text("xy", max_size=2), max_size=10), _SPANS, st.booleans())
def test_fences_are_put_in_place_as_superfences_does(
    lines: list[str], spans: list[tuple[str, int, int]], ordered: bool
) -> None:
    # runbook's one pass in place of superfences' copy of the page per fence: the same
    # lines, for the stacks its preprocessor makes (in order, apart) and any other.
    from pymdownx.superfences import SuperFencesBlockPreprocessor

    from runbook.blocks import _Fences

    if ordered:
        bounds = sorted(b for _, start, end in spans for b in (abs(start), abs(end)))
        spans = [
            (text, s, e)
            for (text, _, _), s, e in zip(spans, bounds[::2], bounds[1::2], strict=True)
        ]
    theirs, ours = object.__new__(_Fences), object.__new__(_Fences)
    theirs.stack, ours.stack = list(spans), list(spans)
    assert _Fences.reassemble(ours, list(lines)) == SuperFencesBlockPreprocessor.reassemble(
        theirs, list(lines)
    )
    assert ours.stack == theirs.stack == []


def test_an_indented_block_whose_text_stands_inside_another_is_placed_after_it(
    tmp_path: Path,
) -> None:
    # Found by the generated pages: the first tab's indented block holds the text of the
    # second tab's blocks, and a probe's mark at the end of a tab's title line changed the
    # tabs the second parse saw (a tab's title, like a fence's info, ends its line).
    tab = '=== "Production"\n\n'
    fence = "```yaml\necho one\necho one\n```\n\n"
    page = (
        tab
        + indent(tab + indent(fence, "    ") + tab + "    Some text.\n", "        ")
        + "\n"
        + tab
        + indent(tab + indent(fence, "    ") + tab + "        Some text.\n", "    ")
    )
    guide = tmp_path / "guide.md"
    guide.write_text(page)
    text, found = runbook_blocks(guide)
    assert found == rendered_blocks(_LONE, text)
    lines = page.split("\n")
    book = load_page(guide.absolute(), sets=None, site=load_site(guide), renderer=None)
    assert [lines[a.origin.line - 1].strip() for a in book.blocks] == [
        '=== "Production"',
        "```yaml",
        "Some text.",
    ]
