"""What a code block asks of ``exec``: run it, offer it, or only show it; its options, answers
and inputs. One home for the rules of placeholders and secret names."""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable

from runbook.blocks import CodeBlock
from runbook.inputs import CODE_HINT, PLACEHOLDER_RE, run_as_code, uses
from runbook.model import (
    Action,
    ActionKind,
    Answer,
    Connection,
    Limit,
    Origin,
    Placeholder,
    PromptCommand,
    TabRef,
)
from runbook.shellcommands import SSH_ARG_OPTS

Problem = Callable[[str, str, str], None]
"""Report an error at the block: (message, code, hint)."""

SHELL_LANGS = frozenset(
    {"bash", "sh", "shell", "console", "zsh", "ksh", "shell-session", "sh-session", "terminal"}
)
RUN_OPTIONS = frozenset({"host", "timeout", "title", "linenums", "hl_lines", "id"})
_ANSWER_RE = re.compile(r"^(expect|send)(\d*)$")
# A name is secret when it holds one of these, or when one of its words is a secret word.
_SECRET_RE = re.compile(r"pass(word|wd|phrase)|secret|token|credential", re.I)
_SECRET_WORDS = frozenset({"key", "keys", "private", "pass", "pwd", "pin", "passwd", "password"})
_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_SETTING_RE = re.compile(r"^[\w.-]+\s*[=:]\s")
_ASSIGNMENT_RE = re.compile(r"^[A-Z_][A-Z0-9_]*=\S")
_FILEISH_TITLE_RE = re.compile(r"^[~/.]|^\S+\.\w{1,6}$")
_COMMAND_WORDS = frozenset(
    [
        "sudo",
        "cd",
        "ls",
        "cp",
        "mv",
        "rm",
        "mkdir",
        "rmdir",
        "cat",
        "echo",
        "printf",
        "systemctl",
        "service",
        "apt",
        "apt-get",
        "yum",
        "dnf",
        "mysql",
        "mysqldump",
        "mysqladmin",
        "psql",
        "pg_dump",
        "pg_restore",
        "curl",
        "wget",
        "tar",
        "gzip",
        "gunzip",
        "zcat",
        "scp",
        "rsync",
        "ssh",
        "chown",
        "chmod",
        "ln",
        "docker",
        "kubectl",
        "git",
        "java",
        "export",
        "tail",
        "journalctl",
        "grep",
        "sed",
        "awk",
        "find",
        "touch",
        "unzip",
        "zip",
        "ps",
        "kill",
        "pkill",
        "ufw",
        "certbot",
        "nginx",
        "python",
        "python3",
        "pip",
        "pip3",
        "bash",
        "sh",
        "source",
        ".",
        "openssl",
        "tee",
        "head",
        "less",
        "df",
        "du",
        "free",
        "ping",
        "nc",
        "diff",
        "crontab",
        "usermod",
        "useradd",
        "id",
        "whoami",
        "hostnamectl",
        "timedatectl",
        "reboot",
        "shutdown",
        "dpkg",
        "snap",
        "add-apt-repository",
        "sleep",
        "test",
        "set",
        "unset",
        "env",
        "which",
        "install",
        "make",
        "npm",
        "node",
        "mvn",
        "gradle",
        "sha256sum",
        "md5sum",
        "stat",
        "date",
        "wc",
        "sort",
        "uniq",
        "xargs",
        "read",
        "exit",
    ]
)


def action_of(
    block: CodeBlock,
    origin: Origin,
    tabs: tuple[TabRef, ...],
    admonitions: tuple[str, ...],
    problem: Problem,
    within: tuple[int, ...] = (),
) -> Action:
    """Return the action a code block is (``within`` the containers starting at those
    lines), reporting what is wrong with its options."""
    code, fenced, attrs = block.code, block.fenced, block.attrs
    classes = tuple(value for key, value in attrs if key == "class")
    lang = block.lang
    if lang == "run" and "run" in classes:
        # ```{ .run .bash }: superfences takes the first class as the language
        lang = next((c for c in classes if c != "run"), "")
    kind = _kind(lang, attrs, classes, code, fenced, problem)
    if kind == "shown":
        # Shown blocks never run: no inputs, host or answers to work out.
        return Action("shown", lang, code, origin, fenced, attrs, tabs, admonitions, within=within)
    login = ssh_login(code)
    if login is not None:
        kind = "connect"
    prompt = prompt_commands(code) if login is None else []
    options = dict(attrs)
    timeout = _timeout(options.get("timeout"), problem) if kind == "run" else None
    # Offered blocks may declare answers too: a person still says yes before they run.
    answers = _answers(attrs, problem) if kind in ("run", "suggested") else ()
    commands = "\n".join(c for c, _, _ in prompt) if prompt else code
    placeholders = _placeholders(commands, "".join("\n" + a.send for a in answers), problem)
    return Action(
        kind=kind,
        lang=lang,
        code=code,
        origin=origin,
        fenced=fenced,
        attrs=attrs,
        tabs=tabs,
        admonitions=admonitions,
        within=within,
        host=options.get("host") or "local",
        expects_output=bool(prompt),
        placeholders=placeholders,
        timeout=timeout,
        answers=answers,
        commands=tuple(PromptCommand(c, tuple(out), at) for c, out, at in prompt),
        connection=Connection(login, origin) if login is not None else None,
    )


# Options after which ssh opens no shell the next blocks could run in (a tunnel, a
# background or control command, a query of the configuration).
_SSH_NO_SESSION = frozenset("NfWOGVQ")


def ssh_login(code: str) -> tuple[str, ...] | None:
    """Return the words after ``ssh`` when ``code`` is only an ``ssh [options] [user@]host``
    line (a login the next blocks run in), else None: a remote command, a tunnel (``-N``)
    or anything else on the line makes it an ordinary command."""
    lines = code.strip().split("\n")
    if len(lines) != 1:
        return None
    line = lines[0].strip().removeprefix("$ ")
    if line.lstrip()[:1] not in ("s", "'", '"', "\\"):
        return None  # its first word cannot read "ssh": no need to split it
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "ssh":
        return None
    at = 1
    while at < len(words) and words[at].startswith("-") and len(words[at]) > 1:
        letters = words[at][1:]
        for pos, letter in enumerate(letters):
            if letter in _SSH_NO_SESSION or letter == "-":
                return None
            if letter in SSH_ARG_OPTS:
                at += pos == len(letters) - 1  # its argument is the next word
                break
        at += 1
    return tuple(words[1:]) if at == len(words) - 1 else None


def _kind(
    lang: str,
    attrs: tuple[tuple[str, str], ...],
    classes: tuple[str, ...],
    code: str,
    fenced: bool,
    problem: Problem,
) -> ActionKind:
    if "run" in classes:
        if lang and lang.lower() not in SHELL_LANGS:
            problem(
                f"a {lang} block is marked .run but only shell blocks can run",
                "run-not-shell",
                "remove .run, or make it a bash block",
            )
            return "shown"
        for key, _ in attrs:
            if key == "class" or key in RUN_OPTIONS or _ANSWER_RE.match(key):
                continue
            close = difflib.get_close_matches(key, [*RUN_OPTIONS, "expect", "send"], n=1)
            problem(
                f"unknown .run option {key!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                "unknown-run-option",
                "known options: host, timeout, expect/send (expect2/send2, …), title",
            )
        return "run"
    title = dict(attrs).get("title", "")
    if title and _FILEISH_TITLE_RE.match(title):
        return "shown"  # a file's contents, titled with its path
    if lang.lower() in SHELL_LANGS:
        return "suggested"
    if not lang and _looks_like_commands(code):
        return "suggested"
    return "shown"


def parse_duration(text: str) -> float:
    """Read a time limit (``900``, ``15m``, ``2h``, ``500ms``): positive and finite, or
    ValueError saying what is wrong. The one rule of ``timeout="…"`` and ``--timeout``."""
    match = _DURATION_RE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    seconds = float(match.group(1)) * scale
    if not 0 < seconds < 10**9:
        raise ValueError(f"{text!r} is not a time limit (leave it out for none)")
    return seconds


def _timeout(value: str | None, problem: Problem) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        problem(f"timeout {exc}", "bad-timeout", 'write timeout="900" (seconds) or "15m"')
        return None


def _answers(attrs: tuple[tuple[str, str], ...], problem: Problem) -> tuple[Answer, ...]:
    expects: dict[str, str] = {}
    sends: dict[str, str] = {}
    for key, value in attrs:
        match = _ANSWER_RE.match(key)
        if match:
            (expects if match.group(1) == "expect" else sends)[match.group(2)] = value
    answers = []
    for suffix in sorted(set(expects) | set(sends), key=lambda s: int(s or 1)):
        if suffix not in expects or suffix not in sends:
            have = "expect" if suffix in expects else "send"
            miss = "send" if have == "expect" else "expect"
            problem(
                f"{have}{suffix} has no matching {miss}{suffix}",
                "unpaired-answer",
                f'add {miss}{suffix}="…"',
            )
            continue
        answers.append(Answer(expect=expects[suffix], send=sends[suffix]))
    return tuple(answers)


def prompt_commands(code: str) -> list[tuple[str, list[str], int]]:
    """Split a ``$ `` block into (command, expected output lines, 0-based line); [] if not one.

    ``> `` lines right after a command continue it, as bash's PS2 shows them.
    """
    if "$ " not in code:
        return []
    lines = code.rstrip("\n").split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if not first.lstrip().startswith("$ "):
        return []
    units: list[tuple[str, list[str], int]] = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("$ "):
            units.append((stripped[2:], [], index))
        elif stripped.startswith("> ") and units and not units[-1][1]:
            command, expected, at = units[-1]
            units[-1] = (command + "\n" + stripped[2:], expected, at)
        elif units:
            units[-1][1].append(line)
    return units


def _looks_like_commands(code: str) -> bool:
    first = next((ln.strip() for ln in code.split("\n") if ln.strip()), "")
    if not first or first.startswith("#!"):
        return bool(first)
    if first.startswith("$ "):
        return True
    if _SETTING_RE.match(first) or first.startswith(("<", "{", "[", "-", "#")):
        return False
    word = first.split()[0]
    if word.startswith(("./", "/", "~")):
        # A path runs as a program when it has arguments or looks like one; a block that
        # only lists files (config locations, say) is shown.
        return " " in first or word.endswith(".sh") or "/bin/" in word
    return word in _COMMAND_WORDS or bool(_ASSIGNMENT_RE.match(first))


def _placeholders(code: str, sends: str, problem: Problem) -> tuple[Placeholder, ...]:
    """Return the inputs of a block's ``code`` (and of the answers it ``sends``), each with
    the limits of the contexts it stands in; report uses the shell would run as code."""
    if "<" not in code + sends:
        return ()
    names: dict[str, None] = {}
    for match in PLACEHOLDER_RE.finditer(code + "\n" + sends):
        if match.group(1).lower() not in _HTML_TAGS:
            names.setdefault(match.group(1), None)
    limits: dict[str, dict[Limit, None]] = {name: {} for name in names}
    reported: set[str] = set()
    for use in uses(code, names):
        if use.limit is not None:
            limits[use.name].setdefault(use.limit, None)
        if use.code and use.name not in reported:
            reported.add(use.name)
            problem(
                run_as_code(use),
                "value-run-as-code",
                CODE_HINT.replace("<name>", f"<{use.name}>"),
            )
    return tuple(Placeholder(n, is_secret(n), tuple(limits[n])) for n in names)


_HTML_TAGS = frozenset(
    [
        "a",
        "b",
        "i",
        "p",
        "br",
        "hr",
        "em",
        "div",
        "span",
        "code",
        "pre",
        "strong",
        "small",
        "sup",
        "sub",
        "li",
        "ul",
        "ol",
        "table",
        "tr",
        "td",
        "th",
    ]
)


def is_secret(name: str) -> bool:
    """Tell whether a placeholder names a secret (password, token, key …)."""
    if _SECRET_RE.search(name):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD_RE.findall(name))
