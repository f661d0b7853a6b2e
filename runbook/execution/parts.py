"""The parts one run is made of, built once by the runner and shared by the loop over steps
and the runner of blocks: each part owns one concern."""

from __future__ import annotations

from dataclasses import dataclass

from runbook.execution.operator import Operator
from runbook.execution.plan import ExecOptions, Inputs, Nesting
from runbook.execution.records import Records
from runbook.execution.shells import Hosts
from runbook.execution.signals import Signals
from runbook.execution.tabs import TabChoices
from runbook.ui import Console


@dataclass(frozen=True)
class Parts:
    """Everything a run shares."""

    options: ExecOptions
    """How to run."""
    console: Console
    """The terminal (or log) the operator reads."""
    operator: Operator
    """Questions to the person, refusals when there is none."""
    records: Records
    """Journal, transcript and ticks."""
    inputs: Inputs
    """Values of placeholders, and which are secret."""
    tabs: TabChoices
    """The content tabs taken."""
    nesting: Nesting
    """Which step runs, and what inside it, for messages."""
    signals: Signals
    """Ctrl-C, SIGTERM and SIGHUP."""
    hosts: Hosts
    """A shell per host."""
