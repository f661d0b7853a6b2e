"""Fuzz runbook with generated hostile guides: count tracebacks, hangs and undocumented exits.

Each guide is a small site (a page, sometimes snippets and an ``mkdocs.yml``) built from
pieces real guides and attackers write: numbered steps and checklists, fences of every
shape, tabs and admonitions, includes (missing, cyclic, escaping), template code (sandbox
escapes, memory and time bombs), directives with huge ranges, placeholders in every shell
context with hostile values, control characters, invalid UTF-8, private-use characters,
broken front matter and broken configuration. Every guide goes through ``lint``, ``list
--json``, ``show``, ``exec --dry-run`` and ``check``/``uncheck``; one in eight is run for
real (its blocks only echo, fail or read with a declared answer, in a private folder).

The commands run in worker processes (in-process, through the click command) so that a
hang is seen by the parent, which kills and replaces the worker. Figures: guides, commands,
tracebacks, hangs, exit codes outside the documented set (0, 1, 2, 3, 4, 130), and the
slowest command.

    .venv/bin/python bench/fuzz_guides.py --guides 10000 --workers 2
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from multiprocessing.connection import Connection
from pathlib import Path

DOCUMENTED = {0, 1, 2, 3, 4, 130}
HANG_SECONDS = 60.0  # a command's own limits (render 8 s, blocks 5 s) end far sooner

HOSTILE_VALUES = [
    "x[$(touch PWNED)]",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "*",
    "-n",
    "5",
    "010",
    "a b",
    "é中🙂",
    "\\",
    "",
    "name_1",
    "\u0085",
    "x" * 3000,
]

SHELL_LINES = [
    "echo hello",
    "echo <name>",
    'echo "<name>"',
    "echo '<name>'",
    'echo "doubled: $(( <n> * 2 ))"',
    "[[ <n> -gt 3 ]] && echo many",
    "let y=<n>+1",
    "a[<n>]=1",
    "printf -v <var> %s hi",
    "cat <<EOF\n<name>\nEOF",
    "cat <<'EOF'\n<name>\nEOF",
    "true",
    "false",
    "exit 3",
    "read -r -p 'Continue? ' x",
    "printf 'Migrating: '; echo done",
    "echo $'\\x1b[31mred'",
    "printf '\\001\\002marker\\n'",
    "echo '{{ not jinja }}'",
    "set -x; echo <db-password>",
    "cd /tmp",
    "export A=1",
]
HOSTILE_LINES = [
    "eval echo <name>",
    "bash -c 'echo <name>'",
    "ssh admin@db 'echo <name>'",
    "bash <<EOF\necho <name>\nEOF",
]

FENCE_OPENERS = [
    "```bash { .run }",
    "```{ .run }",
    "```bash",
    "```",
    "```console",
    "``` { .run .bash }",
    '```bash { .run timeout="1" }',
    '```bash { .run timeout="-5" }',
    '```bash { .run timeout="nan" }',
    '```bash { .run host="nosuch" }',
    '```bash { .run expect="Continue? " send="y" }',
    '```bash { .run expect="Continue? " }',
    '```yaml title="application.yml"',
    "~~~bash { .run }",
    "````bash { .run }",
    "```bash { .run unknown=1 }",
]

TEMPLATE_BITS = [
    "{{ site_name }}",
    "{{ undefined_variable }}",
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ range(10**9)|list }}",
    "{{ 'a' * 10**10 }}",
    "{{ 9**9**9 }}",
    "{% for i in range(10**8) %}{% endfor %}",
    "{% raw %}{{ raw }}{% endraw %}",
    "{% include '_part.md' %}",
    "{% include '_missing.md' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% include '_cycle.md' %}",
    "{% if x %}unclosed",
    "{{ 'unterminated",
    "{% set x = 1 %}{{ x }}",
]

DIRECTIVES = [
    "<!-- runbook: repeat 1 -->",
    "<!-- runbook: repeat 1-100000 -->",
    "<!-- runbook: repeat 99999999999999999999 -->",
    "<!-- runbook: exec other.md -->",
    "<!-- runbook: exec guide.md -->",
    "<!-- runbook: timer start down -->",
    "<!-- runbook: timer stop down -->",
    "<!-- runbook: nonsense -->",
]

NOISE = [
    "\x00",
    "\x1b[2J",
    "\u202e",
    "\ue000\uf8ff",
    "\ufeff",
    "\r\n",
    "\t",
    "    indented code line",
    "<!-- unclosed comment",
    "<div markdown>",
    "</div>",
    "!!! danger",
    '??? note "Folded"',
    '=== "Production"',
    '=== "Sandbox"',
    "* [x] 1. Done already",
    "* [ ] 99. Far away",
    "### 0. Zero",
    "### 1. Again",
    "# Another title",
    "---",
]


SAFE_TEMPLATE_BITS = [
    "{% raw %}{{ raw }}{% endraw %}",
    "{% set x = 1 %}{{ x }}",
    "{% include '_part.md' %}",
]
SAFE_NOISE = ["!!! danger", '??? note "Folded"', "\t", "---", "<!-- a comment -->"]


def _block(rng: random.Random, hostile: bool) -> str:
    vocabulary = SHELL_LINES + HOSTILE_LINES if hostile else SHELL_LINES
    lines = [rng.choice(vocabulary) for _ in range(rng.randint(1, 4))]
    fence = rng.choice(FENCE_OPENERS if hostile else FENCE_OPENERS[:7])
    close = fence[: len(fence) - len(fence.lstrip("`~"))]
    if hostile and rng.random() < 0.05:
        close = ""
    indent = rng.choice(["", "", "", "    ", "  ", "        "]) if hostile else ""
    body = "\n".join(lines)
    text = f"{fence}\n{body}\n{close}\n"
    return "".join(indent + line + "\n" for line in text.rstrip("\n").split("\n"))


def _page(rng: random.Random) -> str:
    # Half the guides are well formed, so that the commands reach running them.
    hostile = rng.random() < 0.5
    steps = rng.randint(0, 4)
    matter = ["", "---\ntitle: T\n---\n", "---\ninputs: {n: 5}\n---\n"]
    parts = [rng.choice([*matter, "---\n: bad: [\n---\n"] if hostile else matter)]
    parts.append("# Guide {{ site_name }}\n" if hostile and rng.random() < 0.3 else "# Guide\n")
    parts.append("\n".join(f"* [{rng.choice(' x ')}] {n}. Step {n}" for n in range(1, steps + 1)))
    for n in range(1, steps + 1):
        parts.append(f"\n### {n}. Step {n}\n")
        for _ in range(rng.randint(0, 3)):
            roll = rng.random()
            if roll < 0.55:
                parts.append(_block(rng, hostile))
            elif roll < 0.7:
                parts.append(rng.choice(TEMPLATE_BITS if hostile else SAFE_TEMPLATE_BITS))
            elif roll < 0.8:
                parts.append(rng.choice(DIRECTIVES if hostile else DIRECTIVES[:1]))
            else:
                parts.append(rng.choice(NOISE if hostile else SAFE_NOISE))
            if rng.random() < 0.2:
                tab = f'=== "Tab {rng.randint(1, 2)}"\n\n'
                parts.append(tab + "    " + _block(rng, hostile).replace("\n", "\n    "))
    text = "\n".join(parts) + "\n"
    if hostile and rng.random() < 0.05:
        text = text[: rng.randint(0, len(text))]  # cut anywhere
    return text


def make_site(folder: Path, seed: int) -> Path:
    """Write guide ``seed`` into ``folder``; return the guide's path."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    guide = folder / "guide.md"
    data = _page(rng).encode("utf-8", "surrogatepass")
    if rng.random() < 0.03:
        data += b"\xff\xfe invalid utf-8"
    guide.write_bytes(data)
    (folder / "_part.md").write_text(_block(rng, False))
    (folder / "_cycle.md").write_text("{% include '_cycle.md' %}\n")
    (folder / "other.md").write_text(_page(rng))
    if rng.random() < 0.5:
        config = rng.choice(
            [
                "site_name: S\nplugins:\n  - runbook:\n      include_dir: .\n",
                "site_name: S\nplugins:\n  - runbook:\n"
                "      hosts: {db: local}\n      inputs: {n: '5'}\n",
                "site_name: S\nplugins:\n  - runbook:\n      inputs: [1, 2]\n",
                "site_name: S\nmarkdown_extensions:\n  - pymdownx.superfences\n  - no.such.ext\n",
                "site_name: [unclosed\n",
                "site_name: S\ndocs_dir: .\nplugins: [runbook]\n",
            ]
        )
        (folder / "mkdocs.yml").write_text(config)
        if "docs_dir: ." not in config:
            (folder / "mkdocs.yml").write_text(config + "docs_dir: .\n")
    return guide


def commands(seed: int) -> list[list[str]]:
    """Return the command lines guide ``seed`` goes through."""
    rng = random.Random(seed * 7919)
    value = rng.choice(HOSTILE_VALUES)
    sets = ["--set", f"name={value}", "--set", f"n={rng.choice(HOSTILE_VALUES)}"]
    sets += ["--set", f"var={rng.choice(HOSTILE_VALUES)}"]
    runs = [
        ["lint", "guide.md"],
        ["list", "guide.md", "--json"],
        ["show", "guide.md", str(rng.randint(0, 3))],
        ["exec", "guide.md", "--dry-run", *sets],
        ["check", "guide.md", "1"],
        ["uncheck", "guide.md", "1"],
    ]
    if seed % 8 == 0:
        runs.append(["exec", "guide.md", "--timeout", "5s", *sets])
    return runs


def run_one(argv: list[str]) -> tuple[int | None, str]:
    """Run ``runbook ARGV`` in this process; return its exit code and any traceback."""
    from runbook.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main.main(args=argv, prog_name="runbook", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, "Traceback" if "Traceback (most recent" in err.getvalue() else ""
    except BaseException:  # what the fuzz run looks for
        return None, traceback.format_exc()
    return 0, ""


def worker(conn: Connection, root: str) -> None:
    """Serve guides by seed: write it, run its commands, report each result."""
    import os

    while True:
        seed = conn.recv()
        if seed is None:
            return
        folder = Path(root) / f"g{seed}"
        guide = make_site(folder, seed)
        os.chdir(folder)
        for argv in commands(seed):
            started = time.monotonic()
            code, trace = run_one(argv)
            conn.send((seed, argv, code, trace, time.monotonic() - started))
        conn.send((seed, None, None, "", 0.0))
        os.chdir(root)
        shutil.rmtree(folder, ignore_errors=True)
        del guide


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guides", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="runbook-fuzz-")
    seeds = list(range(args.seed, args.seed + args.guides))
    tally: Counter[str] = Counter()
    exits: Counter[int | None] = Counter()
    problems: list[str] = []
    slowest = (0.0, "")
    pwned = reported = 0
    started = time.monotonic()
    ctx = mp.get_context("fork")

    def spawn() -> tuple[mp.process.BaseProcess, Connection]:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(child, root), daemon=True)
        proc.start()
        return proc, parent

    pool = [spawn() for _ in range(args.workers)]
    busy: dict[int, int | None] = {}
    for slot, (_, conn) in enumerate(pool):
        if seeds:
            busy[slot] = seeds.pop(0)
            conn.send(busy[slot])
    last_seen = {slot: time.monotonic() for slot in busy}
    while busy:
        for slot in list(busy):
            proc, conn = pool[slot]
            if conn.poll(0.05):
                seed, argv, code, trace, took = conn.recv()
                last_seen[slot] = time.monotonic()
                if argv is None:
                    pwned += (Path(root) / f"g{seed}" / "PWNED").exists()
                    tally["guides"] += 1
                    if seeds:
                        busy[slot] = seeds.pop(0)
                        conn.send(busy[slot])
                    else:
                        conn.send(None)
                        del busy[slot]
                    continue
                tally["commands"] += 1
                exits[code] += 1
                if took > slowest[0]:
                    slowest = (took, f"seed {seed}: runbook {' '.join(argv[:3])}")
                if trace:
                    tally["tracebacks"] += 1
                    problems.append(f"seed {seed}: runbook {' '.join(argv)}\n{trace}")
                elif code not in DOCUMENTED:
                    tally["undocumented exits"] += 1
                    problems.append(f"seed {seed}: runbook {' '.join(argv)} exited {code}")
            elif time.monotonic() - last_seen[slot] > HANG_SECONDS:
                tally["hangs"] += 1
                problems.append(f"seed {busy[slot]}: a command ran over {HANG_SECONDS:.0f} s")
                proc.kill()
                pool[slot] = spawn()
                tally["guides"] += 1
                if seeds:
                    busy[slot] = seeds.pop(0)
                    pool[slot][1].send(busy[slot])
                    last_seen[slot] = time.monotonic()
                else:
                    del busy[slot]
        if tally["guides"] >= reported + 1000:
            reported = tally["guides"] // 1000 * 1000
            print(f"  {reported} guides …", file=sys.stderr, flush=True)
    shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - started
    for text in problems[:20]:
        print(text, file=sys.stderr)
    print(f"guides              {tally['guides']}")
    print(f"commands            {tally['commands']}")
    print(f"tracebacks          {tally['tracebacks']}")
    print(f"hangs               {tally['hangs']}")
    print(f"undocumented exits  {tally['undocumented exits']}")
    print(f"values run as code  {pwned}")
    print(
        "exit codes          " + ", ".join(f"{k}: {v}" for k, v in sorted(exits.items(), key=str))
    )
    print(f"slowest command     {slowest[0]:.1f} s ({slowest[1]})")
    print(f"wall time           {elapsed:.0f} s")
    bad = tally["tracebacks"] + tally["hangs"] + tally["undocumented exits"] + pwned
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
