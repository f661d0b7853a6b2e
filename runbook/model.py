"""The runbook model: what a guide says, frozen, shared by the CLI, the executor and the site."""

from __future__ import annotations

import bisect
import enum
import functools
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ActionKind = Literal["run", "suggested", "shown", "connect"]


class Outcome(enum.StrEnum):
    """How a block ended: the one vocabulary of the shells, the verdicts and the journal."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    SHELL_DIED = "shell-died"
    SHELL_REPLACED = "shell-replaced"
    NEEDS_INPUT = "needs-input"


Level = Literal["error", "warning", "info"]


def rel(path: Path | str) -> str:
    """Return ``path`` relative to the working folder when it is inside it, for display."""
    text = str(path)
    try:
        return _relative(text, os.getcwd())
    except (OSError, ValueError):
        return text


@functools.lru_cache(maxsize=256)
def _relative(text: str, cwd: str) -> str:
    # Every block's header names its file: worked out once per file and folder.
    relative = os.path.relpath(text, cwd)
    return text if relative.startswith("..") else relative


def location(path: Path | str | None, line: int | None = None) -> str:
    """Return ``file:line`` for people (``file`` alone without a line, empty without a file)."""
    if path is None:
        return ""
    return f"{rel(path)}:{line}" if line else rel(path)


@dataclass(frozen=True)
class Origin:
    """A place in a source file."""

    path: Path
    """The file, as given or resolved (a guide or a snippet)."""
    line: int
    """1-based line number in that file."""

    def __str__(self) -> str:
        # The full path: journals record blocks by it, whatever folder a run starts in.
        return f"{self.path}:{self.line}"

    @property
    def shown(self) -> str:
        """Return ``file:line`` for people, the file relative to the working folder."""
        return location(self.path, self.line)


@dataclass(frozen=True)
class Diagnostic:
    """A problem or observation about a guide, located at a file and line."""

    level: Level
    """``error`` stops lint and exec; ``warning`` and ``info`` are reported only."""
    origin: Origin | None
    """Where the problem is, when it has a place."""
    message: str
    """What is wrong, in one sentence."""
    code: str = ""
    """A short stable identifier (``step-without-item``), for filtering."""
    hint: str = ""
    """What to do about it."""


@dataclass(frozen=True)
class Limit:
    """A shell context that reads a value's text again, so holds only some values as data."""

    kind: Literal["integer", "name"]
    """``integer``: arithmetic (a whole number only); ``name``: a variable's name."""
    context: str
    """Where, as people know it: ``$(( ))``, ``[[ … -gt … ]]``, ``printf -v`` …"""


@dataclass(frozen=True)
class Placeholder:
    """A ``<name>`` input found in a command."""

    name: str
    """The name between the angle brackets."""
    secret: bool
    """Whether the value must never be echoed, logged or written."""
    limits: tuple[Limit, ...] = ()
    """The contexts of its uses in this block that hold only some values (see Limit)."""


@dataclass(frozen=True)
class Answer:
    """An ``expect``/``send`` pair declared on a block."""

    expect: str
    """Text the command prints when it waits for input."""
    send: str
    """What to type in reply (may hold ``<placeholders>``)."""


@dataclass(frozen=True)
class TabRef:
    """A content tab enclosing an action."""

    label: str
    """The tab's label, e.g. ``mysqldump``."""
    group: Origin
    """The first tab of the set of alternatives this tab belongs to."""


@dataclass(frozen=True)
class Admonition:
    """An admonition (``!!! warning``) inside a step."""

    kind: str
    """Its type: ``warning``, ``danger``, ``note``, ``todo`` …"""
    title: str
    """Its title, or empty."""
    text: str
    """Its body markdown, dedented."""
    origin: Origin
    """Where it starts."""
    tabs: tuple[TabRef, ...] = ()
    """Enclosing content tabs, outermost first."""


@dataclass(frozen=True)
class PromptCommand:
    """One command of a ``$ `` block, with the output it must print."""

    code: str
    """The command after ``$ `` (``> `` continuation lines joined by newlines)."""
    expected: tuple[str, ...]
    """The output lines that follow it in the block."""
    offset: int
    """Its 0-based line in the block's code."""


@dataclass(frozen=True)
class Connection:
    """An ``ssh [options] [user@]host`` line alone in a block: the blocks after it, to the
    end of its step, content tab or admonition, run on that host."""

    words: tuple[str, ...]
    """The words after ``ssh`` as written (``<placeholders>`` kept): options, then the
    destination."""
    origin: Origin
    """The block holding the line."""

    @property
    def destination(self) -> str:
        """Return the host as written (``<username>@<old-server>``)."""
        return self.words[-1]


@dataclass(frozen=True)
class Action:
    """A code block inside a step: run, offered to the operator, or only shown."""

    kind: ActionKind
    """``run`` (marked ``.run``), ``suggested`` (shell-looking), ``shown``, or ``connect``
    (an ``ssh`` line that opens the session the next blocks run in)."""
    lang: str
    """The info string's language, or ``""`` (indented blocks have none)."""
    code: str
    """The block's content as rendered (includes expanded), without fences."""
    origin: Origin
    """The first line of the block (its opening fence) in its own file."""
    fenced: bool
    """Whether it was a fenced block (else indented)."""
    attrs: tuple[tuple[str, str], ...] = ()
    """Attributes from ``{ .run key="value" }``, in order, classes as ``("class", …)``."""
    tabs: tuple[TabRef, ...] = ()
    """Enclosing content tabs, outermost first."""
    admonitions: tuple[str, ...] = ()
    """Kinds of the enclosing admonitions, outermost first."""
    host: str = "local"
    """The host the block targets (``host="…"``), ``local`` for this machine."""
    connection: Connection | None = None
    """The ``ssh`` line the block runs after (and, for a ``connect`` block, its own line);
    None when ``host`` says where it runs."""
    within: tuple[int, ...] = ()
    """Where its enclosing content tabs and admonitions start, outermost first: the
    containers an ``ssh`` line's scope ends with."""
    expects_output: bool = False
    """Whether it is a ``$ `` block whose output lines are checked."""
    placeholders: tuple[Placeholder, ...] = ()
    """``<name>`` inputs the commands use, in order of first use."""
    timeout: float | None = None
    """Seconds before the block is stopped (``timeout="…"``), or the run's default."""
    answers: tuple[Answer, ...] = ()
    """Declared replies to prompts (``expect``/``send`` pairs)."""
    commands: tuple[PromptCommand, ...] = ()
    """The commands of a ``$ `` block (``expects_output``), in order; else empty."""
    lead: str = ""
    """The step's markdown between the block before it (or the step's heading) and it: the
    prose, admonitions and sub-headings a reader meets right before this block, so a run
    can show them there rather than all at the step's start."""

    def attr(self, name: str) -> str | None:
        """Return attribute ``name``, or None."""
        for key, value in self.attrs:
            if key == name:
                return value
        return None

    @property
    def executable(self) -> bool:
        """Whether the block may be run (now or after a yes)."""
        return self.kind != "shown"

    @property
    def where(self) -> str:
        """Say where it runs, as written: ``this machine``, a site host, or an ``ssh``
        destination."""
        if self.connection is not None:
            return self.connection.destination
        return "this machine" if self.host == "local" else self.host


@dataclass(frozen=True)
class Directive:
    """An instruction to ``exec`` that readers do not see: ``<!-- runbook: repeat 3-6 -->``."""

    name: str
    """``exec`` (run another guide), ``repeat`` (run earlier steps again) or ``timer``."""
    args: tuple[str, ...]
    """Its words after the name."""
    origin: Origin
    """Where it is written."""
    after: int
    """How many of the step's actions come before it (it runs between them)."""
    tabs: tuple[TabRef, ...] = ()
    """Enclosing content tabs, outermost first."""
    target: Path | None = None
    """The guide an ``exec`` directive runs, resolved against the file it is written in."""

    @property
    def steps(self) -> tuple[int, ...]:
        """Step numbers named by ``repeat 3-6`` / ``repeat 3,5``."""
        numbers: list[int] = []
        for part in " ".join(self.args).replace(" ", ",").split(","):
            if "-" in part:
                lo, _, hi = part.partition("-")
                numbers.extend(range(int(lo), int(hi) + 1))
            elif part:
                numbers.append(int(part))
        return tuple(numbers)


@dataclass(frozen=True)
class CheckItem:
    """A task-list item (``* [ ] 3. Take a backup``)."""

    text: str
    """The item's text after the checkbox, trimmed."""
    checked: bool
    """Whether its box is ticked in the file."""
    origin: Origin
    """Its line in its own file (the guide, or a snippet for sub-checks)."""
    number: int | None
    """The leading step number of the text (``3.``), if any."""
    in_guide: bool
    """Whether it is in the guide file itself (only those are ever written)."""


@dataclass(frozen=True)
class SubStep:
    """Part M of a step (``3.2``): the step's M-th numbered sub-heading (``#### 2. …``) and
    the blocks under it, up to the next heading of the same or a higher level, the end of
    the tab or admonition holding the heading, or the step's end."""

    number: int
    """Its place among the step's numbered sub-headings, from 1 (the M of ``N.M``)."""
    title: str
    """The sub-heading's text without its number."""
    origin: Origin
    """Where the sub-heading is."""
    actions: tuple[Action, ...] = ()
    """The step's blocks in this part, in document order."""


@dataclass(frozen=True)
class Step:
    """A numbered step of the guide."""

    number: int
    """The step number from the heading or checklist."""
    title: str
    """The heading text without its number (or the checklist text)."""
    origin: Origin
    """Where the step's heading (or, lacking one, its checklist item) is."""
    level: int
    """Heading level (2 for ``##``); 0 when the step exists only in the checklist."""
    item: CheckItem | None
    """The overview checklist item bound to this step by number."""
    actions: tuple[Action, ...] = ()
    """Code blocks in document order, includes expanded."""
    admonitions: tuple[Admonition, ...] = ()
    """Admonitions in document order."""
    subchecks: tuple[CheckItem, ...] = ()
    """Task-list items inside the step: shown; written only by ``runbook check N.M``."""
    directives: tuple[Directive, ...] = ()
    """``<!-- runbook: … -->`` instructions, in document order."""
    tab_paths: tuple[tuple[TabRef, ...], ...] = ()
    """Every content tab of the step as its path of tabs (outermost first, itself last),
    including tabs that hold only prose: each is an alternative to offer."""
    body: str = ""
    """The step's rendered markdown (heading excluded)."""
    end_line: int = 0
    """The rendered line after the step's last line (0-based, exclusive)."""
    substeps: tuple[SubStep, ...] = ()
    """Its parts, one per numbered sub-heading at the shallowest level that has them."""

    @property
    def checked(self) -> bool:
        """Whether the guide records this step as done."""
        return self.item is not None and self.item.checked

    @property
    def manual(self) -> bool:
        """Whether nothing in the step can be run: a person does it."""
        return not any(a.executable for a in self.actions) and not any(
            d.name in ("exec", "repeat") for d in self.directives
        )


MARK_OPEN = "\ue000"
"""Opens a position marker; the renderer's nonce, ``file,line`` and MARK_CLOSE follow."""
MARK_CLOSE = "\ue001"
"""Closes a position marker."""
_NONCE_LENGTH = 8
_NONCE_FIRST = 0xE002  # the nonce's alphabet: private-use characters other than the marks
_NONCE_LAST = 0xF8FF


@dataclass(frozen=True)
class Marks:
    """The position markers of one renderer: ``MARK_OPEN nonce file,line MARK_CLOSE``.

    The nonce is drawn at random for each renderer, so no guide, snippet or variable can
    hold a marker: any other text, private-use characters and marker look-alikes included,
    is never taken for one, and passes through untouched. Its characters have no case and
    are not space, so filters such as ``upper`` or ``trim`` leave a marker as it was.
    """

    nonce: str
    """What follows MARK_OPEN in every marker of this renderer."""

    @classmethod
    def new(cls) -> Marks:
        """Return markers with a fresh random nonce."""
        span = _NONCE_LAST - _NONCE_FIRST + 1
        return cls(
            "".join(chr(_NONCE_FIRST + secrets.randbelow(span)) for _ in range(_NONCE_LENGTH))
        )

    @functools.cached_property
    def open(self) -> str:
        """The start of every marker: MARK_OPEN and the nonce."""
        return MARK_OPEN + self.nonce

    def marker(self, file: int, line: int) -> str:
        """Return the marker of ``line`` (1-based) of source file number ``file``."""
        return f"{self.open}{file},{line}{MARK_CLOSE}"

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Matches exactly one marker; groups: file number, line."""
        return re.compile(re.escape(self.open) + "([0-9]+),([0-9]+)" + re.escape(MARK_CLOSE))

    @functools.cached_property
    def file_pattern(self) -> re.Pattern[str]:
        """Matches the start of a marker; group: file number."""
        return re.compile(re.escape(self.open) + "([0-9]+),")

    def strip(self, text: str) -> str:
        """Return ``text`` without this renderer's markers, and with nothing else removed."""
        return self.pattern.sub("", text) if self.open in text else text

    def read(self, text: str) -> re.Match[str] | None:
        """Return the last whole marker in ``text`` (groups: file number, line), or None."""
        start = text.rfind(self.open)
        while start >= 0:
            match = self.pattern.match(text, start)
            if match is not None:
                return match
            start = text.rfind(self.open, 0, start)
        return None


@dataclass(frozen=True)
class LineMap:
    """Maps each line of the rendered text back to its source file and line.

    Positions are kept as the renderer left them, as markers inside the rendered lines, and
    read only for the lines asked about: most lines of a page are never asked.
    """

    paths: tuple[Path, ...]
    """Source files, indexed by the markers."""
    marked: tuple[str, ...] = ()
    """The rendered lines with their position markers (see :class:`Marks`)."""
    page: int = 0
    """Index of the page itself in ``paths``."""
    first_line: int = 1
    """Source line of rendered line 0, for a page rendered without markers."""
    count: int = 0
    """Number of rendered lines."""
    marks: Marks | None = None
    """The markers in ``marked`` (None when there are none)."""

    def __len__(self) -> int:
        return self.count

    def origin(self, rendered_line: int) -> Origin:
        """Return the source of 0-based ``rendered_line`` (clamped to the text)."""
        n = min(max(rendered_line, 0), max(self.count - 1, 0))
        if not self.marked or self.marks is None:
            return Origin(self.paths[self.page], self.first_line + n)
        # The nearest marker at or above the line; a line without one continues it.
        anchors = self._anchors
        at = bisect.bisect_right(anchors, n) - 1
        while at >= 0:
            k = anchors[at]
            match = self.marks.read(self.marked[k])
            if match is not None:
                return Origin(self.paths[int(match[1])], int(match[2]) + (n - k))
            at -= 1  # a marker the template cut (slicing a {% set %} block) places nothing
        return Origin(self.paths[self.page], self.first_line + n)

    @functools.cached_property
    def _anchors(self) -> list[int]:
        """Indexes of the marked lines, ascending (computed on the first ``origin``)."""
        if self.marks is None:
            return []
        opening = self.marks.open
        return [k for k, line in enumerate(self.marked) if opening in line]


@dataclass(frozen=True)
class Rendered:
    """A guide after Jinja rendering, with its line map."""

    path: Path
    """The guide file."""
    text: str
    """The markdown as the site sees it (front matter kept out)."""
    line_map: LineMap
    """Where each line of ``text`` came from."""
    includes: tuple[Path, ...] = ()
    """Every file included, in first-use order."""
    front_matter: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    """The page's YAML front matter."""
    source: bytes = field(default=b"", repr=False, hash=False, compare=False)
    """The guide file's bytes exactly as read, to detect later edits."""
    problems: tuple[Diagnostic, ...] = ()
    """What a collecting render (``runbook lint``) found wrong; a render that does not
    collect raises the first problem instead."""
    complete: bool = True
    """False when the page itself could not be rendered (a collecting render only): the
    text is then empty, and ``problems`` says why."""


@dataclass(frozen=True)
class Runbook:
    """A loaded guide: its steps, inputs and what was found wrong."""

    path: Path
    """The guide file."""
    title: str
    """The page's first heading, or the file name."""
    steps: tuple[Step, ...]
    """Steps in order."""
    checklist: tuple[CheckItem, ...]
    """The overview checklist (in the guide file), in order."""
    diagnostics: tuple[Diagnostic, ...]
    """Problems and observations, in document order."""
    rendered: Rendered
    """The rendered text and its line map."""
    blocks: tuple[Action, ...] = ()
    """Every code block of the page in document order, in a step or not: what readers see
    as code."""
    runtime_dir: Path | None = None
    """The site's git-ignored folder for journals, transcripts and locks."""
    focus: int | None = None
    """The step of the page that was named, when it is a step page of a guide spanning
    pages (``exec`` runs that step)."""

    @property
    def inputs(self) -> tuple[Placeholder, ...]:
        """Every placeholder the executable blocks use, once, in order of first use."""
        seen: dict[str, Placeholder] = {}
        for step in self.steps:
            for action in step.actions:
                if not action.executable:
                    continue
                for ph in action.placeholders:
                    seen.setdefault(ph.name, ph)
        return tuple(seen.values())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """Diagnostics of level ``error``."""
        return tuple(d for d in self.diagnostics if d.level == "error")

    def step(self, number: int) -> Step | None:
        """Return step ``number``, or None."""
        for step in self.steps:
            if step.number == number:
                return step
        return None
