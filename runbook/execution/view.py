"""What the operator reads before a block, as plain lines: the block as its author wrote it,
the values its inputs stand for, the prose that leads to it, and the warning it needs a yes
for. Pure functions of the model, so they are tested without a terminal."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping

from runbook.inputs import MASK, PLACEHOLDER_RE
from runbook.model import Action, Admonition, Step

Line = tuple[str, tuple[str, ...]]
"""A line to print and its styles."""

_ADMONITION_RE = re.compile(r"^(\s*)(?:!!!|\?\?\?\+?)\s+([\w-]+)(?:\s+\"(.*)\")?\s*$")
_TAB_RE = re.compile(r"^\s*===\+?\s+\"")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s+(.*?)\s*#*\s*$")
_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_COMMENT_RE = re.compile(r"^\s*<!--.*-->\s*$")
_WARNED = ("danger", "warning")
_KIND_STYLES = {"danger": ("red", "bold"), "warning": ("yellow", "bold")}


def block_lines(action: Action) -> list[tuple[str, bool]]:
    """Return the block's lines as written, each with whether it is command text (else the
    output a ``$ `` block expects): ``$ `` is never added, so it never shows twice."""
    lines = action.code.rstrip("\n").split("\n")
    if not action.expects_output:
        return [(text, True) for text in lines]
    command: set[int] = set()
    for cmd in action.commands:
        command.update(range(cmd.offset, cmd.offset + cmd.code.count("\n") + 1))
    return [(text, i in command) for i, text in enumerate(lines)]


def legend(code: str, values: Mapping[str, str], secret: Iterable[str]) -> list[str]:
    """Return ``<name> = 'value'`` for each input ``code`` uses that has a value, in order of
    first use: quoted as a Python literal, so a value that looks like code (``'; rm -rf'``,
    control characters) reads as the data it is; a secret shows as ``********``."""
    hidden = set(secret)
    names = dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(code))
    return [
        f"<{name}> = " + (MASK if name in hidden else repr(values[name]))
        for name in names
        if name in values
    ]


def warning(step: Step, action: Action) -> str:
    """Say why ``action`` runs only after a person's yes: the danger or warning admonition
    right before it (or around it), or its step's title saying it is optional; else ``""``."""
    said = ""
    for raw in action.lead.split("\n"):
        m = _ADMONITION_RE.match(raw)
        if m and m.group(2) in _WARNED:
            said = m.group(2).upper() + (f": {m.group(3)}" if m.group(3) else "")
    if said:
        return said
    around = [kind for kind in action.admonitions if kind in _WARNED]
    if around:
        return around[-1].upper() + " (around the block)"
    if "optional" in step.title.lower():
        return f"step {step.number} is optional"
    return ""


def lead_lines(lead: str, width: int) -> list[Line]:
    """Return the prose before a block for a terminal ``width`` wide: paragraphs and list
    items wrapped, headings bold, admonitions flagged and indented; inline markdown
    (`` `code` ``, ``**bold**``) kept as written so it stays distinguishable. Of content tabs
    only the one holding the block is kept: the prose before it belongs to other tabs."""
    raw = lead.split("\n")
    tabs = [i for i, text in enumerate(raw) if _TAB_RE.match(text)]
    if tabs:
        raw = raw[tabs[-1] + 1 :]
    out: list[Line] = []
    para: list[str] = []
    inside: tuple[int, tuple[str, ...]] | None = None  # an admonition: indent, styles

    def flush() -> None:
        if not para:
            return
        prefix, styles = ("  ", ()) if inside is None else ("  │ ", inside[1])
        hang = "  " if _ITEM_RE.match(para[0]) else ""
        text = " ".join(para)
        for wrapped in textwrap.wrap(
            text,
            max(width, 30),
            initial_indent=prefix,
            subsequent_indent=prefix + hang,
            break_long_words=False,
            break_on_hyphens=False,
        ):
            out.append((wrapped, styles))
        para.clear()

    for text in raw:
        if _COMMENT_RE.match(text):
            continue
        stripped = text.strip()
        indent = len(text) - len(text.lstrip())
        if inside is not None and stripped and indent <= inside[0]:
            flush()
            inside = None
        adm = _ADMONITION_RE.match(text)
        heading = _HEADING_RE.match(text)
        if not stripped or adm or heading or _ITEM_RE.match(text):
            flush()
        if adm:
            kind, title = adm.group(2), adm.group(3)
            styles = _KIND_STYLES.get(kind, ("cyan",))
            out.append((f"  ! {kind.upper()}" + (f": {title}" if title else ""), styles))
            inside = (indent, styles[:1])
        elif heading:
            out.append(("  " + heading.group(1), ("bold",)))
        elif stripped:
            para.append(stripped)
    flush()
    return out


def unplaced(step: Step) -> list[Admonition]:
    """Return the step's dangers and warnings that no block's lead holds (those after its
    last block), which are shown at the step's start instead."""
    placed: dict[tuple[str, str], int] = {}
    for action in step.actions:
        for raw in action.lead.split("\n"):
            m = _ADMONITION_RE.match(raw)
            if m:
                key = (m.group(2), m.group(3) or "")
                placed[key] = placed.get(key, 0) + 1
    left: list[Admonition] = []
    for adm in step.admonitions:
        key = (adm.kind, adm.title)
        if placed.get(key, 0):
            placed[key] -= 1
        elif adm.kind in _WARNED:
            left.append(adm)
    return left
