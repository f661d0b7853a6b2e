"""Placeholders as inputs: substitute ``<name>`` with shell variable references, never values.

A value never becomes shell source text. Each ``<name>`` is replaced by a reference to a shell
variable, written to suit where it stands (see ``runbook.shellcontext``), and the session sets
that variable without typing the value as code. So ``$(…)``, quotes, backticks or ``;`` in a
value are only ever data; where bash reads a variable's text again (arithmetic, variable
names) only values it holds as data are taken, checked before anything runs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import GuideError, UsageError
from runbook.model import Limit, Placeholder
from runbook.shellcommands import Use
from runbook.shellcontext import PLACEHOLDER_RE, scan

__all__ = ["PLACEHOLDER_RE", "Use"]

MASK = "********"
_INTEGER_RE = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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


def check_value(name: str, value: str, limits: Iterable[Limit] = ()) -> None:
    """Refuse values a terminal could take as keystrokes (C0 and C1 control characters),
    and values a context that reads them again (``limits``) would run as code."""
    match = CONTROL_RE.search(value)
    if match:
        raise UsageError(
            f"the value of <{name}> contains the control character "
            f"0x{ord(match.group()):02x}, which a terminal would act on",
            hint="give a value without control characters (newlines and tabs included)",
        )
    for limit in limits:
        if limit.kind == "integer" and not _INTEGER_RE.fullmatch(value):
            raise UsageError(
                f"the value of <{name}> is not a whole number, and {limit.context} reads it "
                "as arithmetic, where other text runs as code",
                hint="give a whole number such as 5 (without leading zeros, which bash reads "
                "as octal)",
            )
        if limit.kind == "name" and not _NAME_RE.fullmatch(value):
            raise UsageError(
                f"the value of <{name}> is not a plain variable name, and {limit.context} "
                "takes it as one, where other text runs as code",
                hint="give a name of letters, digits and _ that does not start with a digit",
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
    """Replace each ``<name>`` in ``names`` by a variable reference suited to where it stands.

    ``literal`` holds non-secret values usable where no expansion happens (a quoted
    heredoc body); a placeholder there with no literal value is refused, and so is one
    where the shell would run a value as code (lint reports those in a guide).
    """
    wanted = {name for name in names if f"<{name}>" in code}
    if not wanted:
        # Nothing to replace (most blocks): no need to read the code's quoting.
        return Script(code, ())
    text, found = scan(code, wanted, shell_var, literal)
    for use in found:
        if use.code:
            raise GuideError(run_as_code(use), hint=CODE_HINT)
    return Script(text, tuple(dict.fromkeys(use.name for use in found)))


CODE_HINT = (
    "pass the value as an argument (bash -c '… \"$1\" …' _ <name>), or run the block on that "
    'host with host="…" instead of through ssh'
)
"""What to do about a placeholder where the shell runs text as code."""


def run_as_code(use: Use) -> str:
    """Say that a placeholder stands where the shell runs text as code."""
    return (
        f"<{use.name}> stands in {use.code}, where the shell runs text as code: no quoting "
        "keeps a value data there"
    )


def uses(code: str, names: Iterable[str]) -> list[Use]:
    """Return every use of the placeholders ``names`` in ``code``, with its context."""
    return list(_uses(code, frozenset(names)))


@functools.lru_cache(maxsize=4096)
def _uses(code: str, names: frozenset[str]) -> tuple[Use, ...]:
    # The same block on many pages (a snippet, a command guides repeat) is read once: the
    # uses depend on the code and the names alone.
    return tuple(scan(code, set(names), shell_var, _AnyLiteral())[1])


def forget_uses() -> None:
    """Forget the uses read so far (for measurements that must start cold)."""
    _uses.cache_clear()


class _AnyLiteral(dict[str, str]):
    """Literal values for a scan that only looks: every name has one."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return ""


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
