"""What a guide leaves in a host's shell: its working directory, the variables it set and
the functions it defined, read at block ends and given back to a resumed run.

The shell prints its state itself (``DUMP``): each variable as ``declare -p`` quotes it,
so giving it back is running those lines, never quoting by hand. Only what differs from the
shell as it started is kept: the operator's own environment never reaches the journal. A
variable whose value holds a secret input's value, or whose name says it is a secret
(``API_TOKEN``), is never kept; its name is, with the input it equals (if any), so a resumed
run asks for that input again.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runbook.actions import is_secret

# Every variable's name, each its own word whatever IFS the guide set, with builtins only.
_NAMES = " ".join(f'"${{!{c}@}}"' for c in string.ascii_letters + "_")
DUMP = (
    'builtin printf "%s\\0" "$PWD"; '
    f"for __rb_n in {_NAMES}; do "
    '[[ $__rb_n == __rb* ]] || { builtin declare -p "$__rb_n"; builtin printf "\\0"; }; '
    'done 2>/dev/null; builtin printf "\\1\\0"; builtin declare -f; builtin unset __rb_n'
)
"""Shell code printing the state, builtins only (no process started): the working
directory, each variable's ``declare -p`` line, a ``\\1`` mark, every function's
definition; a NUL after each part (no value holds a NUL)."""

# A function as ``declare -f`` prints it: its name alone on a line, then its body from
# ``{`` to ``}`` at the line's start.
_FUNCTION = re.compile(r"^([^\s()=$`]+) \(\) \n\{ \n.*?^\}$", re.M | re.S)

# Variables the shell keeps for itself (they change by themselves or describe the shell),
# and runbook's own: never the guide's state.
_OWN = re.compile(
    r"(BASH\w*|COMP_\w+|DIRSTACK|EPOCH\w+|EUID|FUNCNAME|GROUPS|HISTCMD|HOSTNAME|HOSTTYPE|"
    r"LINENO|LINES|COLUMNS|MACHTYPE|OLDPWD|OPTERR|OPTIND|OSTYPE|PIPESTATUS|PPID|PS[0-4]|"
    r"PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|SRANDOM|UID|_|RUNBOOK_IN_\w+|__rb\w*)\Z"
)
_DECLARE = re.compile(r"declare -(\S+) ([A-Za-z_][A-Za-z0-9_]*)(=|\Z)")
# Code that may change the state: cd, assignments, declarations, sourcing, functions. A
# block without any of it (most blocks) costs no look at the shell afterwards.
_MAY_CHANGE = re.compile(
    r"\b(cd|pushd|popd|export|declare|typeset|local|readonly|unset|source|eval|read|"
    r"mapfile|readarray|let|function|getopts|printf\s+-v)\b"
    r"|(^|[\s;&|(])\.\s"
    r"|(^|[\s;&|(`])[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?="
    r"|\(\)\s*\{",
    re.M,
)


def may_change(code: str) -> bool:
    """Whether running ``code`` may change the shell's directory, variables or functions."""
    return _MAY_CHANGE.search(code) is not None


@dataclass(frozen=True)
class Dump:
    """A shell's state as it printed it."""

    cwd: str
    """The working directory."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Each variable's ``declare -p`` line, by name (the shell's own left out)."""
    functions: Mapping[str, str] = field(default_factory=dict)
    """Each function's definition, by name."""


def parse(output: bytes) -> Dump | None:
    """Read what ``DUMP`` printed; None when it is not such output."""
    text = output.decode("utf-8", "surrogateescape")
    head, mark, functions = text.partition("\x01\x00")
    if not mark or "\x00" not in head:
        return None
    cwd, _, rest = head.partition("\x00")
    variables: dict[str, str] = {}
    for entry in rest.split("\x00"):
        entry = entry.strip("\n")
        found = _DECLARE.match(entry)
        if found and not _OWN.match(found.group(2)):
            variables[found.group(2)] = entry
    defined = {
        found.group(1): found.group(0)
        for found in _FUNCTION.finditer(functions)
        if not found.group(1).startswith("__rb") and found.group(1) != "trap"
    }
    return Dump(cwd, variables, defined)


@dataclass(frozen=True)
class State:
    """What the guide changed in one shell, as the journal keeps it."""

    cwd: str
    """The working directory."""
    set: Mapping[str, str] = field(default_factory=dict)
    """Variables set or changed, as ``declare -p`` lines, by name."""
    unset: tuple[str, ...] = ()
    """Variables the shell had at its start that the guide removed."""
    functions: Mapping[str, str] = field(default_factory=dict)
    """Functions defined or changed, by name."""
    secret: Mapping[str, str] = field(default_factory=dict)
    """Variables left out because they hold a secret: by name, the input whose value they
    hold (``""`` when their value only contains one)."""
    exported: tuple[str, ...] = ()
    """Which of the ``secret`` variables were exported."""

    def record(self) -> dict[str, Any]:
        """Return the journal fields of this state."""
        return {
            "cwd": self.cwd,
            "set": dict(self.set),
            "unset": list(self.unset),
            "functions": dict(self.functions),
            "secret": dict(self.secret),
            "exported": list(self.exported),
        }

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> State | None:
        """Read a state back from its journal record; None when it is not one."""
        try:
            return cls(
                cwd=str(record["cwd"]),
                set={str(k): str(v) for k, v in dict(record.get("set") or {}).items()},
                unset=tuple(str(n) for n in record.get("unset") or ()),
                functions={str(k): str(v) for k, v in dict(record.get("functions") or {}).items()},
                secret={str(k): str(v) for k, v in dict(record.get("secret") or {}).items()},
                exported=tuple(str(n) for n in record.get("exported") or ()),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def script(self) -> str:
        """Return the shell code that gives this state (its secrets aside) to a fresh shell."""
        lines = [f"builtin cd -- {shlex.quote(self.cwd)} || builtin return 1"]
        lines += [f"builtin unset -v {shlex.quote(n)}" for n in self.unset]
        # declare -p lines, printed by the shell: code that sets each variable as it was.
        # `-g`, since they run inside the function-like scope of a sourced block.
        lines += [line.replace("declare ", "declare -g ", 1) for line in self.set.values()]
        lines += list(self.functions.values())
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """Say what this state holds, for the operator."""
        parts = [f"working directory {self.cwd}"]
        if self.set:
            parts.append("variables " + ", ".join(sorted(self.set)))
        if self.functions:
            parts.append("functions " + ", ".join(sorted(self.functions)))
        if self.unset:
            parts.append("unset " + ", ".join(sorted(self.unset)))
        return "; ".join(parts)


def changes(start: Dump, now: Dump, secrets: Mapping[str, str]) -> State:
    """Return what differs in ``now`` from the shell as it started, secrets left out:
    ``secrets`` are the secret inputs' values, by input name."""
    kept: dict[str, str] = {}
    secret: dict[str, str] = {}
    exported: list[str] = []
    for name, line in now.variables.items():
        if start.variables.get(name) == line:
            continue
        held = _secret_in(line, secrets)
        if held is None and is_secret(name):
            # A value the guide fetched (TOKEN=$(…)) under a secret's name: not a known
            # input's, and still never written down.
            held = ""
        if held is None:
            kept[name] = line
            continue
        secret[name] = held
        if "x" in _flags(line):
            exported.append(name)
    return State(
        cwd=now.cwd,
        set=kept,
        unset=tuple(n for n in start.variables if n not in now.variables),
        functions={n: f for n, f in now.functions.items() if start.functions.get(n) != f},
        secret=secret,
        exported=tuple(exported),
    )


def _flags(line: str) -> str:
    found = _DECLARE.match(line)
    return found.group(1) if found else ""


def _secret_in(line: str, secrets: Mapping[str, str]) -> str | None:
    """Return the input whose value ``line`` (a ``declare -p`` line) holds, ``""`` when it
    only contains one; None when it holds no secret."""
    # declare -p quotes a value in double quotes, escaping only " $ ` and \.
    text = re.sub(r'\\(["$`\\])', r"\1", line.partition("=")[2])
    value = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else None
    for name, secret in secrets.items():
        if secret and value == secret:
            return name
    if any(secret and (secret in text or secret in line) for secret in secrets.values()):
        return ""
    return None
