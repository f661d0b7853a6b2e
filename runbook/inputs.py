"""Placeholders as inputs: substitute ``<name>`` with shell variable references, never values.

A value never becomes shell source text. Each ``<name>`` is replaced by a reference to a shell
variable (quoted to suit where it stands: unquoted, in single or double quotes, in a heredoc),
and the session sets that variable without typing the value as code. So ``$(…)``, quotes,
backticks or ``;`` in a value are only ever data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import UsageError
from runbook.model import Placeholder

MASK = "********"
PLACEHOLDER_RE = re.compile(r"(?<!<)<([A-Za-z][A-Za-z0-9_.-]*)>(?!>)")
"""A ``<name>`` input in a command (not ``<<`` or ``>>``): the one rule of placeholder syntax."""
_HEREDOC_RE = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\?([A-Za-z_][\w.-]*))")
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 control characters and DEL: typed into a terminal they act as keystrokes."""


def shell_var(name: str) -> str:
    """Return the shell variable that holds input ``name``."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if safe != name:
        # db-host and db_host must not share a variable
        safe += "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    # Not "__rb…": the session reserves that prefix for its own variables.
    return f"RUNBOOK_IN_{safe}"


def env_name(name: str) -> str:
    """Return the environment variable that gives input ``name`` (``RUNBOOK_SET_DB_PASSWORD``)."""
    return "RUNBOOK_SET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def how_to_give(name: str, secret: bool) -> str:
    """Say how a run is given input ``name``: a secret never on the command line."""
    if secret:
        return f"--set-file {name}=PATH (or {env_name(name)} in the environment)"
    return f"--set {name}=…"


def input_values(
    sets: Mapping[str, str],
    files: Mapping[str, str],
    names: Iterable[str],
    environ: Mapping[str, str],
) -> dict[str, str]:
    """Return the inputs' values: ``--set`` wins, then ``RUNBOOK_SET_<NAME>``, then
    ``--set-file`` (the file's text, one trailing newline dropped). A secret never has to
    stand in runbook's argv."""
    values: dict[str, str] = {}
    for name, path in files.items():
        values[name] = _read_value_file(name, Path(path))
    for name in names:
        if env_name(name) in environ:
            values[name] = environ[env_name(name)]
    values.update(sets)
    return values


def _read_value_file(name: str, path: Path) -> str:
    from runbook.source import read_source

    data = read_source(path, "value file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the value of <{name}> is not UTF-8 text", path=path) from None
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def check_value(name: str, value: str) -> None:
    """Refuse values a terminal could take as keystrokes (C0 and C1 control characters)."""
    match = CONTROL_RE.search(value)
    if match:
        raise UsageError(
            f"the value of <{name}> contains the control character "
            f"0x{ord(match.group()):02x}, which a terminal would act on",
            hint="give a value without control characters (newlines and tabs included)",
        )


@dataclass(frozen=True)
class Script:
    """A block's code ready for the shell."""

    code: str
    """The code, placeholders replaced by variable references."""
    inputs: tuple[str, ...]
    """Names of the inputs it uses, in order of first use."""


def placeholders_in(code: str) -> list[str]:
    """Return the placeholder names of ``code`` in order of first use."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER_RE.finditer(code):
        seen.setdefault(match.group(1), None)
    return list(seen)


def substitute(
    code: str,
    names: Iterable[str],
    *,
    literal: Mapping[str, str] | None = None,
) -> Script:
    """Replace each ``<name>`` in ``names`` by a suitably quoted variable reference.

    ``literal`` holds non-secret values usable where no expansion happens (a quoted
    heredoc body); a placeholder there with no literal value is refused.
    """
    wanted = set(names)
    used: dict[str, None] = {}
    out: list[str] = []
    state = "normal"  # normal | single | double
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, strip_tabs, quoted)
    for line in code.split("\n"):
        if heredocs and state == "normal":
            delim, strip, quoted = heredocs[0]
            if (line.lstrip("\t") if strip else line) == delim:
                heredocs.pop(0)
                out.append(line)
                continue
            out.append(_heredoc_line(line, wanted, used, quoted, literal or {}))
            continue
        pieces, state = _scan_line(line, state, wanted, used)
        out.append(pieces)
        if state == "normal":
            for m in _HEREDOC_RE.finditer(line):
                delim = m.group(2) or m.group(3) or m.group(4)
                heredocs.append((delim, m.group(1) == "-", m.group(4) is None))
    return Script("\n".join(out), tuple(used))


def _reference(name: str, used: dict[str, None], quote: str) -> str:
    used.setdefault(name, None)
    var = shell_var(name)
    if quote == "normal":
        return f'"${{{var}}}"'
    if quote == "double":
        return f"${{{var}}}"
    return f"'\"${{{var}}}\"'"  # close the single quotes, expand, reopen


def _heredoc_line(
    line: str, wanted: set[str], used: dict[str, None], quoted: bool, literal: Mapping[str, str]
) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in wanted:
            return m.group(0)
        if not quoted:
            used.setdefault(name, None)
            return f"${{{shell_var(name)}}}"
        if name in literal:
            return literal[name]
        raise UsageError(
            f"<{name}> stands in a quoted heredoc (<<'EOF'), where the shell expands nothing, "
            "and its value is secret or unknown",
            hint="use an unquoted heredoc delimiter (<<EOF) so the value can be expanded",
        )

    return PLACEHOLDER_RE.sub(repl, line)


def _scan_line(line: str, state: str, wanted: set[str], used: dict[str, None]) -> tuple[str, str]:
    """Substitute placeholders in one line, tracking shell quoting across lines."""
    out: list[str] = []
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        m = PLACEHOLDER_RE.match(line, i) if ch == "<" else None
        if m and m.group(1) in wanted and (i == 0 or line[i - 1] != "<"):
            out.append(_reference(m.group(1), used, state))
            i = m.end()
            continue
        if state != "single" and ch == "\\" and i + 1 < n:
            out.append(line[i : i + 2])  # an escaped character never changes the quoting
            i += 2
            continue
        if state == "single":
            if ch == "'":
                state = "normal"
        elif state == "double":
            if ch == '"':
                state = "normal"
        else:
            if ch == "'":
                state = "single"
            elif ch == '"':
                state = "double"
            elif ch == "#" and (i == 0 or line[i - 1] in " \t;&|("):
                out.append(line[i:])  # a comment: nothing to substitute or track
                break
        out.append(ch)
        i += 1
    return "".join(out), state


def preview(code: str, values: Mapping[str, str], secret: Iterable[str]) -> str:
    """Return ``code`` with known values shown (secrets masked), for people to read."""
    hidden = set(secret)

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in hidden and name in values:
            return MASK
        return values.get(name, m.group(0))

    return PLACEHOLDER_RE.sub(repl, code)


def secret_names(placeholders: Iterable[Placeholder]) -> set[str]:
    """Return the names of the secret placeholders."""
    return {p.name for p in placeholders if p.secret}
