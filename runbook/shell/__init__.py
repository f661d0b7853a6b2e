"""Persistent shell sessions: run a guide's code blocks in one interactive bash.

A session keeps one ``bash -i`` alive behind a pseudo-terminal, so ``cd``, variables and
functions carry from block to block as they would for a person at the terminal. A block's
text never passes through the terminal as keystrokes: a delivery strategy places it in a
file the shell then sources, and completion plus exit status come from a prompt sentinel.
The transport (argv, delivery, input-wait detection) is pluggable so a remote shell reached
through the OpenSSH client fits the same interface as the local one.

One concern per module; they import each other, never this package, which only gathers
the public names:

``session``    the ``Session``: the shell's life, composing the parts below
``block``      one block's run: deliver, start, pump, detect input waits, answer, stop
``channel``    typed lines and the prompts that answer them, between blocks
``protocol``   the shell code typed at the prompt, and the session's token
``sentinel``   scanning output for the prompt sentinel, stripping the typed echo
``output``     a block's output: redaction, live output, transcript, bounded tails
``detect``     telling a command waiting for input from a slow one
``delivery``   putting block text where the shell sources it
``transport``  how to reach a shell: local bash, or bash over OpenSSH
``process``    the shell's process behind its terminal (the one module using pexpect)
``procfs``     reading processes from /proc
``stop``       stopping a command with ever stronger signals
``interrupt``  stop requests from a signal handler
``handover``   the operator's keyboard, connected to the running command
``model``      answers, the operator, block results, outcomes, ``SessionError``
"""

from __future__ import annotations

from runbook.model import Outcome
from runbook.shell.delivery import Base64Delivery, Delivery, Exchange, FileDelivery
from runbook.shell.detect import Detector, Probe, PromptHeuristic, TtyReadDetector
from runbook.shell.model import Answer, BlockResult, Operator, SessionError
from runbook.shell.session import Session
from runbook.shell.transport import (
    LOCAL_SHELL,
    SHELL_ENV,
    Transport,
    local_transport,
    ssh_transport,
)

__all__ = [
    "LOCAL_SHELL",
    "SHELL_ENV",
    "Answer",
    "Base64Delivery",
    "BlockResult",
    "Delivery",
    "Detector",
    "Exchange",
    "FileDelivery",
    "Operator",
    "Outcome",
    "Probe",
    "PromptHeuristic",
    "Session",
    "SessionError",
    "Transport",
    "TtyReadDetector",
    "local_transport",
    "ssh_transport",
]
