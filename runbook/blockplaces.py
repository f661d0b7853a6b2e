"""Find an indented code block again in the page's source, by its text.

The renderer gives an indented block's text, not where it stands; these read the page's
lines (as the renderer reads them) for the places that hold that text, and place blocks
whose text alone says where they are. ``runbook.blocks`` asks the renderer about the rest.
"""

from __future__ import annotations

import itertools


def line_index(source: list[str]) -> dict[str, list[int]]:
    """Return the numbers of the lines holding each text, indentation aside."""
    index: dict[str, list[int]] = {}
    for n, line in enumerate(source):
        if line:
            index.setdefault(line.strip(" >"), []).append(n)
    return index


def candidate_starts(
    wanted: list[str], source: list[str], taken: set[int], by_text: dict[str, list[int]]
) -> list[int]:
    """Every line where the non-blank lines ``wanted`` start in ``source``, blank lines aside.

    Blank lines are left out of the comparison: a fence an indented block took back in
    comes back with a blank line it did not have.
    """
    if not wanted:
        return []
    return [
        i
        for i in by_text.get(wanted[0].strip(" >"), ())
        if i not in taken and same(source[i], wanted[0]) and match_at(wanted, source, i)
    ]


def match_at(wanted: list[str], source: list[str], i: int) -> int | None:
    """Return the line after ``wanted`` when it starts at line ``i``, else None."""
    matched, n = 0, i
    while matched < len(wanted) and n < len(source):
        if not source[n] and matched:
            n += 1
        elif same(source[n], wanted[matched]):
            matched, n = matched + 1, n + 1
        else:
            return None
    return n if matched == len(wanted) else None


def unique_order(
    wanted: list[list[str]], candidates: list[list[int]], source: list[str]
) -> list[int | None] | None:
    """Return each block's start when the text alone says it, else None.

    Blocks of the same text (a snippet included twice) take their places in order when
    there are as many places as blocks; a place inside a block already placed is not one
    (a one-line block matches the first line of a longer one). More places than blocks (the
    same text in a paragraph, say) needs the renderer to tell them apart.
    """
    starts: list[int | None] = [None] * len(wanted)
    claimed: set[int] = set()
    groups: dict[tuple[str, ...], list[int]] = {}
    for k, lines in enumerate(wanted):
        groups.setdefault(tuple(lines), []).append(k)
    progress = True
    while progress:
        progress = False
        # Longer blocks first: a shorter text can match inside a longer block, not the reverse.
        for _, members in sorted(groups.items(), key=lambda item: -len(item[0])):
            open_ = [k for k in members if starts[k] is None]
            if not open_:
                continue
            places = [c for c in candidates[open_[0]] if c not in claimed]
            if len(places) != len(open_):
                continue
            for k, place in zip(open_, places, strict=True):
                starts[k] = place
                span = range(place, match_at(wanted[k], source, place) or place + 1)
                if claimed.intersection(span):
                    return None
                claimed.update(span)
            progress = True
    if None in starts or starts != sorted(starts, key=lambda n: n or 0):
        return None
    return starts


def in_order(starts: list[int | None], wanted: list[list[str]], source: list[str]) -> bool:
    """Whether blocks placed at ``starts`` follow one another, each after the one before."""
    end = 0
    for start, lines in zip(starts, wanted, strict=True):
        if start is None or start < end:
            return False
        end = match_at(lines, source, start) or start + 1
    return True


def first_fit(
    candidates: list[list[int]], wanted: list[list[str]], source: list[str]
) -> list[int | None]:
    """Place each block at its first place after the block before it."""
    starts: list[int | None] = []
    end = 0
    for found, lines in zip(candidates, wanted, strict=True):
        start = next((n for n in found if n >= end), None)
        starts.append(start)
        if start is not None:
            end = match_at(lines, source, start) or start + 1
    return starts


def back(source: list[str], line: int, lines: int) -> int:
    """Go up ``lines`` non-blank lines from ``line``."""
    while lines and line > 0:
        line -= 1
        lines -= bool(source[line])
    return line


def same(source: str, code: str) -> bool:
    """Tell whether a source line, less its indentation, is this line of a code block."""
    # Trailing spaces aside: a block loses those of its last line.
    source, code = source.rstrip(" "), code.rstrip(" ")
    if not code or not source.endswith(code):
        return False
    prefix = source[: len(source) - len(code)]
    return not prefix.strip(" >") and prefix.count(" ") >= 4


def normalized(text: str, tab_length: int) -> list[str]:
    """Return the page's lines as Python-Markdown reads them (tabs expanded, blank lines empty)."""
    return [
        "" if not line.strip(" ") else line
        for line in text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .expandtabs(tab_length)
        .split("\n")
    ]


def fences_in_order(stack: list[tuple[str, int, int]], size: int) -> bool:
    """Whether the fences follow one another within ``size`` lines (as the preprocessor
    finds them)."""
    return all(0 <= start <= end <= size for _, start, end in stack) and all(
        before[2] <= after[1] for before, after in itertools.pairwise(stack)
    )


def splice(lines: list[str], stack: list[tuple[str, int, int]]) -> list[str]:
    """Return ``lines`` with each ``(text, start, end)`` of ``stack`` (in order, apart)
    put in place of lines ``start`` to ``end``; empty ``stack``, as superfences leaves it."""
    out: list[str] = []
    at = 0
    for text, start, end in stack:
        out += lines[at:start]
        out.append(text)
        at = end
    out += lines[at:]
    stack.clear()
    return out
