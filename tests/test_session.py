"""Persistent shell sessions, exercised against a real bash."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pty
import re
import shutil
import signal
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.errors import UsageError
from runbook.redact import Redactor
from runbook.shell import (
    LOCAL_SHELL,
    Answer,
    Base64Delivery,
    FileDelivery,
    Operator,
    Probe,
    PromptHeuristic,
    Session,
    SessionError,
    Transport,
    TtyReadDetector,
    ssh_transport,
)
from runbook.shell.protocol import chunks as _chunks
from runbook.shell.sentinel import EchoStripper as _EchoStripper
from runbook.shell.sentinel import SentinelScanner as _SentinelScanner

DELIVERIES = {
    "file": Transport("local", LOCAL_SHELL, FileDelivery, TtyReadDetector()),
    "base64": Transport("local", LOCAL_SHELL, Base64Delivery, TtyReadDetector()),
}


class Captured:
    """A session with its output collected, as the runner would wire it."""

    def __init__(self, session: Session, transcript: io.BytesIO) -> None:
        self.session = session
        self.transcript = transcript
        self.output = bytearray()

    def run(self, script: str, *, timeout: float | None = 10, **kwargs: object) -> bytes:
        """Run ``script``, return its output, keep the result in ``last``."""
        start = len(self.output)
        self.last = self.session.run(
            script,
            timeout=timeout,
            on_output=self.output.extend,
            **kwargs,  # type: ignore[arg-type]
        )
        return bytes(self.output[start:])


@pytest.fixture(params=sorted(DELIVERIES))
def sh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Captured]:
    transcript = io.BytesIO()
    session = Session(
        transport=DELIVERIES[request.param],
        cwd=tmp_path,
        redactor=Redactor(),
        transcript=transcript,
        grace=0.3,
    )
    session.start()
    try:
        yield Captured(session, transcript)
    finally:
        session.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Captured]:
    transcript = io.BytesIO()
    with Session(cwd=tmp_path, transcript=transcript, grace=0.3) as session:
        yield Captured(session, transcript)


# --------------------------------------------------------------------------- state


def test_state_carries_from_block_to_block(sh: Captured, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    sh.run('cd sub; GREETING=hello; greet() { echo "$GREETING $1"; }; declare -A M=([k]=v)')
    assert sh.last.outcome == "ok"
    assert (
        sh.run('pwd; greet world; echo "${M[k]}"') == f"{tmp_path}/sub\nhello world\nv\n".encode()
    )


@pytest.mark.parametrize(
    ("script", "status"),
    [
        ("true", 0),
        ("false", 1),
        ("sh -c 'exit 2'", 2),
        ("(exit 42)", 42),
        ("no-such-command-here 2>/dev/null", 127),
        ("sh -c 'kill -INT $$'", 130),
        ("return 7", 7),
    ],
)
def test_exact_exit_status(sh: Captured, script: str, status: int) -> None:
    sh.run(script)
    assert sh.last.status == status
    assert sh.last.outcome == ("ok" if status == 0 else "failed")
    assert sh.session.alive


@pytest.mark.parametrize(
    ("script", "status", "tail"),
    [
        ("printf '%s\\n' \"${PS1@P}\"; false; echo after", 1, ""),
        ("printf '%s\\n' \"${PS1@P}\"; echo after", 0, "after\n"),
        ("printf '%s' \"${PS1@P}\"; sleep 0.5; echo after", 0, "after\n"),
        ("for i in 1 2; do printf '%s\\n' \"${PS1@P}\"; done; (exit 3)", 3, ""),
    ],
)
def test_output_that_prints_the_prompt_neither_ends_the_block_nor_fakes_its_status(
    sh: Captured, script: str, status: int, tail: str
) -> None:
    out = sh.run(script)
    assert sh.last.status == status, out
    assert out.decode().endswith(tail)
    assert sh.run("echo next") == b"next\n" and sh.last.status == 0


def test_a_prompt_printed_before_a_read_is_no_success(sh: Captured) -> None:
    # bash reading the terminal after a prompt is what ends a cut-short line; here it is
    # the block's own `read` after output imitating the prompt with status 0.
    sh.run("printf '%s' \"${PS1@P}\"; read -r x; echo not-here", timeout=5)
    assert sh.last.outcome != "ok"
    assert sh.run("echo next") == b"next\n" and sh.last.status == 0


@pytest.mark.parametrize(
    "script",
    [
        "set -o emacs",
        "set -o vi",
        "set -x; set -o vi",
        "readonly __rb_e",
        "readonly __rb_line",
        "readonly __rb_q",
        "readonly __rb_x",
        "readonly __rb_s",
        "readonly __rb_err_user",
        "enable -n printf",
        "exec 10>&- 11>&-",
        "exec 10>/dev/null",
        "exec 11>/dev/null",
        "alias __rb_before=true __rb_after=true builtin=false",
    ],
)
def test_a_block_that_breaks_the_shell_for_runbook_is_followed_by_working_blocks(
    sh: Captured, script: str
) -> None:
    # Line editing hides bash's prompt after a sourced `set -o emacs`; a read-only variable
    # of runbook's has bash refuse its lines. Neither may leave later blocks waiting for
    # their timeout: the line editing goes off, a shell that refuses a check is replaced.
    # The block after may be refused (then it fails, with bash's word for why), never more.
    started = time.monotonic()
    sh.run(script, timeout=20)
    out = sh.run("echo after; false; echo no", timeout=20)
    assert sh.last.outcome == "failed" and b"no\n" not in out
    if b"after\n" not in out:
        assert b"readonly variable" in out
        out = sh.run("echo after; false; echo no", timeout=20)
    assert b"after\n" in out and b"no\n" not in out
    assert sh.last.outcome == "failed" and sh.last.status == 1
    assert b"third\n" in sh.run("echo third", timeout=20) and sh.last.status == 0
    assert time.monotonic() - started < 10
    assert b"__R" not in bytes(sh.output).replace(b"__rb_", b"")


@pytest.mark.parametrize(
    ("script", "output", "status"),
    [
        ("echo a; false; echo b", "a\n", 1),
        ("f() { echo in-f; false; echo rest-of-f; }; f; echo after", "in-f\n", 1),
        ("(echo sub; sh -c 'exit 3'; echo rest); echo after", "sub\n", 3),
        ("{ false; echo left; } | cat; echo pipeline-ok", "pipeline-ok\n", 0),
        ("false | true; echo only-last-counts", "only-last-counts\n", 0),
        ("if false; then :; fi; false || echo or; ! true; echo end", "or\nend\n", 0),
        ("true && false; echo not-here", "", 1),
        ("cat <<EOF\nheredoc\nEOF\nfalse\necho no", "heredoc\n", 1),
        ("x=$(false; echo partial); echo not-here", "", 1),
        ("for i in 1 2 3; do echo $i; [ $i -lt 2 ]; done; echo no", "1\n2\n", 1),
    ],
)
def test_block_stops_at_first_failure(sh: Captured, script: str, output: str, status: int) -> None:
    assert sh.run(script) == output.encode()
    assert sh.last.status == status
    assert sh.session.alive


def test_effects_before_a_failure_persist(sh: Captured, tmp_path: Path) -> None:
    sh.run("cd /; KEPT=yes; false; LOST=yes")
    assert sh.last.status == 1
    assert sh.run('echo "$PWD ${KEPT-} ${LOST-unset}"') == b"/ yes unset\n"


def test_set_e_in_a_block_kills_only_that_shell(sh: Captured, tmp_path: Path) -> None:
    sh.run("cd /; set -e; false")
    assert sh.last.outcome == "shell-died"
    assert sh.last.restarted
    assert sh.run("echo fresh; pwd") == f"fresh\n{tmp_path}\n".encode()


# --------------------------------------------------------------------------- delivery


def _checksum(text: str) -> bytes:
    return hashlib.sha256(text.encode()).hexdigest().encode()


@pytest.mark.parametrize(
    "body",
    [
        "plain line",
        "a" * 6000,
        "{{ .Names }} {% raw %} ${#A[@]} {#",
        "quotes ' \" ` $(not run) \\ ; & | < >",
        "ünïcödé ✓",
        "trailing spaces   ",
    ],
    ids=["plain", "6000", "jinja", "quotes", "unicode", "spaces"],
)
def test_block_text_arrives_intact(sh: Captured, body: str) -> None:
    script = f"cat <<'RB_END' | sha256sum\n{body}\nRB_END"
    assert sh.run(script).split()[0] == _checksum(body + "\n")


def test_block_without_trailing_newline(sh: Captured) -> None:
    assert sh.run("echo one\nprintf two") == b"one\ntwo"
    assert sh.run("echo next") == b"next\n"


def test_large_block(sh: Captured) -> None:
    lines = [f"V{i}={'x' * 90}" for i in range(1500)]
    assert sh.run("\n".join(lines) + "\necho ${#V1499}") == b"90\n"


def test_base64_delivery_writes_no_local_file(tmp_path: Path) -> None:
    transport = DELIVERIES["base64"]
    with Session(transport=transport, cwd=tmp_path, env={"TMPDIR": str(tmp_path)}) as session:
        out = bytearray()
        session.run(
            'echo "$__rb_file"; stat -c %a "${__rb_file%/*}"', timeout=10, on_output=out.extend
        )
        path, mode = out.decode().split()
        # The directory was made by the shell (mktemp), not by this process.
        assert path.startswith(f"{tmp_path}/runbook.")
        assert mode == "700"
    assert not Path(path).parent.exists()


def test_file_delivery_directory_is_private_and_removed(local: Captured) -> None:
    path = Path(local.run('echo "$__rb_file"').decode().strip())
    assert path.parent.stat().st_mode & 0o777 == 0o700
    local.session.close()
    assert not path.parent.exists()


# --------------------------------------------------------------------------- output


def test_output_has_no_echo_prompt_or_escapes(sh: Captured) -> None:
    for script in ["echo hello", "printf 'x'", "true", "echo err >&2"]:
        sh.run(script)
    everything = bytes(sh.output)
    assert everything == b"hello\nx" + b"err\n"
    assert b"__RB" not in everything and b"__rb" not in everything
    assert b"\x1b[?2004" not in everything
    assert sh.transcript.getvalue() == everything


def test_binary_output_is_byte_exact(sh: Captured, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 40 + b"\xff\xfe invalid \xc3\x28 utf-8 \r\n\n\r"
    (tmp_path / "blob").write_bytes(blob)
    assert sh.run("cat blob") == blob
    assert sh.transcript.getvalue() == blob


def test_output_streams_in_chunks(local: Captured) -> None:
    chunks: list[tuple[float, bytes]] = []
    result = local.session.run(
        "echo first; sleep 0.3; echo second",
        timeout=5,
        on_output=lambda b: chunks.append((time.monotonic(), b)),
    )
    assert result.outcome == "ok"
    assert b"".join(c for _, c in chunks) == b"first\nsecond\n"
    assert chunks[-1][0] - chunks[0][0] > 0.2


def _vm(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert match is not None
    return int(match.group(1)) * 1024


def test_large_output_keeps_memory_flat(local: Captured) -> None:
    local.session.transcript = None
    seen = 0

    def count(chunk: bytes) -> None:
        nonlocal seen
        seen += len(chunk)

    local.session.run("true", timeout=5)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _vm("VmRSS")
    result = local.session.run(
        "head -c 20000000 /dev/zero | tr '\\0' a; echo", timeout=60, on_output=count
    )
    assert result.outcome == "ok"
    assert seen == 20_000_001
    assert result.output_bytes == seen
    assert _vm("VmHWM") - before < 8 * 1024 * 1024


def test_secrets_are_masked_in_output_and_transcript(local: Captured) -> None:
    local.session.redactor.add("s3cr3t-value")
    out = local.run("echo 'token=s3cr3t-value'; printf 's3cr3t'; printf '%s\\n' '-value'")
    assert out == b"token=********\n********\n"
    assert b"s3cr3t" not in local.transcript.getvalue()
    assert local.last.last_line == "********"


# --------------------------------------------------------------------------- define


HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "\\",
    "a\\nb \\$HOME ${HOME} $HOME",
    " leading and trailing ",
    "!! !$ ^x^y",
    "",
    "ünïcödé ✓ 漢字",
    "x" * 5000,
    ("$(touch PWNED);é`" * 400)[:5111],
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_define_delivers_hostile_values_as_data(sh: Captured, tmp_path: Path, value: str) -> None:
    sh.session.define("VALUE", value)
    assert sh.run('printf %s "$VALUE" | sha256sum').split()[0] == _checksum(value)
    assert not (tmp_path / "PWNED").exists()
    if len(value) > 3:
        assert value.encode() not in sh.transcript.getvalue()


def test_define_keeps_the_value_out_of_the_transcript(local: Captured) -> None:
    local.session.define("PASSWORD", "hunter2-canary", secret=True)
    local.run('echo "$PASSWORD"')
    assert local.output == b"********\n"
    assert b"hunter2" not in local.transcript.getvalue()


def test_define_export_reaches_child_processes(local: Captured) -> None:
    local.session.define("PLAIN", "p")
    local.session.define("EXPORTED", "e", export=True)
    assert local.run("sh -c 'echo \"[$PLAIN][$EXPORTED]\"'") == b"[][e]\n"


@pytest.mark.parametrize("bad", ["\n", "a\tb", "\x01touch PWNED", "\x7f", "\x1b[2J", "\x85"])
def test_define_rejects_control_characters(local: Captured, bad: str) -> None:
    with pytest.raises(UsageError, match="DB_HOST"):
        local.session.define("DB_HOST", f"x{bad}y")


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "$(x)", "__rb_file"])
def test_define_rejects_bad_names(local: Captured, name: str) -> None:
    with pytest.raises(UsageError):
        local.session.define(name, "v")


def test_define_of_readonly_variable_fails_cleanly(local: Captured) -> None:
    local.run("readonly FIXED=1")
    with pytest.raises(UsageError, match="FIXED"):
        local.session.define("FIXED", "2")
    assert local.run("echo $FIXED") == b"1\n"


# --------------------------------------------------------------------------- waiting


@pytest.mark.parametrize(
    ("script", "last_line"),
    [
        ("read -p 'Your name: ' n", "Your name:"),
        ("echo before; cat", "before"),
        ("printf 'Password: '; read -rs pw", "Password:"),
        ("sh -c 'printf \"Continue? [y/N] \"; head -n1'", "Continue? [y/N]"),
    ],
)
def test_waiting_for_input_fails_fast(sh: Captured, script: str, last_line: str) -> None:
    sh.run("MARK=kept")
    sh.run(script)
    assert sh.last.outcome == "needs-input"
    assert sh.last.status is None
    assert sh.last.last_line == last_line
    assert sh.last.duration < 5
    assert sh.run("echo $MARK") == b"kept\n"


def test_slow_command_is_not_waiting(local: Captured) -> None:
    assert local.run("sleep 1.2; echo done") == b"done\n"
    assert local.last.outcome == "ok"


def test_answers_are_typed_in_order_once(local: Captured) -> None:
    script = 'read -p "User: " u; read -p "Password: " p; echo "$u/$p"'
    answers = [Answer("User:", "admin"), Answer("Password:", "pa55-word", secret=True)]
    out = local.run(script, answers=answers)
    assert local.last.outcome == "ok"
    assert local.last.answered == ("User:", "Password:")
    assert out.endswith(b"admin/********\n")
    assert b"pa55-word" not in local.transcript.getvalue()


def test_an_answer_is_used_at_most_once(local: Captured) -> None:
    local.run('read -p "Password: " a; read -p "Password: " b', answers=[Answer("Password:", "x")])
    assert local.last.outcome == "needs-input"
    assert local.last.answered == ("Password:",)


def test_answer_for_a_program_reading_the_terminal(local: Captured) -> None:
    script = 'python3 -c \'import getpass; print("got", len(getpass.getpass("DB password: ")))\''
    out = local.run(script, answers=[Answer("DB password:", "abcdef", secret=True)])
    assert local.last.outcome == "ok", out
    assert out.endswith(b"got 6\n")


def test_operator_takes_over_from_a_pipe(local: Captured) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"alice\n")
    handed: list[str] = []
    try:
        out = local.run(
            "read -p 'Name: ' n; echo \"hi $n\"",
            operator=Operator(read_end, on_handover=handed.append),
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert local.last.outcome == "ok"
    assert local.last.handed_over
    assert handed == ["Name:"]
    assert out.endswith(b"hi alice\n")


def test_operator_terminal_is_raw_then_restored(local: Captured) -> None:
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    modes: list[int] = []

    def on_handover(_: str) -> None:
        modes.append(termios.tcgetattr(slave)[3])
        os.write(master, b"42\r")

    try:
        out = local.run(
            "read -p 'Number? ' n; echo \"n=$n\"",
            operator=Operator(slave, on_handover=on_handover),
        )
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    assert out.endswith(b"n=42\n")
    assert not modes[0] & termios.ICANON and not modes[0] & termios.ECHO
    assert after == before


def test_operator_input_ending_stops_the_command(local: Captured) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        local.run("read -p 'Name: ' n", operator=Operator(read_end))
    finally:
        os.close(read_end)
    assert local.last.outcome == "needs-input"


# --------------------------------------------------------------------------- stopping


def test_timeout_stops_the_command_not_the_shell(sh: Captured) -> None:
    sh.run("cd /tmp; KEEP=1")
    started = time.monotonic()
    sh.run("echo started; sleep 30; echo never", timeout=0.3)
    assert sh.last.outcome == "timeout"
    assert sh.last.status is None
    assert time.monotonic() - started < 3
    assert sh.run("echo $PWD $KEEP") == b"/tmp 1\n"


@pytest.mark.parametrize(
    "script",
    [
        "bash -c 'trap \"\" INT; sleep 30'",
        "while :; do :; done",
        "sleep 30 || true; sleep 30 || true; echo survived",
    ],
    ids=["ignores-sigint", "builtin-loop", "conditional"],
)
def test_timeout_escalates(local: Captured, script: str) -> None:
    started = time.monotonic()
    out = local.run(script, timeout=0.2)
    assert local.last.outcome == "timeout"
    assert b"survived" not in out
    assert time.monotonic() - started < 5
    assert local.run("echo alive") == b"alive\n"


def test_interrupt_from_a_signal_handler(local: Captured) -> None:
    previous = signal.signal(signal.SIGALRM, lambda *_: local.session.interrupt())
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        local.run("sleep 30", timeout=None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert local.last.outcome == "interrupted"
    assert local.last.duration < 3
    assert local.run("echo ok") == b"ok\n"


def test_interrupt_from_another_thread(sh: Captured) -> None:
    timer = threading.Timer(0.3, sh.session.interrupt)
    timer.start()
    sh.run("sleep 30; echo never", timeout=None)
    timer.join()
    assert sh.last.outcome == "interrupted"
    assert sh.run("echo ok") == b"ok\n"


def test_interrupt_outside_a_block_is_harmless(local: Captured) -> None:
    local.session.interrupt()
    assert local.run("echo fine") == b"fine\n"


# --------------------------------------------------------------------------- death and close


def test_exit_in_a_block_restarts_the_shell(sh: Captured, tmp_path: Path) -> None:
    sh.session.define("KEPT_VALUE", "v1")
    sh.run("cd /; echo bye; exit 3")
    assert sh.last.outcome == "shell-died"
    assert sh.last.status == 3
    assert sh.last.last_line == "bye"
    assert sh.last.restarted
    assert sh.run('echo "$PWD $KEPT_VALUE"') == f"{tmp_path} v1\n".encode()
    assert sh.session.restarts == 1


def test_without_restart_the_caller_starts_again(tmp_path: Path) -> None:
    session = Session(cwd=tmp_path, restart=False)
    try:
        result = session.run("exit 4", timeout=5)
        assert result.outcome == "shell-died"
        assert result.status == 4
        assert not result.restarted
        with pytest.raises(SessionError):
            session.run("true", timeout=5)
        session.start()
        assert session.run("true", timeout=5).ok
    finally:
        session.close()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_close_ends_the_shell_and_leaves_its_background_jobs(sh: Captured) -> None:
    """As after typing exit: the shell ends, what a block started in the background runs on."""
    out = sh.run("sleep 1000 & echo $!; nohup sleep 1004 >/dev/null 2>&1 & echo $!")
    jobs = [int(n) for n in out.split()[-2:]]
    shell = sh.session.pid
    assert shell is not None
    try:
        sh.session.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not _gone(shell):
            time.sleep(0.02)
        assert _gone(shell)
        assert not any(_gone(pid) for pid in jobs)
    finally:
        for pid in jobs:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def test_a_blocks_own_err_trap_runs_and_the_block_still_stops(sh: Captured) -> None:
    out = sh.run("trap 'echo \"caught $?\"' ERR; (exit 3); echo should-not-run")
    assert out == b"caught 3\n" and sh.last.status == 3
    out = sh.run("false; echo no")  # the handler stays, as in a terminal
    assert out == b"caught 1\n" and sh.last.status == 1
    sh.run("trap - ERR; trap 'echo bye' EXIT; trap -p EXIT")
    out = sh.run("(exit 5); echo no")
    assert out == b"" and sh.last.status == 5


def test_a_block_may_redirect_the_shells_streams(sh: Captured, tmp_path: Path) -> None:
    out = sh.run("exec 2>>errors.log; echo to-err >&2; echo out")
    assert sh.last.outcome == "ok" and out == b"out\n"
    assert (tmp_path / "errors.log").read_text() == "to-err\n"  # nothing of runbook's own
    sh.run("exec >/dev/null; (exit 4)")
    assert sh.last.status == 4
    assert sh.run("echo back") == b"back\n"  # the next block has the terminal again


def test_terminal_modes_a_block_changes_are_put_back(local: Captured) -> None:
    local.run("stty -icanon -echo intr ^T")
    assert local.last.outcome == "ok"
    out = local.run("stty -a").decode()
    assert " icanon" in out and " echo " in out and "intr = ^C" in out


@pytest.mark.parametrize(
    "code",
    [
        "exec bash --norc --noprofile",
        # The very command line the session started: nothing in /proc tells them apart.
        f"exec {shutil.which('bash')} --norc --noprofile --noediting -i",
        "exec sleep 30",  # not even a prompt: quiet, like a slow command
    ],
)
def test_a_block_that_replaces_its_shell_ends_it_never_waits(local: Captured, code: str) -> None:
    started = time.monotonic()
    local.run(code, timeout=20)
    assert local.last.outcome == "shell-replaced"  # a failed block, not "waiting for input"
    assert local.last.status is None
    assert time.monotonic() - started < 5
    assert local.run("echo fresh") == b"fresh\n" and local.last.restarted is False


def test_a_block_that_replaces_its_shell_is_found_out_past_a_subshell(local: Captured) -> None:
    local.run("(sleep 30; true) &")  # holds a copy of what closes on exec
    started = time.monotonic()
    local.run("exec sleep 30", timeout=20)
    assert local.last.outcome == "shell-replaced"
    assert time.monotonic() - started < 5


def test_the_watch_is_no_job_of_the_blocks(local: Captured) -> None:
    # `jobs`, `wait` and a block's own coprocess see nothing of the watch.
    out = local.run('jobs; wait; coproc cat; echo hi >&"${COPROC[1]}"; head -n1 <&"${COPROC[0]}"')
    assert out == b"hi\n" and local.last.outcome == "ok"
    assert local.run("printf '__R%s0123456789abcdef:0;\\n' X") == b"__RX0123456789abcdef:0;\n"


def test_shell_dying_with_a_background_job_is_noticed(local: Captured) -> None:
    local.run("sleep 1000 &")
    started = time.monotonic()
    local.run("exit 5")
    assert local.last.outcome == "shell-died"
    assert local.last.status == 5
    assert time.monotonic() - started < 3


def test_close_is_idempotent_and_context_manager_works(tmp_path: Path) -> None:
    with Session(cwd=tmp_path) as session:
        assert session.alive
    assert not session.alive
    session.close()


def test_a_missing_shell_is_a_session_error(tmp_path: Path) -> None:
    transport = Transport("local", ("/nonexistent/bash", "-i"), FileDelivery, TtyReadDetector())
    with pytest.raises(SessionError):
        Session(transport=transport, cwd=tmp_path).start()


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"Enter password: ", True),
        (b"Continue? ", True),
        (b"mysql> ", True),
        (b"Do you want to continue? [Y/n] ", True),
        (b"user@host:~$ ", True),
        (b"Downloading 42%", False),
        (b"done\n", False),
        (b"Password:\n", False),
        (b"", False),
    ],
)
def test_prompt_heuristic(tail: bytes, expected: bool) -> None:
    probe = Probe(fd=-1, shell_pid=-1, tty=None, quiet=2.0, tail=tail, expects=())
    assert PromptHeuristic(quiet_for=1.0).waiting(probe) is expected
    assert not PromptHeuristic(quiet_for=5.0).waiting(probe)


def test_prompt_heuristic_knows_declared_answers() -> None:
    probe = Probe(-1, -1, None, 2.0, b"Type the magic word", (b"magic word",))
    assert PromptHeuristic().waiting(probe)


def test_prompt_heuristic_detects_waiting_in_a_session(tmp_path: Path) -> None:
    transport = Transport("local", LOCAL_SHELL, Base64Delivery, PromptHeuristic(quiet_for=0.3))
    with Session(transport=transport, cwd=tmp_path, grace=0.3) as session:
        # Only a guess: never stopped as waiting, so the timeout ends it.
        result = session.run("read -p 'Name: ' n", timeout=2)
        assert result.outcome == "timeout"
        assert session.run("sleep 0.6; echo slow", timeout=10).outcome == "ok"


@settings(max_examples=300, deadline=None)
@given(
    before=st.binary(max_size=80),
    status=st.integers(min_value=0, max_value=255),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_sentinel_found_under_any_chunking(before: bytes, status: int, cuts: list[int]) -> None:
    prefix = b"__RB0123456789abcdef:"
    scanner = _SentinelScanner(prefix, b";")
    stream = before + prefix + str(status).encode() + b";"
    points = [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]
    out, found, start = bytearray(), None, 0
    for point in points:
        text, seen = scanner.feed(stream[start:point])
        start = point
        out += text
        if seen is not None:
            found = seen
            break
    assert found == status
    assert bytes(out) == before


@settings(max_examples=300, deadline=None)
@given(
    before=st.binary(max_size=80),
    status=st.integers(min_value=0, max_value=255),
    space=st.sampled_from([b"", b"\n", b"\r\n", b" "]),
    keep=st.integers(min_value=1, max_value=40),
)
def test_a_prompt_ending_the_output_is_found_whole_or_held_in_part(
    before: bytes, status: int, space: bytes, keep: int
) -> None:
    # What a block's output may hold back as bash's prompt (BlockRun._pass_on): a whole
    # one at its end, or the start of one the next read may complete; never what is before.
    scanner = _SentinelScanner(b"__RB0123456789abcdef:", b";")
    prompt = b"__RB0123456789abcdef:" + str(status).encode() + b";"
    assert scanner.trailing(before + prompt + space) == (len(before), status)
    cut, seen = scanner.trailing(before + prompt[: min(keep, len(prompt) - 1)])
    assert seen is None and cut <= len(before)
    assert scanner.trailing(before + prompt + b"x")[1] is None


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_scanner_passes_everything_without_a_sentinel(data: bytes, cuts: list[int]) -> None:
    scanner = _SentinelScanner(b"__RBtoken:", b";")
    points = [*sorted({min(c, len(data)) for c in cuts}), len(data)]
    out, start = bytearray(), 0
    for point in points:
        text, seen = scanner.feed(data[start:point])
        assert seen is None or b"__RBtoken:" in data
        out += text
        start = point
    out += scanner.flush()
    assert bytes(out) == data


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"cmd\r\nout"], b"out"),
        ([b"cm", b"d\n", b"out"], b"out"),
        ([b"output first"], b"output first"),
        ([b"cmd", b"X"], b"cmdX"),
        ([b"cmd\r\ncmd\r\n"], b"cmd\r\n"),
    ],
)
def test_echo_stripper(chunks: list[bytes], expected: bytes) -> None:
    stripper = _EchoStripper(b"cmd")
    assert b"".join(stripper.feed(c) for c in chunks) == expected


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=400), limit=st.integers(min_value=4, max_value=64))
def test_value_chunks_reassemble(value: str, limit: int) -> None:
    chunks = _chunks(value, limit)
    assert b"".join(chunks) == value.encode()
    assert all(0 < len(c) <= limit for c in chunks)
    for chunk in chunks:
        chunk.decode("utf-8")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"expect": "", "send": "x"}, "non-empty"),
        ({"expect": "Password:", "send": "a\nb"}, "control"),
        ({"expect": "Password:", "send": "\x03"}, "control"),
    ],
)
def test_answer_validation(kwargs: dict[str, str], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        Answer(**kwargs)  # type: ignore[arg-type]


def test_ssh_transport_command_line() -> None:
    transport = ssh_transport("db.example.org", options=["-p", "2222"])
    # The guide's options come first: ssh keeps the first value it is given for an option.
    assert transport.argv[:7] == ("ssh", "-tt", "-p", "2222", "-o", "BatchMode=yes", "--")
    assert transport.argv[7] == "db.example.org"
    assert transport.argv[8].startswith("exec env TERM=dumb PAGER=cat")
    assert transport.argv[8].endswith("bash --norc --noprofile --noediting -i")
    assert isinstance(transport.delivery(), Base64Delivery)
    assert isinstance(transport.detector, PromptHeuristic)


@pytest.mark.parametrize("host", ["", "-oProxyCommand=x", "a b", "h\nx"])
def test_ssh_transport_rejects_bad_hosts(host: str) -> None:
    with pytest.raises(UsageError):
        ssh_transport(host)


def test_an_abandoned_block_is_stopped_before_the_next(local: Captured) -> None:
    def explode(chunk: bytes) -> None:
        raise RuntimeError("display broke")

    with pytest.raises(RuntimeError):
        local.session.run("echo start; sleep 30; echo never", timeout=None, on_output=explode)
    started = time.monotonic()
    assert local.run("echo after") == b"after\n"
    assert local.last.outcome == "ok"
    assert time.monotonic() - started < 3


def test_a_shell_killed_between_blocks_is_replaced(local: Captured, tmp_path: Path) -> None:
    local.session.define("SURVIVES", "yes")
    shell = local.session.pid
    assert shell is not None
    os.kill(shell, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while local.session.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert local.run("echo $SURVIVES") == b"yes\n"
    assert local.last.restarted


def test_output_is_exact_when_the_terminal_does_not_echo(local: Captured) -> None:
    local.run("stty -echo")
    assert local.run("echo quiet") == b"quiet\n"
    local.run("stty echo")
    assert local.run("echo loud") == b"loud\n"
    assert b"__rb" not in local.output


def test_strict_shell_options_in_a_block_do_not_break_the_session(sh: Captured) -> None:
    sh.run("set -u -o noclobber -o pipefail; shopt -s failglob; IFS=:")
    sh.session.define("AFTER", "a b", export=True)
    sh.session.define("LOCAL_ONLY", "c")
    assert sh.run('echo "$AFTER $LOCAL_ONLY"; false | true') == b"a b c\n"
    assert sh.last.status == 1
    assert sh.run("echo next") == b"next\n"


def test_base64_setup_failure_is_reported(tmp_path: Path) -> None:
    transport = DELIVERIES["base64"]
    session = Session(transport=transport, cwd=tmp_path, env={"TMPDIR": "/nonexistent/dir"})
    with pytest.raises(SessionError, match="setting up"):
        session.start()
    session.close()


def test_define_types_with_echo_off_and_restores_it(local: Captured) -> None:
    session = local.session
    fd = session._fd
    with session._process.no_echo():
        assert not termios.tcgetattr(fd)[3] & termios.ECHO
    assert termios.tcgetattr(fd)[3] & termios.ECHO
    session.define("QUIET", "v")
    assert b" echo " in local.run("stty -a")


RAW_POLL = (
    "{python} -c 'import select, sys, termios, tty\n"
    "saved = termios.tcgetattr(0); tty.setraw(0)\n"
    'sys.stdout.write("{text}"); sys.stdout.flush()\n'
    "ready = select.select([0], [], [], {wait})[0]\n"
    "termios.tcsetattr(0, termios.TCSADRAIN, saved)\n"
    'print("input" if ready else " done")'
    "'"
)


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("mysql> ", "ok"), ("Downloading 42%", "ok")],  # a raw-mode poll is only a guess
)
def test_raw_mode_program_polling_the_terminal(tmp_path: Path, text: str, outcome: str) -> None:
    transport = Transport("local", LOCAL_SHELL, FileDelivery, TtyReadDetector(raw_quiet=0.3))
    with Session(transport=transport, cwd=tmp_path, grace=0.3) as session:
        script = RAW_POLL.format(python=sys.executable, text=text, wait=1.0)
        result = session.run(script, timeout=10)
        assert result.outcome == outcome
        assert session.run("echo alive", timeout=5).ok


def test_file_delivery_root_can_be_chosen(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    root.mkdir()
    transport = Transport("local", LOCAL_SHELL, lambda: FileDelivery(str(root)), TtyReadDetector())
    with Session(transport=transport, cwd=tmp_path) as session:
        out = bytearray()
        session.run('echo "$__rb_file"', timeout=5, on_output=out.extend)
        assert out.decode().startswith(f"{root}/runbook-")
    assert list(root.iterdir()) == []
