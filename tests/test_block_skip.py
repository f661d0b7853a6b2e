"""A page the renderer can make no code block of is not parsed, and that is exact.

``runbook.blocks.may_hold_code`` is a proof of no code block for the processors it knows:
here generated pages built to come close (blockquotes, HTML before spaces, tabs, lone CRs,
STX, containers indented by 1 to 8 columns) are held to the full renderer, and the skip to
the parse it skips.
"""

from __future__ import annotations

import html.parser

import markdown
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runbook.blocks import BlockFinder, default_finder, may_hold_code

# What a lone guide is read with, and mkdocs' built-ins (as BlockFinder loads them).
EXTENSIONS = [
    "toc",
    "tables",
    "fenced_code",
    "admonition",
    "attr_list",
    "md_in_html",
    "pymdownx.details",
    "pymdownx.superfences",
    "pymdownx.tabbed",
    "pymdownx.tasklist",
]
RENDERER = markdown.Markdown(
    extensions=EXTENSIONS,
    extension_configs={"pymdownx.tabbed": {"alternate_style": True}},
)


class _Pre(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.pre += tag == "pre"


def pre_blocks(text: str) -> int:
    """How many ``<pre>`` elements the full renderer makes of ``text``."""
    RENDERER.reset()
    parser = _Pre()
    parser.feed(RENDERER.convert(text))
    return parser.pre


PAD = st.sampled_from(["", " ", "  ", "   ", "    ", "     ", "        ", "\t", " \t", "  \t"])
# Near misses: up to three columns, so that most pages can hold no code at all.
NEAR = st.sampled_from(["", " ", "  ", "   ", "   ", "  ", " "])
NEAR_QUOTE = st.sampled_from(["", "", ">", "> ", "  >", ">>", "> >"])
WORDS = st.sampled_from(["text", "echo hi", "* item", "1. first", "- [ ] 1. Step", "x = 1"])
HEADS = st.sampled_from(
    [
        "!!! note",
        '!!! warning "Careful"',
        "??? tip",
        '=== "Tab"',
        "* item",
        "1. item",
        "# Title",
        "Title",
        "====",
        "----",
        "***",
        "[ref]: http://example.org",
        "| a | b |",
        "|---|---|",
    ]
)
HTML = st.sampled_from(
    [
        '<div markdown="1">',
        "<div markdown>",
        '<div markdown="block">',
        "</div>",
        "<div>x</div>",
        "<p>x</p>",
        "<!-- note -->",
        "<span>a</span>",
        "<br>",
    ]
)
QUOTE = st.sampled_from(["", ">", "> ", ">  ", "> >", ">>", "  >", "> > "])
CONTROL = st.sampled_from(["", "", "", "\x02", "\x03", "\x0c"])


@st.composite
def line(draw: st.DrawFn, pad: st.SearchStrategy[str] = PAD) -> str:
    near = pad is NEAR
    kind = draw(st.sampled_from(["text", "text", "head", "html", "blank"]))
    if kind == "blank":
        return draw(st.sampled_from(["", " ", ">"] if near else ["", " ", "\t", ">"]))
    body = {"text": WORDS, "head": HEADS, "html": HTML}[kind]
    text = draw(body)
    if kind == "html" and draw(st.booleans()):
        text += draw(pad) + draw(WORDS)  # what follows a tag on its line
    quote = draw(NEAR_QUOTE if near else QUOTE)
    return quote + draw(st.just("") if near else CONTROL) + draw(pad) + text


ENDINGS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])


@st.composite
def page(draw: st.DrawFn, pad: st.SearchStrategy[str] = PAD) -> str:
    lines = draw(st.lists(line(pad), min_size=1, max_size=14))
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(pad) + "```bash")
    return "".join(text + draw(ENDINGS) for text in lines)


PROPERTY = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(page() | page(NEAR))
@example("> quote\n>\n>     code line\n")
@example('<div markdown="1">    code\n</div>\n')
@example("<div>x</div>    code\n")
@example("a\r\r    code\r")
@example("x\n\n\x02    code\n")
@example("* item\n\n\t\tcode\n")
def test_a_page_said_to_hold_no_code_renders_none(text: str) -> None:
    if not may_hold_code(text):
        assert pre_blocks(text) == 0, text


@PROPERTY
@given(page() | page(NEAR))
def test_skipping_the_parse_finds_what_the_parse_finds(text: str) -> None:
    # Pages reach the finder rendered, with their line ends made \n.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    finder = default_finder()
    assert finder.skippable
    assert finder.find(text) == finder._find(text)


def test_the_cases_the_old_rule_missed_are_parsed() -> None:
    # A line indented after quote markers, after HTML, after a lone CR or an STX: each
    # renders a code block, so none of these pages may skip the parse.
    for text in (
        "> quote\n>\n>     code line\n",
        '<div markdown="1">    code\n</div>\n',
        "<div>x</div>    code\n",
        "a\r\r    code\r",
        "x\n\n\x02    code\n",
    ):
        assert pre_blocks(text) == 1
        assert may_hold_code(text)
    # The old rule (an indented line at the start of a line) found no block here.
    found = default_finder().find("> quote\n>\n>     code line\n").blocks
    assert [(b.start, b.code) for b in found] == [(2, "code line")]


def test_unknown_processors_turn_the_skip_off() -> None:
    # def_list reads a definition after ':' and up to three spaces: more spaces are code.
    assert pre_blocks(":       code\n") == 0  # not loaded here: a paragraph
    finder = BlockFinder((("def_list", {}),))
    assert not finder.skippable
    assert finder.find("term\n:       code\n") == finder._find("term\n:       code\n")
    assert BlockFinder((("footnotes", {}), ("abbr", {}))).skippable is False
    assert default_finder().skippable
