"""``set -x`` traces never show a secret.

A block may turn tracing on, and it stays on in the persistent shell. Runbook's own
commands (setting variables, delivering and ending blocks, its ERR trap) must never show
in a trace, and bash's quoting of a secret in a trace ('it'\\''s', $'…', "a\\"b" …) must be
masked like the secret itself. The quoting is checked against what a real bash prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from runbook.redact import Redactor, shell_forms
from runbook.shell import Base64Delivery, Delivery, FileDelivery
from runbook.shell.protocol import Sentinels, block_script, define_lines
from runbook.shell.sentinel import SentinelScanner
from tests.conftest import one_step_guide_of
from tests.test_exec import Workspace, cli_env
from tests.test_session import Captured, sh  # noqa: F401 (sh is a fixture)

HOSTILE = [
    "hunter2 with spaces",
    "it's-a-secret",
    'say "cheese" now',
    "back\\slash \\\\ two",
    "$HOME and ${PATH} $(id)",
    "`uname -a` ticks",
    "glob*?[ab]{c,d}",
    "pässwörd✓漢字",
    "mixed 'single' \"double\" \\ $ ` * ~ # ! =",
    "~tilde-first",
    "#hash-first",
    "trailing backslash\\",
    "s3cr3t-value",
    "s3cr3t-value-and-more",  # the one before is a part of it
]
LOCALES = ["C.UTF-8", "C"]

# Ways a guide's commands show a value while tracing, and bash's own listings of it.
TRACED = r"""
set -x
echo "$S"
x="$S"
printf '%s\n' "$S"
declare -p S
[[ $S == x ]]
[[ x == "$S" ]]
[[ x =~ "$S" ]]
case $S in "$S") : ;; esac
cmd=( "$S" ); echo "${cmd[@]}"
declare -A m=([k]="$S"); declare -p m
q=${S@Q}; echo "$q"
printf '%q\n' "$S"
: "$S"
f() { :; }; f "$S"
eval "z=\$S"
set | grep '^S='
"""


def bash(script: str | bytes, **env: str) -> bytes:
    """Run ``script`` in a plain bash (from stdin); return its output, errors included."""
    data = script.encode() if isinstance(script, str) else script
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-s"],
        input=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        timeout=30,
    )
    return result.stdout


def bash_forms(secret: str, locale: str) -> set[bytes]:
    """Return the text between the quotes of each quoting bash itself gives ``secret``."""
    out = bash(
        "printf '%q\\n' \"$S\"; printf '%s\\n' \"${S@Q}\"; declare -p S\n", S=secret, LC_ALL=locale
    )
    forms = set()
    for line in out.rstrip(b"\n").split(b"\n"):
        word = re.sub(rb"^declare -\S+ S=", b"", line)
        if word[:2] == b"$'" or word[:1] + word[-1:] in (b"''", b'""'):
            word = word[2 if word[:1] == b"$" else 1 : -1]
        forms.add(word)
    return forms


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("secret", HOSTILE)
def test_every_quoting_bash_gives_a_secret_is_masked(secret: str, locale: str) -> None:
    assert bash_forms(secret, locale) <= shell_forms(secret)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_trace_shows_no_secret_in_any_quoting(locale: str) -> None:
    redactor = Redactor(HOSTILE)
    for secret in HOSTILE:
        traced = bash(TRACED, S=secret, LC_ALL=locale)
        assert traced.count(b"\n+ ") > 10, traced  # it did trace
        masked = redactor.redact_bytes(traced)
        for form in shell_forms(secret) | bash_forms(secret, locale):
            assert form not in masked, (form, masked.decode("utf-8", "replace"))


def test_a_short_secret_is_masked_as_it_is_only() -> None:
    # Its quoted forms (such as \a\b) would hide ordinary text too.
    assert shell_forms("a'b") == {b"a'b"}
    assert Redactor(["a'b"]).redact_text("x='a'\\''b' a'b") == "x='a'\\''b' ********"


# -- runbook's own commands ------------------------------------------------------------------


def typed_lines(delivery: Delivery, script: bytes) -> bytes:
    """Return what a session types to deliver ``script``, the value of S and the block."""
    typed: list[bytes] = []

    def exchange(data: bytes, timeout: float) -> int:
        typed.append(data)
        return 0

    delivery.put(block_script(script), exchange)
    return b"".join(typed)


@pytest.mark.parametrize("make", [FileDelivery, Base64Delivery], ids=["file", "base64"])
def test_runbooks_own_lines_leave_no_trace(
    make: Callable[[], Delivery], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    delivery = make()
    delivery.open()
    sentinels = Sentinels()
    setup = sentinels.setup_line(delivery.shell_setup())
    define, payload = define_lines("S", "it's a secret", export=False)
    cleanup = delivery.shell_cleanup()

    def block(script: bytes) -> tuple[bytes, SentinelScanner]:
        line, end = sentinels.block()
        typed = typed_lines(delivery, script)
        if isinstance(delivery, FileDelivery):
            # The file is written just before its block runs: here the shell, typing
            # ahead of time, copies each block's file into place at that moment.
            copy = tmp_path / f"block-{len(list(tmp_path.glob('block-*')))}.sh"
            copy.write_bytes(Path(delivery.path).read_bytes())
            typed = f'command cp -- {copy} "$__rb_file"\n'.encode()
        # This bash prints no prompt: print the end mark as the prompt would.
        return typed + line + b'\nbuiltin printf %s "$__rb_e"\n', end

    # Typed as the session types them: a block turns tracing on, which stays on for the
    # blocks after it, and runbook's lines come between them.
    traced_on, _ = block(b"set -x")
    failing, end = block(b'echo "got $S"; false; echo not-reached')
    after, _ = block(b'echo "after: $-"')
    sync, _ = sentinels.sync_line(0)
    out = bash(
        setup
        + traced_on
        + define
        + payload
        + failing
        + sync  # as after a block cut short, with tracing left on
        + after
        + (cleanup.encode() + b"\n" if cleanup else b"")
    )
    delivery.close()
    text = out.decode()
    _, status, _ = end.take(out)
    assert status == 1  # the block stopped at `false`, with its status
    assert "++ echo 'got it'\\''s a secret'" in text and "++ false" in text
    assert "not-reached" not in text
    assert "__rb" not in text and "builtin" not in text, text
    assert "+ echo 'after: " in text and "x" in text.split("after: ")[-1]  # still tracing


def test_blocks_keep_tracing_statuses_and_err_traps_without_runbooks_lines(
    sh: Captured,  # noqa: F811 (a fixture)
) -> None:
    sh.run("set -x")
    sh.session.define("S", 'it\'s a "secret" \\ $x', secret=True)
    out = sh.run('echo "$S"; declare -p S; printf "%q\\n" "$S"')
    assert b"echo '********'" in out and b'S="********"' in out and out.count(b"********") == 5
    out = sh.run("trap 'echo \"caught $?\"' ERR; (exit 3); echo not-reached")
    assert sh.last.status == 3 and b"caught 3\n" in out and b"not-reached" not in out
    assert b"trap 'echo \"caught $?\"' ERR" in out  # the block's own command is traced
    out = sh.run("f() { return 7; }; f")
    assert sh.last.status == 7 and b"caught 7\n" in out
    sh.run("trap - ERR; trap 'echo x' BOGUS 2>/dev/null")
    assert sh.last.status == 1  # the builtin's status for a bad signal name
    assert b"x" in sh.run('echo "flags: $-"').split(b"flags: ")[-1]  # as the block left it
    timer = threading.Timer(0.3, sh.session.interrupt)
    timer.start()
    sh.run("sleep 5")
    timer.join()
    assert sh.last.outcome == "interrupted"
    assert sh.run("echo after") == b"++ echo after\nafter\n"
    sh.run("set +x")
    assert b"x" not in sh.run('echo "$-"')
    seen = bytes(sh.output) + sh.transcript.getvalue()
    for mark in (b"__rb", b"__R", b"builtin", b"secret"):
        assert mark not in seen, mark


# -- runbook exec ----------------------------------------------------------------------------


class WrittenWorkspace(Workspace):
    """A Workspace (from test_exec) for a one-step guide the test writes."""

    def __init__(self, root: Path, blocks: Sequence[str], info: str = "bash { .run }") -> None:
        self.dir = root
        self.guide = one_step_guide_of(root, blocks, info)
        self.original = self.guide.read_bytes()


SECRET = 'it\'s a "pa$$w0rd" \\ `tick` ✓ ${HOME}'


def test_exec_with_set_x_shows_the_secret_nowhere(tmp_path: Path) -> None:
    ws = WrittenWorkspace(
        tmp_path,
        [
            "set -x",
            'echo "<db-password>"\npw=<db-password>\nprintf \'%s\\n\' "<db-password>"',
            'declare -p pw\nq=${pw@Q}; echo "$q"\nprintf \'%q\\n\' "$pw"\n'
            '[[ $pw == x ]] || [[ x == "$pw" ]] || cmd=( "<db-password>" ); echo "${cmd[@]}"',
            'echo "flags: $-"',
        ],
    )
    run = ws.exec("--yes", env=cli_env(RUNBOOK_SET_DB_PASSWORD=SECRET))
    assert run.code == 0, run.text
    assert "echo '********'" in run.out and 'declare -- pw="********"' in run.out
    assert "flags: " in run.out and "x" in run.out.split("flags: ")[-1].split()[0]
    stored = ws.all_runtime_bytes()
    assert b"echo '********'" in stored  # the transcript has the traces, masked
    for form in shell_forms(SECRET):
        assert form.decode("utf-8", "replace") not in run.text, form
        assert form not in stored, form
    assert "__rb" not in run.text and b"__rb" not in stored
    assert ws.events("run-start")[0]["secret_inputs"] == ["db-password"]
