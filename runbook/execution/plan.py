"""What a run will do, from the model and the options alone: no shell, no file, no person.

Which steps run (``--from``, ``--only``, ``--redo``, ticked steps), the steps that ``exec``
and ``repeat`` directives run inside them, the inputs their blocks need and which of those
are secret, the units a block runs as, and what a dry run shows.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shlex
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from runbook.actions import is_secret, prompt_commands
from runbook.errors import GuideError, NeedsOperator, UsageError, step_of, substep_of
from runbook.execution.tabs import Ask, TabChoices
from runbook.inputs import (
    CONTROL_RE,
    PLACEHOLDER_RE,
    check_value,
    placeholders_in,
    preview,
    substitute,
)
from runbook.model import (
    Action,
    Connection,
    Directive,
    Limit,
    Origin,
    Placeholder,
    PromptCommand,
    Runbook,
    Step,
)
from runbook.redact import Redactor
from runbook.report import DryPart, DryStep

# A step runs the steps of its directives; theirs run theirs, to this depth.
_MAX_DEPTH = 8


@dataclass(frozen=True)
class ExecOptions:
    """How to run a guide."""

    sets: Mapping[str, str] = field(default_factory=dict)
    """Values for placeholders (``--set``)."""
    tabs: tuple[str, ...] = ()
    """Tab labels chosen ahead (``--tab``), ``*`` wildcards allowed."""
    from_step: int | None = None
    """Start at this step; it and every later step run, ticked or not (``--from``)."""
    only: tuple[int, ...] = ()
    """Run just these steps, ticked or not (``--only``)."""
    parts: tuple[tuple[int, int], ...] = ()
    """Parts of steps that run alone (``--only 3.2``: step 3's second numbered
    sub-heading), as (step, part); their steps are among ``only`` and are never ticked."""
    redo: bool = False
    """Run ticked steps again (``--redo``)."""
    interactive: bool = True
    """Whether a person can be asked (a terminal and no ``--yes``)."""
    dry_run: bool = False
    """Show the plan, run nothing."""
    timeout: float | None = None
    """Default seconds per block (``--timeout``); a block's own ``timeout`` wins."""
    retry_unknown: bool = False
    """Run steps with an unknown outcome again without asking."""
    skip_unknown: bool = False
    """Skip steps with an unknown outcome without asking."""
    cwd: Path | None = None
    """Folder the shells start in; None for the site root (the folder of ``mkdocs.yml``, or
    of a lone guide), so relative paths in a guide mean the same wherever exec is started."""
    accept: bool = False
    """Run offered blocks without asking, as if the operator answered run (``--accept``)."""
    by_hand: tuple[int, ...] = ()
    """Steps passed as done by hand, never run (``--by-hand``)."""
    by_hand_blocks: tuple[Origin, ...] = ()
    """Blocks passed as done by hand, never run (``--by-hand-block FILE:LINE``)."""


# -- checks and selection -------------------------------------------------------------------


def check_guide(book: Runbook, guides: Mapping[Path, Runbook], guide_arg: str) -> None:
    """Refuse a guide with errors (lint's own diagnostics: an undefined host among them), or
    a guide not loaded that an ``exec`` directive runs."""
    errors = book.errors
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise GuideError(
            first.message + more,
            path=book.path,
            at=first.origin,
            hint=f"run 'runbook lint {guide_arg}' to see every problem",
        )
    for each in (book, *guides.values()):
        for step in each.steps:
            for d in step.directives:
                if d.name == "exec" and d.target not in guides:
                    raise GuideError(
                        f"step {step.number} runs {d.args[0]}, which was not loaded",
                        at=d.origin,
                    )


def tab_labels(book: Runbook) -> list[str]:
    """Return every content tab label of the guide, once, in order."""
    labels: dict[str, None] = {}
    for step in book.steps:
        for path in step.tab_paths:
            labels.setdefault(path[-1].label, None)
    return list(labels)


def quote_label(label: str) -> str:
    """Quote a tab label with spaces, for a command line."""
    return f'"{label}"' if re.search(r"\s", label) else label


def check_tab_flags(book: Runbook, flags: Sequence[str]) -> None:
    """Refuse a ``--tab`` that matches no tab: a typo would otherwise pass unnoticed."""
    labels = tab_labels(book)
    for flag in flags:
        if not any(label == flag or fnmatch.fnmatchcase(label, flag) for label in labels):
            known = ", ".join(quote_label(label) for label in labels) or "none"
            raise UsageError(
                f"--tab {quote_label(flag)} matches no content tab of the guide (tabs: {known})",
                path=book.path,
                hint="give one of the labels above (wildcards like 'My*' work)",
            )


def select(book: Runbook, options: ExecOptions, guide_arg: str) -> list[Step]:
    """Return the steps the options name (all by default); refuse numbers with no step."""
    steps = list(book.steps)
    if not steps:
        raise GuideError(
            "the guide has no numbered steps to run",
            path=book.path,
            hint=f"see 'runbook list {guide_arg}' for what was found",
        )
    asked = [*options.only]
    if options.from_step is not None:
        asked.append(options.from_step)
    for n in [*asked, *options.by_hand]:
        step_of(book, n)
    for n, m in options.parts:
        substep_of(step_of(book, n), m)
    if options.only:
        steps = [s for s in steps if s.number in options.only]
    elif options.from_step is not None:
        steps = [s for s in steps if s.number >= options.from_step]
    numbers = {s.number for s in steps}
    for n in options.by_hand:
        if n not in numbers:
            # Passing a step the run never reaches would be recorded nowhere: say so now.
            raise UsageError(
                f"--by-hand {n} names a step this run does not reach",
                path=book.path,
                hint="name steps among those --only or --from select",
            )
    return steps


def only_parts(step: Step, options: ExecOptions) -> Step | None:
    """Return ``step`` cut to its parts that run alone (``--only 3.2``): their blocks in
    document order, no directive; None when the whole step runs."""
    wanted = {m for n, m in options.parts if n == step.number}
    if not wanted:
        return None
    chosen = {id(a) for part in step.substeps if part.number in wanted for a in part.actions}
    actions = tuple(a for a in step.actions if id(a) in chosen)
    return replace(step, actions=actions, directives=())


def resume_flags(options: ExecOptions, at: int | None) -> str:
    """Return the selection flags of a run that resumes this one at step ``at`` (None: where
    this one started): ``--only`` keeps the steps still ahead, ``--from`` (and ``--redo``,
    which ran ticked steps again) starts at ``at``; a plain run needs none, its ticks say
    where it stopped."""
    if options.only:
        ahead = sorted(n for n in options.only if at is None or n >= at) or options.only
        named = [[f"{n}.{m}" for s, m in options.parts if s == n] or [str(n)] for n in ahead]
        return " --only " + ",".join(ref for refs in named for ref in refs)
    if options.from_step is not None or options.redo:
        start = at if at is not None else options.from_step
        return f" --from {start}" if start is not None else " --redo"
    return ""


def block_by_hand(action: Action, options: ExecOptions) -> bool:
    """Whether ``--by-hand-block`` passes ``action`` as done by hand."""
    # Resolving a path stats each of its folders: not for every block of every run.
    return bool(options.by_hand_blocks) and _resolved(action.origin) in options.by_hand_blocks


def _resolved(origin: Origin) -> Origin:
    return Origin(_resolved_path(origin.path), origin.line)


@functools.lru_cache(maxsize=256)
def _resolved_path(path: Path) -> Path:
    # A guide's blocks share a few files: each is resolved (a stat per folder) once.
    return path.resolve()


def check_blocks(books: Iterable[Runbook], origins: Collection[Origin]) -> None:
    """Refuse a ``--by-hand-block`` that names no block of the guides a run reaches."""
    if not origins:
        return
    known = {_resolved(a.origin) for book in books for step in book.steps for a in step.actions}
    for origin in origins:
        if origin not in known:
            raise UsageError(
                f"--by-hand-block {origin.shown}: no block starts there",
                hint="give the file:line that 'runbook show' prints for the block",
            )


def pending(step: Step, options: ExecOptions) -> bool:
    """Whether ``step`` runs: not ticked, or named by ``--redo``, ``--only`` or ``--from``."""
    return not step.checked or options.redo or bool(options.only) or options.from_step is not None


# -- nested steps -----------------------------------------------------------------------------


def nested(book: Runbook, guides: Mapping[Path, Runbook], d: Directive) -> list[tuple[Step, str]]:
    """Return the steps directive ``d`` of ``book`` runs, each with the label it runs as."""
    if d.name == "repeat":
        return [(s, f"repeating step {n}") for n in d.steps if (s := book.step(n))]
    if d.name == "exec" and d.target is not None and d.target in guides:
        sub = guides[d.target]
        return [(s, f"{sub.title}, step {s.number}") for s in sub.steps]
    return []


def guide_of(d: Directive, guides: Mapping[Path, Runbook]) -> Runbook:
    """Return the guide an ``exec`` directive runs (loaded beforehand, see check_guide)."""
    if d.target is None or d.target not in guides:
        raise GuideError(f"{d.args[0]} was not loaded", at=d.origin)
    return guides[d.target]


def expanded(
    step: Step, book: Runbook, guides: Mapping[Path, Runbook], depth: int = 0
) -> list[tuple[Step, str]]:
    """Return ``step`` and every step its directives run, with the label each runs as."""
    found = [(step, "")]
    if depth > _MAX_DEPTH:
        return found
    for d in step.directives:
        for s, label in nested(book, guides, d):
            inner = expanded(s, book, guides, depth + 1)
            found.extend((x, x_label or label) for x, x_label in inner)
    return found


class Nesting:
    """Which step of the guide is running, and what it runs, to name steps in messages."""

    def __init__(self) -> None:
        self.outer: Step | None = None
        """The guide's step being run."""
        self.labels: list[str] = []
        """What runs inside it: ``repeating step 4``, ``Installation, step 3`` …"""

    def named(self, step: Step) -> str:
        """Name ``step`` in messages: nested steps by the step that runs them."""
        if not self.labels or self.outer is None:
            return f"step {step.number}"
        return f"step {self.outer.number} ({', '.join(self.labels)})"

    def resume_step(self, step: Step) -> int:
        """Return the step of the guide a rerun resumes at after ``step`` failed."""
        return self.outer.number if self.labels and self.outer else step.number

    @contextmanager
    def part_of(self, outer: Step, label: str) -> Iterator[None]:
        """Name messages about a nested step by the guide's step that runs it."""
        saved = (self.outer, list(self.labels))
        self.outer = outer
        self.labels = [label] if label else []
        try:
            yield
        finally:
            self.outer, self.labels = saved

    @contextmanager
    def inside(self, label: str) -> Iterator[None]:
        """Run a nested step, named ``label``, inside the current one."""
        self.labels.append(label)
        try:
            yield
        finally:
            self.labels.pop()


# -- inputs -----------------------------------------------------------------------------------


def default_values(
    book: Runbook, site_inputs: Mapping[str, object], sets: Mapping[str, str]
) -> dict[str, str]:
    """Return the values known before anything runs: the site's, the page's, ``--set``."""
    values = {str(k): str(v) for k, v in site_inputs.items()}
    meta = book.rendered.front_matter.get("inputs")
    if isinstance(meta, Mapping):
        values.update({str(k): str(v) for k, v in meta.items()})
    values.update(sets)
    return values


class Inputs:
    """The run's values of placeholders; secret ones are masked wherever output goes."""

    def __init__(
        self,
        redactor: Redactor,
        secret_names: Iterable[str] = (),
        limits: Mapping[str, Sequence[tuple[Limit, Origin]]] | None = None,
    ) -> None:
        self.values: dict[str, str] = {}
        """Every value known so far, by name."""
        self._redactor = redactor
        self._secret_names = set(secret_names)
        self._limits = dict(limits or {})

    def limits(self, name: str) -> tuple[Limit, ...]:
        """Return what the contexts input ``name`` stands in take as data (see Limit)."""
        return tuple(limit for limit, _ in self._limits.get(name, ()))

    def check(self, name: str, value: str) -> None:
        """Refuse a value a terminal or one of its contexts would act on, naming the block."""
        check_value(name, value)
        for limit, origin in self._limits.get(name, ()):
            try:
                check_value(name, value, (limit,))
            except UsageError as exc:
                raise UsageError(exc.message, at=origin, hint=exc.hint) from None

    def secret(self, name: str) -> bool:
        """Whether input ``name`` is secret (a placeholder said so, or its name does)."""
        return name in self._secret_names or is_secret(name)

    def give(self, name: str, value: str, *, secret: bool | None = None) -> None:
        """Know ``value`` for ``name`` (masked from now on when secret); refuse control
        characters."""
        if secret if secret is not None else self.secret(name):
            self._redactor.add(value)
        self.check(name, value)
        self.values[name] = value

    def secrets(self) -> set[str]:
        """Return the names whose values must never be shown."""
        return {name for name in self.values if self.secret(name)} | self._secret_names

    def public(self) -> dict[str, str]:
        """Return the values that may be recorded and shown."""
        return {k: v for k, v in self.values.items() if not self.secret(k)}

    def preview(self, code: str) -> str:
        """Return ``code`` with known values filled in, secrets masked, for people to read."""
        return preview(code, self.values, self.secrets())


def input_limits(books: Iterable[Runbook]) -> dict[str, list[tuple[Limit, Origin]]]:
    """Return, by input, the limits of the contexts its uses stand in and their blocks."""
    limits: dict[str, list[tuple[Limit, Origin]]] = {}
    for book in books:
        for step in book.steps:
            for action in step.actions:
                if not action.executable:
                    continue
                for ph in action.placeholders:
                    found = limits.setdefault(ph.name, [])
                    found.extend((limit, action.origin) for limit in ph.limits)
    return limits


def needed_inputs(
    parts: Iterable[Step], tabs: TabChoices, *, accept: bool = False
) -> list[tuple[Placeholder, Step, Action]]:
    """Return each placeholder that the blocks of ``parts`` run without a person use (``.run``
    blocks, ``ssh`` lines, and with ``accept`` offered blocks), and the ``ssh`` lines of
    those blocks, with its first use."""
    kinds = {"run", "connect", *(["suggested"] if accept else [])}
    needed: dict[str, tuple[Placeholder, Step, Action]] = {}
    for step in parts:
        for action in tabs.actions(step):
            if action.kind not in kinds:
                continue
            for ph in (*connection_inputs(action), *action.placeholders):
                needed.setdefault(ph.name, (ph, step, action))
    return list(needed.values())


# -- where a block runs -----------------------------------------------------------------------

SUDO_PASSWORD = "sudo-password"
"""The secret input that answers sudo's password prompt on remote hosts."""
SUDO_PROMPT = "[sudo] password for"
"""The start of sudo's password prompt."""
_SSH_KEY = "ssh "


def connection_inputs(action: Action) -> tuple[Placeholder, ...]:
    """Return the inputs of the ``ssh`` line ``action`` runs after (none without one)."""
    if action.connection is None:
        return ()
    names = placeholders_in(" ".join(action.connection.words))
    return tuple(Placeholder(name, is_secret(name)) for name in names)


def host_key(action: Action, values: Mapping[str, str]) -> str:
    """Return the key of the shell ``action`` runs in: ``local``, a site host's name, or for
    a block after an ``ssh`` line that line with ``values`` filled in (one shell per line).

    Each word of the line stays one argument of ssh whatever its value holds; a host that
    ssh could read as an option, or that holds whitespace, is refused.
    """
    if action.connection is None:
        return action.host
    return _SSH_KEY + shlex.join(ssh_words(action.connection, values))


def ssh_words(connection: Connection, values: Mapping[str, str]) -> tuple[str, ...]:
    """Return the words after ``ssh`` of ``connection`` with ``values`` filled in."""

    def fill(word: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), word)

    words = tuple(fill(word) for word in connection.words)
    host = words[-1]
    parts = host.rpartition("@")
    why = (
        "holds whitespace or control characters"
        if re.search(r"\s", host) or CONTROL_RE.search(host)
        else "has an empty user or host"
        if not parts[2] or (parts[1] and not parts[0])
        else "starts with '-'"
        if host.startswith("-") or parts[2].startswith("-")
        else ""
    )
    if why:
        # Named as written: its value may be secret.
        raise UsageError(
            f"the host of the ssh line, {connection.destination}, {why}: it is not a host name",
            at=connection.origin,
            hint="give the ssh line's inputs a host name or address",
        )
    return words


def connection_words(key: str) -> tuple[str, ...] | None:
    """Return the words after ``ssh`` of a key made by ``host_key`` for an ``ssh`` line, None
    for any other key."""
    if not key.startswith(_SSH_KEY):
        return None
    return tuple(shlex.split(key.removeprefix(_SSH_KEY)))


def host_name(key: str) -> str:
    """Name the host of shell ``key`` for people: ``this machine``, a site host, or an ``ssh``
    line's destination."""
    words = connection_words(key)
    if words is not None:
        return words[-1]
    return "this machine" if key == "local" else key


# -- what a block runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """What one shell round trip runs: a whole block, or one command of a ``$ `` block."""

    action: Action
    """The block it comes from."""
    index: int
    """Its position in the block (0 for a whole block)."""
    origin: Origin
    """Where failures point: the block's fence, or the ``$ `` command's line."""
    code: str
    """Shell code, placeholders replaced by variable references."""
    expected: tuple[str, ...] | None
    """Output lines it must print (``$ `` blocks), else None."""


def units(action: Action, literal: Mapping[str, str]) -> list[Unit]:
    """Return the units ``action`` runs as; ``literal`` are values that may be written into
    the code (no secret), every other placeholder becomes a shell variable reference."""
    names = [p.name for p in action.placeholders]
    if not action.expects_output:
        body = substitute(action.code, names, literal=literal).code
        return [Unit(action, 0, action.origin, body, None)]
    # A `$ ` command's failure points at its own line, past the opening fence.
    first_line = action.origin.line + (1 if action.fenced else 0)
    return [
        Unit(
            action,
            index,
            Origin(action.origin.path, first_line + command.offset),
            substitute(command.code, names, literal=literal).code,
            command.expected,
        )
        for index, command in enumerate(action.commands)
    ]


def edited(action: Action, code: str) -> Action:
    """Return ``action`` as the operator edited it: its code, inputs and commands anew."""
    commands = (
        tuple(PromptCommand(c, tuple(out), at) for c, out, at in prompt_commands(code))
        if action.expects_output
        else ()
    )
    return replace(
        action,
        code=code,
        placeholders=tuple(Placeholder(n, is_secret(n)) for n in placeholders_in(code)),
        expects_output=bool(commands),
        commands=commands,
    )


# -- the dry run ------------------------------------------------------------------------------


def dry_plan(
    steps: Sequence[Step],
    *,
    book: Runbook,
    guides: Mapping[Path, Runbook],
    options: ExecOptions,
    tabs: TabChoices,
    inputs: Inputs,
    nesting: Nesting,
    refuse: Ask,
) -> list[DryStep]:
    """Return what running ``steps`` would do; ``refuse`` says a tab choice needs a person."""
    plan = []
    for step in steps:
        if not pending(step, options):
            plan.append(DryStep(step, False))
            continue
        if step.number in options.by_hand:
            plan.append(DryStep(step, True, by_hand=True))
            continue
        step = only_parts(step, options) or step
        parts = []
        for inner, label in expanded(step, book, guides):
            with nesting.part_of(step, label):
                parts.append(_dry_part(inner, label, nesting.named(inner), tabs, inputs, refuse))
        plan.append(DryStep(step, True, tuple(parts)))
    return plan


def _dry_part(
    step: Step, label: str, named: str, tabs: TabChoices, inputs: Inputs, refuse: Ask
) -> DryPart:
    choice = None
    try:
        tabs.decide(step, refuse)
    except NeedsOperator as exc:
        choice = (exc.message, exc.hint or "")
    actions = tuple(tabs.actions(step))
    secrets = inputs.secrets()
    return DryPart(
        step=step,
        label=label,
        named=named,
        choice=choice,
        actions=actions,
        previews=tuple(
            preview(a.code, inputs.values, secrets) if a.executable else "" for a in actions
        ),
        places=tuple(preview(a.where, inputs.values, secrets) for a in actions),
        missing=tuple(
            ph
            for a in actions
            if a.executable
            for ph in a.placeholders
            if ph.name not in inputs.values
        ),
    )
