"""The ``runbook`` command: a thin layer over the library; each command calls a few functions."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from runbook import __version__
from runbook.errors import (
    EXIT_INVALID,
    GuideError,
    RunbookError,
    UsageError,
    step_of,
    substep_of,
)
from runbook.model import Origin, Runbook, rel

F = TypeVar("F", bound=Callable[..., Any])

guide_arg = click.argument("guide", type=click.Path(path_type=Path, dir_okay=True))
json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
set_opt = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a variable or <placeholder> a value (repeatable).",
)


def _block(option: str, text: str) -> Origin:
    """Read ``FILE:LINE`` naming a block."""
    path, _, line = text.rpartition(":")
    if not path or not line.isdigit():
        raise UsageError(f"{option} {text!r} is not FILE:LINE", hint=f"write {option} FILE:LINE")
    return Origin(Path(path).resolve(), int(line))


def parse_sets(sets: Sequence[str], option: str = "--set") -> dict[str, str]:
    """Turn ``NAME=VALUE`` options into a mapping."""
    values: dict[str, str] = {}
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(
                f"{option} {item!r} is not NAME=VALUE", hint=f"write {option} name=value"
            )
        values[name.strip().strip("<>")] = value
    return values


def fail(exc: RunbookError) -> None:
    """Print ``Error: file:line: what happened`` and the next step; exit with its code."""
    loc = exc.location
    click.echo(f"Error: {loc + ': ' if loc else ''}{exc.message}", err=True)
    if exc.hint:
        click.echo(f"  next: {exc.hint}", err=True)
    sys.exit(exc.exit_code)


def handled(func: F) -> F:
    """Turn library errors into messages and exit codes, never tracebacks."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RunbookError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except (BrokenPipeError, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (OSError, UnicodeError) as exc:  # the environment, not the guide
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_INVALID)
        return None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="runbook")
def main() -> None:
    """Run mkdocs-material operations guides, keeping progress in the guide's own checklist.

    Exit codes: 0 done, 1 a step failed, 2 usage error, 3 invalid guide or config,
    4 stopped waiting for an operator, 130 interrupted.
    """


def _load(guide: Path, sets: Sequence[str] = ()) -> Any:
    from runbook.guide import load

    return load(guide, sets=parse_sets(sets))


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Read a time limit option with the rule of ``timeout="…"``."""
    from runbook.actions import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; write seconds, or 15m, 2h") from None


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@main.command("list")
@guide_arg
@json_opt
@set_opt
@handled
def list_cmd(guide: Path, as_json: bool, sets: tuple[str, ...]) -> None:
    """List the steps of GUIDE: what runs, what needs a person, which inputs."""
    from runbook.report import plan_text, runbook_json

    book = _load(guide, sets)
    click.echo(json.dumps(runbook_json(book), indent=2) if as_json else plan_text(book))
    if book.errors:
        sys.exit(EXIT_INVALID)


main.add_command(list_cmd, "plan")


@main.command("show")
@guide_arg
@click.argument("step", metavar="STEP")
@json_opt
@set_opt
@handled
def show_cmd(guide: Path, step: str, as_json: bool, sets: tuple[str, ...]) -> None:
    """Show step STEP of GUIDE in full (N), or one part of it (N.M: its M-th numbered
    sub-heading): warnings, blocks and where they come from."""
    from runbook.report import step_json, step_text

    number, sub = step_ref("STEP", step)
    book = _load(guide, sets)
    found = step_of(book, number)
    part = None if sub is None else substep_of(found, sub)
    if part is not None:
        # The part as a step of its own: its blocks, under the step's number and warnings.
        found = replace(
            found, title=f"{found.title} › {sub}. {part.title}", actions=part.actions, subchecks=()
        )
    if as_json:
        data = step_json(found) | {"code": [a.code for a in found.actions]}
        if part is not None:
            data["substep"] = {"number": sub, "title": part.title, "origin": part.origin.shown}
        _emit(data)
    else:
        click.echo(step_text(book, found))


@main.command("render")
@guide_arg
@set_opt
@click.option("--map", "show_map", is_flag=True, help="Prefix each line with its source file:line.")
@handled
def render_cmd(guide: Path, sets: tuple[str, ...], show_map: bool) -> None:
    """Print GUIDE's markdown after includes, exactly as the site sees it."""
    from runbook.guide import render_guide
    from runbook.report import where

    rendered = render_guide(guide, sets=parse_sets(sets))
    if not show_map:
        click.echo(rendered.text, nl=not rendered.text.endswith("\n"))
        return
    for n, line in enumerate(rendered.text.split("\n")):
        click.echo(f"{where(rendered.line_map.origin(n))}\t{line}")


@main.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), required=True)
@json_opt
@click.option("--verbose", "-v", is_flag=True, help="Also print informational notes.")
@handled
def lint_cmd(paths: tuple[Path, ...], as_json: bool, verbose: bool) -> None:
    """Check guides for every problem, with file:line; exit 3 when any is an error."""
    from runbook.lint import lint_paths
    from runbook.report import diagnostic_json, diagnostic_text

    result = lint_paths(paths)
    shown = [d for d in result.diagnostics if verbose or d.level != "info"]
    if as_json:
        _emit(
            {
                "pages": [str(p) for p in result.pages],
                "diagnostics": [diagnostic_json(d) for d in shown],
            }
        )
    else:
        for diag in shown:
            click.echo(diagnostic_text(diag))
        errors = sum(1 for d in result.diagnostics if d.level == "error")
        warnings = sum(1 for d in result.diagnostics if d.level == "warning")
        click.echo(
            f"{len(result.pages)} pages checked: {errors} errors, {warnings} warnings", err=True
        )
    if any(d.level == "error" for d in result.diagnostics):
        sys.exit(EXIT_INVALID)


def _set(guide: Path, steps: tuple[str, ...], checked: bool) -> None:
    from runbook.checklist import set_parts

    refs = [step_ref("STEPS", s) for s in steps]
    changed = set_parts(_load(guide), refs, checked)
    verb = "ticked" if checked else "cleared"
    for ref, text in zip(refs, steps, strict=True):
        state = verb if ref in changed else f"already {verb}"
        click.echo(f"{'item' if ref[1] else 'step'} {text}: {state}")


@main.command("check")
@guide_arg
@click.argument("steps", nargs=-1, required=True)
@handled
def check_cmd(guide: Path, steps: tuple[str, ...]) -> None:
    """Tick STEPS in GUIDE's overview checklist (only the box characters change); N.M ticks
    item M of step N's sub-checklist."""
    _set(guide, steps, True)


@main.command("uncheck")
@guide_arg
@click.argument("steps", nargs=-1, required=True)
@handled
def uncheck_cmd(guide: Path, steps: tuple[str, ...]) -> None:
    """Clear STEPS in GUIDE's overview checklist (N.M: item M of step N's sub-checklist)."""
    _set(guide, steps, False)


@main.command("reset")
@guide_arg
@handled
def reset_cmd(guide: Path) -> None:
    """Clear every tick of GUIDE's overview checklist, to run it again from the start."""
    from runbook.checklist import reset

    cleared = reset(_load(guide))
    click.echo(
        f"cleared {len(cleared)} steps" + (f": {', '.join(map(str, cleared))}" if cleared else "")
    )


@main.command("status")
@guide_arg
@json_opt
@handled
def status_cmd(guide: Path, as_json: bool) -> None:
    """Show GUIDE's progress: steps done (by a run or by hand, by whom, when), the next
    step, and the last run."""
    from runbook.journal import last_run_of, step_marks_of
    from runbook.report import status_json, status_text

    book = _load(guide)
    last = last_run_of(book)
    marks = step_marks_of(book)
    if as_json:
        data = status_json(book, last, marks)
        data.pop("last_run_text")
        _emit(data)
    else:
        click.echo(status_text(book, last, marks))


@main.command("exec")
@guide_arg
@set_opt
@click.option(
    "--set-file",
    "set_files",
    multiple=True,
    metavar="NAME=PATH",
    help="Read <NAME>'s value from a file (one trailing newline dropped): secrets stay out "
    "of argv. RUNBOOK_SET_<NAME> in the environment gives one too; --set wins, then the "
    "environment, then the file.",
)
@click.option(
    "--tab",
    "tabs",
    multiple=True,
    metavar="LABEL",
    help="Pick content tabs with this label (repeatable; wildcards allowed).",
)
@click.option("--from", "from_step", type=int, metavar="N", help="Start at step N, ticked or not.")
@click.option(
    "--only",
    metavar="N,M",
    help="Run just these steps, ticked or not; N.M runs part M of step N alone (never ticked).",
)
@click.option("--redo", is_flag=True, help="Run ticked steps again.")
@click.option(
    "--yes", "-y", is_flag=True, help="Never ask: stop (exit 4) where a person is needed."
)
@click.option("--dry-run", is_flag=True, help="Show the plan with values filled in; run nothing.")
@click.option(
    "--timeout",
    callback=_duration,
    metavar="DURATION",
    help="Default time limit of a block: seconds, or 15m, 2h (none when left out).",
)
@click.option("--retry-unknown", is_flag=True, help="Run steps whose outcome is unknown again.")
@click.option("--skip-unknown", is_flag=True, help="Skip steps whose outcome is unknown.")
@click.option(
    "--accept",
    is_flag=True,
    help="Run offered blocks without asking, as if you answered run; with --yes a run no "
    "longer stops at them.",
)
@click.option(
    "--by-hand",
    "by_hand",
    metavar="N,M",
    help="Pass these steps as done by hand: nothing of them runs, they are recorded and ticked.",
)
@click.option(
    "--by-hand-block",
    "by_hand_blocks",
    multiple=True,
    metavar="FILE:LINE",
    help="Pass the block starting there (as 'show' prints it) as done by hand: it does not "
    "run and is recorded so (repeatable).",
)
@handled
def exec_cmd(
    guide: Path,
    sets: tuple[str, ...],
    set_files: tuple[str, ...],
    tabs: tuple[str, ...],
    from_step: int | None,
    only: str | None,
    redo: bool,
    yes: bool,
    dry_run: bool,
    timeout: float | None,
    retry_unknown: bool,
    skip_unknown: bool,
    accept: bool,
    by_hand: str | None,
    by_hand_blocks: tuple[str, ...],
) -> None:
    """Run GUIDE: blocks marked .run execute, the rest is offered or confirmed, steps get ticked."""
    from runbook.execution import ExecOptions, Runner
    from runbook.execution.plan import SUDO_PASSWORD
    from runbook.execution.sessions import SiteShells
    from runbook.guide import load
    from runbook.inputs import input_values
    from runbook.site import load_site

    if retry_unknown and skip_unknown:
        raise UsageError("--retry-unknown and --skip-unknown exclude each other")
    only_steps, only_parts = _steps_and_parts("--only", only)
    given = parse_sets(sets)
    site = load_site(guide.absolute())
    book = load(guide, sets=given, site=site)
    if book.focus is not None and not only_steps and from_step is None:
        only_steps = (book.focus,)  # a step page of a guide spanning pages: that step
    # Guides with errors stop the run before anything else is loaded, naming the first.
    guides = {} if book.errors else load_nested(book, given)
    names = [SUDO_PASSWORD, *(p.name for g in (book, *guides.values()) for p in g.inputs)]
    values = input_values(given, parse_sets(set_files, "--set-file"), names, os.environ)
    options = ExecOptions(
        sets=values,
        tabs=tabs,
        from_step=from_step,
        only=only_steps,
        parts=only_parts,
        redo=redo,
        interactive=not yes and sys.stdin.isatty(),
        dry_run=dry_run,
        timeout=timeout,
        retry_unknown=retry_unknown,
        skip_unknown=skip_unknown,
        accept=accept,
        by_hand=_numbers("--by-hand", by_hand),
        by_hand_blocks=tuple(_block("--by-hand-block", b) for b in by_hand_blocks),
    )
    runner = Runner(
        book,
        site,
        options,
        SiteShells(site.hosts, ssh_config=site.ssh_config),
        guides=guides,
        guide_arg=str(guide),
    )
    sys.exit(runner.run())


@main.command("serve")
@click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--port", type=int, default=8000, show_default=True, help="Port; 0 picks a free one.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; another than loopback lets other machines in (with the token).",
)
@handled
def serve_cmd(path: Path, port: int, host: str) -> None:
    """Serve the site of PATH (this folder by default; a page opens at that page) with its
    guides' checklists clickable and live; prints the URL to open, with its token."""
    from runbook.serve_app import serve

    sys.exit(serve(path, host=host, port=port))


def step_ref(flag: str, text: str) -> tuple[int, int | None]:
    """Read a step (``3``) or one part of it (``3.2``): (3, None) or (3, 2).

    The one reader of step numbers for every command: ``show``, ``check``, ``uncheck``,
    ``exec --only`` and ``--by-hand``.
    """
    head, dot, tail = text.strip().partition(".")
    if head.isdigit() and (not dot or tail.isdigit()):
        return int(head), int(tail) if dot else None
    raise UsageError(
        f"{flag} {text!r} is not a step number", hint=f"write {flag} 3, or 3.2 for part 2 of step 3"
    )


def _numbers(flag: str, value: str | None) -> tuple[int, ...]:
    """Read a list of whole steps (``3,5``); a part (``3.2``) is refused: what the flag
    passes is a whole step."""
    steps, parts = _steps_and_parts(flag, value)
    if parts:
        number, sub = parts[0]
        raise UsageError(
            f"{flag} {number}.{sub}: {flag} takes whole steps, not parts of one",
            hint=f"name step {number} whole ({flag} {number})",
        )
    return steps


def _steps_and_parts(
    flag: str, value: str | None
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Read a list of steps and parts of steps (``3,5.2``): the steps named (a part's step
    among them, once), and the parts as (step, part)."""
    refs = [step_ref(flag, n) for n in value.split(",")] if value else []
    steps = tuple(dict.fromkeys(number for number, _ in refs))
    parts = tuple((number, sub) for number, sub in refs if sub is not None)
    whole = {number for number, sub in refs if sub is None}
    for number, sub in parts:
        if number in whole:
            raise UsageError(
                f"{flag} names step {number} and its part {number}.{sub}",
                hint=f"name either the whole step ({number}) or its parts ({number}.{sub})",
            )
    return steps, parts


def load_nested(book: Runbook, sets: Mapping[str, str]) -> dict[Path, Runbook]:
    """Load every guide ``book`` runs through ``exec`` directives, and theirs, once each.

    Each guide loads with its own site. A guide with errors, or one that would run itself
    again (directly or through others), is refused with the directive that names it.
    """
    from runbook.guide import load
    from runbook.site import load_site

    guides: dict[Path, Runbook] = {}

    def visit(parent: Runbook, chain: tuple[Path, ...]) -> None:
        for step in parent.steps:
            for d in step.directives:
                target = d.target
                if d.name != "exec" or target is None:
                    continue
                if target in chain:
                    cycle = " -> ".join(rel(p) for p in (*chain[chain.index(target) :], target))
                    what = (
                        "the guide it is in"
                        if target == chain[-1]
                        else f"which runs this guide again ({cycle})"
                    )
                    raise GuideError(
                        f"step {step.number} runs {d.args[0]}, {what}",
                        at=d.origin,
                        hint="a guide cannot run itself, directly or through the guides it runs",
                    )
                if target in guides:
                    continue
                sub = load(target, sets=sets, site=load_site(target))
                if sub.errors:
                    first = sub.errors[0]
                    raise GuideError(
                        f"{first.message} (in {rel(target)}, which step {step.number} runs)",
                        path=target,
                        at=first.origin,
                        hint=f"run 'runbook lint {rel(target)}'",
                    )
                guides[target] = sub
                visit(sub, (*chain, target))

    visit(book, (Path(os.path.normpath(book.path)),))
    return guides
