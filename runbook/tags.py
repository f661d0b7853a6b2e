"""Where Jinja syntax sits in a page's text, read without Jinja.

Text-only rules shared by the rendering side (:mod:`runbook.render`): lines as the renderer
counts them, front matter, the tags of a page and the lines a position marker must not
start, raw blocks, include statements, shell idioms that Jinja reads as its own syntax.
Each regular expression about these has its home here; Jinja itself is not imported.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_FRONT_MATTER_RE = re.compile(
    r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)
# Shell idioms that Jinja reads as its own syntax; authors wrap them in {% raw %}.
_SHELL_JINJA_RE = re.compile(r"\{\{\s*\.|\$\{#|\{\{\s*\$|\{#\s*\w+\[")
_RAW_RE = re.compile(r"\{%-?\s*(raw|endraw)\s*-?%\}")
# An include statement with a constant name, for pages Jinja cannot read.
_INCLUDE_SCAN_RE = re.compile(
    r"""\{%[-+]?\s*include\s+(?:'([^'\\]*)'|"([^"\\]*)")(\s+ignore\s+missing\b)?"""
)
_TAG_RE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
# A page's tags in order; a raw block is one match, its text in the group "raw".
_PAGE_TAG_RE = re.compile(
    r"\{%\s*raw\s*%\}(?P<raw>.*?)\{%\s*endraw\s*%\}|\{\{.*?\}\}|\{%.*?%\}|\{#", re.S
)
_INCLUDE_TAG_RE = re.compile(r"""\{%\s*include\s+(?:'[^'\\]*'|"[^"\\]*")\s*%\}""")
_ENDRAW_RE = re.compile(r"\{%[-+]?\s*endraw")
_SPACE_RE = re.compile(r"\s*")
_DASH_OPEN_RE = re.compile(r"\{[%{#]-")


def split_lines(text: str) -> list[str]:
    """Split on ``\\r\\n``, ``\\r`` and ``\\n`` only (``str.splitlines`` splits on more)."""
    return _NEWLINE_RE.split(text)


def split_front_matter(text: str) -> tuple[str, str, int]:
    """Return ``(front_matter_yaml, body, body_first_line)``; line is 1-based."""
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return "", text, 1
    lines = len(_NEWLINE_RE.findall(match.group(0)))
    return match.group(1) or "", text[match.end() :], lines + 1


def has_tags(text: str) -> bool:
    """Whether ``text`` may hold Jinja syntax at all."""
    return "{%" in text or "{{" in text or "{#" in text


def looks_like_shell(line: str) -> bool:
    """Whether ``line`` holds a shell idiom Jinja reads as its own syntax (``{{.Name}}``)."""
    return _SHELL_JINJA_RE.search(line) is not None


def lines_outside_raw(text: str, first_line: int) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of ``text`` outside ``{% raw %}`` blocks."""
    in_raw = False
    for n, line in enumerate(split_lines(text), start=first_line):
        if _RAW_RE.search(line):
            in_raw = "endraw" not in _RAW_RE.findall(line)[-1]
            continue
        if not in_raw:
            yield n, line


def written_includes(text: str, first_line: int) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, name)`` of each include with a constant name, outside raw
    blocks and without ``ignore missing``, in order."""
    for n, line in lines_outside_raw(text, first_line):
        if "include" not in line:
            continue
        for match in _INCLUDE_SCAN_RE.finditer(line):
            if match.group(3):
                continue  # "ignore missing"
            yield n, match.group(1) if match.group(1) is not None else match.group(2)


def include_line(text: str, name: str) -> int | None:
    """Return the first line of ``text`` that includes ``name``, or None."""
    needle = re.compile(r"\{%-?\s*include\s+['\"]" + re.escape(name) + "['\"]")
    for n, line in enumerate(split_lines(text), start=1):
        if needle.search(line):
            return n
    return None


def unmarkable_fast(text: str) -> set[int]:
    """Return line numbers where a marker would sit inside a tag or defeat ``-``.

    Like the renderer's reading with Jinja's lexer, but with a regular expression. Lines
    are counted as ``split_lines`` counts them (a lone ``\r`` ends one too).
    """
    skip: set[int] = set()
    starts = [m.end() for m in _NEWLINE_RE.finditer(text)]  # where lines 2, 3 … start

    def line_of(pos: int) -> int:  # 1-based line holding offset pos
        return bisect.bisect_right(starts, pos) + 1

    def strip_before(start: int) -> None:
        # "{%-" strips the whitespace before it, line breaks included.
        before = start
        while before > 0 and text[before - 1].isspace():
            before -= 1
        skip.update(range(line_of(before) + 1, line_of(start) + 1))

    for match in _TAG_RE.finditer(text):
        start, end = match.span()
        tag = match.group()
        if "\n" in tag or "\r" in tag:
            skip.update(range(line_of(start) + 1, line_of(end - 1) + 1))
        if tag[2] == "-":
            strip_before(start)
        if tag[-3] == "-":
            after = _SPACE_RE.match(text, end)
            stop = after.end() if after else end
            skip.update(range(line_of(end) + 1, line_of(stop) + 1))
    if "-" in text:
        # A tag Jinja ends at the end of the text without closing it ("{#-" last) strips
        # just the same.
        for match in _DASH_OPEN_RE.finditer(text):
            strip_before(match.start())
    return skip


def split_tags(text: str) -> list[tuple[bool, str, int]] | None:
    """Split a page into ``(is_tag, text, source lines)`` pieces for tag-by-tag rendering.

    Text pieces are what Jinja outputs for them (a raw block's content, newlines
    normalised, the final newline dropped); a tag is a ``{{ … }}`` or an include. Return
    None when the page uses anything else, before anything is rendered.
    """
    text = "\n".join(split_lines(text))
    if text.endswith("\n"):
        text = text[:-1]  # keep_trailing_newline=False drops one final newline
    pieces: list[tuple[bool, str, int]] = []
    pos = 0
    for match in _PAGE_TAG_RE.finditer(text):
        data = text[pos : match.start()]
        if has_tags(data):
            return None  # an unclosed tag: Jinja reports it
        pieces.append((False, data, data.count("\n")))
        pos = match.end()
        whole = match.group()
        raw = match.group("raw")
        if raw is not None:
            if _ENDRAW_RE.search(raw):
                return None  # an endraw with whitespace control ends it earlier
            pieces.append((False, raw, whole.count("\n")))
        elif whole[1] == "#" or whole[2] in "-+" or whole[-3] in "-+":
            return None  # whitespace control and comments take Jinja's own lexer
        elif whole[1] == "%" and not _INCLUDE_TAG_RE.fullmatch(whole):
            return None  # statements that span text (if, for, set …)
        else:
            pieces.append((True, whole, whole.count("\n")))
    data = text[pos:]
    if has_tags(data):
        return None
    pieces.append((False, data, data.count("\n")))
    return pieces
