"""How to reach a shell: the command that starts it, block delivery, input-wait detection."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from runbook.errors import UsageError
from runbook.inputs import CONTROL_RE
from runbook.shell.delivery import Base64Delivery, Delivery, FileDelivery
from runbook.shell.detect import Detector, PromptHeuristic, TtyReadDetector

LOCAL_SHELL: tuple[str, ...] = ("bash", "--norc", "--noprofile", "--noediting", "-i")
"""The local shell: no startup files, no readline (so no bracketed paste), interactive."""

SHELL_ENV: Mapping[str, str] = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat"}
"""Environment that keeps programs from paging or drawing on the terminal."""


@dataclass(frozen=True)
class Transport:
    """How to reach a shell: the command that starts it and how to talk to it."""

    name: str
    """``local`` when the shell's processes run on this machine (so signals and /proc
    reach them); any other label, such as ``ssh``, means they are out of reach."""
    argv: tuple[str, ...]
    """Command line that starts an interactive bash on the far end of a terminal."""
    delivery: Callable[[], Delivery]
    """Makes the per-session strategy that puts a block's text on the shell's side."""
    detector: Detector
    """Decides whether a quiet command waits for input."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for the process started here."""

    @property
    def local(self) -> bool:
        """Return True when the shell's processes run on this machine."""
        return self.name == "local"

    def reach_hint(self) -> str | None:
        """Say how to check a remote host's login, for failures before its shell answers."""
        if self.local:
            return None
        return (
            f"check that '{shlex.join(self.argv[:-1])} true' works from this "
            "machine without a prompt: log in by key or agent, and accept the host key once"
        )


def local_transport() -> Transport:
    """Return the transport for a bash on this machine."""
    return Transport("local", LOCAL_SHELL, FileDelivery, TtyReadDetector())


def ssh_transport(host: str, *, options: Sequence[str] = ()) -> Transport:
    """Return a transport for bash on ``host`` through the system's OpenSSH client."""
    if not host or host.startswith("-") or CONTROL_RE.search(host) or " " in host:
        raise UsageError(f"invalid host name {host!r}")
    remote = " ".join(
        ["exec", "env", *(f"{k}={shlex.quote(v)}" for k, v in SHELL_ENV.items()), *LOCAL_SHELL]
    )
    # BatchMode: a password or host-key question from ssh itself fails at once, naming the
    # reason, instead of swallowing what is typed for the shell. ssh takes the first value
    # given for an option, so the guide's options can still set it otherwise.
    argv = ("ssh", "-tt", *options, "-o", "BatchMode=yes", "--", host, remote)
    return Transport("ssh", argv, Base64Delivery, PromptHeuristic())
