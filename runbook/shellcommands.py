"""What a simple command does with its words: which commands read a word again as
arithmetic or as a variable's name, and which run it as code.

``runbook.shellcontext`` reads the quoting and hands each finished simple command here, as
its words and the placeholder uses in them; the uses are narrowed in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runbook.model import Limit

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox", "fish"})
"""Programs that run a script given with ``-c``, or read one from their input."""
DECLARE = frozenset({"declare", "typeset", "local", "readonly", "export"})
_ARITH_OPS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
SSH_ARG_OPTS = frozenset("BbcDEeFIiJLlmOopQRSWw")
"""ssh options that take an argument (the next word, or the rest of theirs)."""
_RESERVED = frozenset({"!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done"})
_RESERVED |= frozenset({"while", "until", "time", "case", "esac", "in"})
ASSIGNMENT_RE = re.compile(r"[A-Za-z_]\w*(\[[^]]*\])?\+?=")
"""A word that assigns a variable (``a=1``, ``a[i]=1``, ``a+=1``)."""


@dataclass(frozen=True)
class Use:
    """One placeholder where it stands."""

    name: str
    """The placeholder's name."""
    limit: Limit | None
    """What values its context holds as data; None for any text."""
    code: str = ""
    """When the shell runs its text as code (``eval`` …), that context; else empty."""


@dataclass
class Word:
    """A word of a simple command as written, with the placeholder uses inside it."""

    text: list[str] = field(default_factory=list)
    uses: list[int] = field(default_factory=list)

    @property
    def raw(self) -> str:
        return "".join(self.text)


def command_name(words: list[Word]) -> str:
    """Return the simple command's name so far (after assignments and reserved words)."""
    for w in words:
        raw = w.raw
        if raw in _RESERVED or ASSIGNMENT_RE.match(raw):
            continue
        return raw.rsplit("/", 1)[-1]
    return ""


class Commands:
    """Narrow the uses in each simple command by what the command does with its words."""

    def __init__(self, uses: list[Use], assoc: set[str]) -> None:
        self.uses = uses
        """Every use found so far (shared with the scanner, changed in place)."""
        self.assoc = assoc
        """Arrays declared associative (``declare -A``), whose subscripts are text."""

    def restrict(self, index: int, limit: Limit | None = None, code: str = "") -> None:
        """Narrow a use found earlier: its command turned out to evaluate it."""
        old = self.uses[index]
        self.uses[index] = Use(old.name, limit or old.limit, code or old.code)

    def code_for(self, words: list[Word]) -> str:
        """Return which command would run a here-document as code, or empty."""
        raws = [w.raw.rsplit("/", 1)[-1] for w in words]
        for pos, raw in enumerate(raws):
            if raw in SHELLS and not _has_c(words[pos:]):
                return f"a here-document read by {raw}"
        if raws and raws[0] == "ssh" and not self.ssh_command(raws):
            return "a here-document sent to ssh"
        if raws and raws[0] in ("sudo", "su") and any(r in ("-s", "-i", "-", "-l") for r in raws):
            return f"a here-document read by the shell of {raws[0]}"
        return ""

    @staticmethod
    def ssh_command(raws: list[str]) -> int:
        """Return where the remote command starts in an ``ssh`` command's words, or 0."""
        at = 1
        while at < len(raws) and raws[at].startswith("-"):
            opt = raws[at]
            at += 2 if len(opt) == 2 and opt[1] in SSH_ARG_OPTS else 1
        return at + 1 if at + 1 < len(raws) else 0

    def command_end(self, words: list[Word]) -> None:
        """Narrow the uses in a finished simple command by what the command does."""
        if not words:
            return
        names = [w.raw for w in words]
        skip = 0
        while skip < len(names) and (names[skip] in _RESERVED or ASSIGNMENT_RE.match(names[skip])):
            skip += 1
        args = words[skip:]
        if not args:
            return
        cmd = args[0].raw.rsplit("/", 1)[-1]
        if cmd == "[[":
            self._test(args[1:])
        elif cmd == "let":
            for w in args[1:]:
                self._limit_word(w, Limit("integer", "let"))
        elif cmd == "eval":
            self._code(args[1:], "eval")
        elif cmd in ("[", "test"):
            self._names_after(args, "-v", f"{cmd} -v")
        else:
            self._arguments(cmd, args)
        self._wrappers(args)

    def _arguments(self, cmd: str, args: list[Word]) -> None:
        """Narrow uses by the builtins that take a variable's name as an argument."""
        if cmd == "printf":
            self._names_after(args, "-v", "printf -v")
        elif cmd in ("read", "mapfile", "readarray"):
            self._read_names(cmd, args[1:])
        elif cmd in DECLARE or cmd == "unset":
            flags = "".join(w.raw[1:] for w in args[1:] if w.raw.startswith("-") and not w.uses)
            for w in args[1:]:
                if w.raw.startswith("-") and not w.uses:
                    continue
                name, eq, _ = w.raw.partition("=")
                for k in w.uses:
                    at = w.raw.find(f"<{self.uses[k].name}>")
                    if eq and at > len(name):
                        if "i" in flags:
                            self._narrow(k, Limit("integer", f"{cmd} -i"))
                        elif "n" in flags:
                            self._narrow(k, Limit("name", f"{cmd} -n"))
                    elif (
                        "[" in name[:at] and name[:at].split("[")[0].strip("'\"") not in self.assoc
                    ):
                        self._narrow(k, Limit("integer", "an array subscript"))
                    else:
                        self._narrow(k, Limit("name", cmd))

    def _read_names(self, cmd: str, args: list[Word]) -> None:
        """The words ``read`` and ``mapfile`` assign to are variable names."""
        takes = "dinNptu" if cmd == "read" else "dnOsuCc"
        pending = ""
        for w in args:
            if pending:
                if pending == "a":
                    self._limit_word(w, Limit("name", f"{cmd} -a"))
                pending = ""
                continue
            if w.raw.startswith("-") and len(w.raw) > 1 and not w.uses:
                if w.raw[-1] in takes or (w.raw[-1] == "a" and cmd == "read"):
                    pending = w.raw[-1]
                continue
            self._limit_word(w, Limit("name", cmd))

    def _wrappers(self, args: list[Word]) -> None:
        """Mark as code the script of ``sh -c``, ``su -c`` and the command ``ssh`` sends."""
        raws = [w.raw.rsplit("/", 1)[-1] for w in args]
        if raws[0] == "ssh":
            start = self.ssh_command(raws)
            if start:
                self._code(args[start:], "the command ssh sends")
            return
        for pos, raw in enumerate(raws):
            if raw not in SHELLS and raw != "su":
                continue
            for at in range(pos + 1, len(raws)):
                opt = raws[at]
                if opt.startswith("--command="):
                    self._code([args[at]], f"{raw} -c")
                elif opt == "--command" or re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", opt):
                    self._code(args[at + 1 : at + 2], f"{raw} -c")
                else:
                    continue
                return

    def _test(self, args: list[Word]) -> None:
        """Narrow the operands of ``[[ … ]]``'s arithmetic comparisons and ``-v``."""
        for pos, w in enumerate(args):
            if w.raw in _ARITH_OPS:
                for side in (pos - 1, pos + 1):
                    if 0 <= side < len(args):
                        self._limit_word(args[side], Limit("integer", f"[[ … {w.raw} … ]]"))
        self._names_after(args, "-v", "[[ -v ]]")

    def _names_after(self, args: list[Word], flag: str, label: str) -> None:
        for pos, w in enumerate(args[:-1]):
            if w.raw == flag:
                self._limit_word(args[pos + 1], Limit("name", label))

    def _limit_word(self, word: Word, limit: Limit) -> None:
        for k in word.uses:
            self._narrow(k, limit)

    def _narrow(self, index: int, limit: Limit) -> None:
        """Give a use its limit, unless its own context already set a stricter one."""
        if self.uses[index].limit is None:
            self.restrict(index, limit)

    def _code(self, words: list[Word], label: str) -> None:
        for w in words:
            for k in w.uses:
                self.restrict(k, code=label)


def _has_c(words: list[Word]) -> bool:
    return any(re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", w.raw) for w in words[1:])
