"""``runbook exec``: walk a guide step by step, run what may run, ask about the rest.

One concern per module:

- ``plan``: what will run, from the model and the options alone (steps, nested steps,
  inputs, units of a block, the dry run);
- ``tabs``: which content tab of each set the run takes, remembered by label;
- ``records``: journal, transcript and ticks in their safe order; what a killed run left;
- ``operator``: what the person sees and is asked, and refusals when no one can be asked;
- ``verdict``: what a finished block means for its step, how a step or run ended;
- ``signals``: Ctrl-C stops the command, never half of the bookkeeping;
- ``shells``: the shells blocks run in, by shape, one per host, from a factory;
- ``connect``: the shell a block runs in, and the ``ssh`` lines that open one, asked for,
  opened or declined;
- ``perform``: one block, shown, offered or run;
- ``loop``: the steps (``Loop``), and the run around them (``Runner``);
- ``sessions``: the real shells (``runbook.shell``, pexpect), handed to the runner by the
  command line. Nothing else here imports pexpect.
"""

from runbook.execution.loop import Runner
from runbook.execution.plan import ExecOptions

__all__ = ["ExecOptions", "Runner"]
