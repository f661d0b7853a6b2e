#!/usr/bin/env python3
"""Benchmark runbook's load path side by side with its peers, in one run.

Figures (each the median of N repetitions, with min and max):

1. Load + render + parse of a generated docs tree (2,000 pages, ~50 snippets, includes):
   runbook's ``guide.load`` for every page, versus Jinja2 + markdown-it-py alone, versus
   the mkdocs-macros plugin rendering the same pages (and runbook's own MkDocs plugin
   rendering them through the same MkDocs page objects).
2. ``runbook list`` start-up time versus ``python -c pass``.
3. ``runbook check GUIDE 50`` on a 10,000-line guide: the library call and the CLI.

Run ``python bench/bench_load.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SEED = 20250118
N_SNIPPETS = 50
GOAL_RATIO = 1.2
WHOLE = "runbook guide.load, pages compiled whole"  # the row with no tag-by-tag rendering

# -- the generated site ------------------------------------------------------------------------

EXTRA = {
    "app_name": "OpenBoxes",
    "app_version": "0.9.4",
    "db_name": "openboxes",
    "db_user": "openboxes",
    "tomcat_version": "9",
    "tomcat_service": "tomcat9",
    "backup_dir": "/var/backups/openboxes",
    "config_dir": "/opt/openboxes/.grails",
    "support": {"forum": "https://community.example.org", "email": "support@example.org"},
}

VERBS = [
    "Install",
    "Configure",
    "Back up",
    "Restore",
    "Upgrade",
    "Verify",
    "Stop",
    "Start",
    "Migrate",
    "Rotate",
    "Check",
    "Deploy",
    "Provision",
    "Import",
    "Export",
    "Route",
    "Deprovision",
    "Patch",
    "Tune",
    "Archive",
]
OBJECTS = [
    "the database",
    "the application server",
    "Tomcat",
    "the reverse proxy",
    "MySQL",
    "the TLS certificates",
    "the new server",
    "the old server",
    "the backups",
    "the cron jobs",
    "the log files",
    "the configuration",
    "the firewall",
    "the load balancer",
    "the mail relay",
    "the search index",
    "the file store",
    "the monitoring agent",
    "the DNS records",
    "the service account",
]
WORDS = [
    "the",
    "server",
    "database",
    "backup",
    "configuration",
    "service",
    "request",
    "installation",
    "upgrade",
    "release",
    "operator",
    "folder",
    "file",
    "version",
    "user",
    "network",
    "port",
    "process",
    "system",
    "check",
    "log",
    "restore",
    "migration",
    "schema",
    "record",
    "table",
    "value",
    "setting",
    "instance",
    "host",
    "machine",
    "storage",
    "is",
    "are",
    "will",
    "should",
    "can",
    "must",
    "before",
    "after",
    "when",
    "while",
    "with",
    "without",
    "for",
    "from",
    "into",
    "onto",
    "a",
    "an",
    "and",
    "or",
    "but",
    "not",
    "only",
    "also",
    "then",
    "again",
    "once",
    "every",
    "each",
    "new",
    "old",
    "current",
    "previous",
]
COMMANDS = [
    "sudo systemctl stop {{ tomcat_service }}",
    "sudo systemctl start {{ tomcat_service }}",
    "sudo systemctl status {{ tomcat_service }} --no-pager",
    "cd {{ backup_dir }}",
    "ls -l {{ config_dir }}",
    "sudo tail -n 200 /var/log/{{ tomcat_service }}/catalina.out",
    "df -h /var/lib/mysql",
    "free -m",
    "sudo apt-get update",
    "sudo apt-get install -y openjdk-8-jdk-headless",
    "curl -fsS http://<app-server-ip>:8080/openboxes/api/status",
    "scp <username>@<old-server>:{{ backup_dir }}/<backup-name>.sql.gz .",
    "ssh <username>@<database-server-ip> uptime",
    "mysqldump -u {{ db_user }} -p --single-transaction {{ db_name }} | gzip > dump.sql.gz",
    "gunzip -c <backup-name>.sql.gz | mysql -u {{ db_user }} -p {{ db_name }}",
    "sha256sum -c <backup-name>.sha256",
    "sudo cp {{ config_dir }}/openboxes.yml {{ config_dir }}/openboxes.yml.bak",
    "grep -c ERROR /var/log/{{ tomcat_service }}/catalina.out || true",
    "export RELEASE=v{{ app_version }}",
    'echo "{{ app_name }} $RELEASE"',
    "sudo chown -R tomcat:tomcat /var/lib/openboxes",
    "sudo nginx -t",
    "sudo systemctl reload nginx",
    "openssl x509 -noout -enddate -in /etc/ssl/certs/<certificate-name>.pem",
]
TABS = [
    ("mysqldump", "SSH / Secure Shell", "Cron"),
    ("Ubuntu", "Debian", "Docker"),
    ("Production", "Staging"),
    ("systemd", "SysV init"),
]


def words(rng: random.Random, n: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(n))
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random, lines: int, indent: str = "") -> list[str]:
    return [indent + words(rng, rng.randint(9, 16)) for _ in range(lines)]


def commands(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(COMMANDS) for _ in range(n)]


def fenced(rng: random.Random, indent: str, info: str = "bash", n: int | None = None) -> list[str]:
    body = commands(rng, n or rng.randint(1, 4))
    return [f"{indent}```{info}", *[indent + c for c in body], f"{indent}```"]


def run_block(rng: random.Random, indent: str) -> list[str]:
    attrs = rng.choice(
        [
            "{ .run }",
            '{ .run timeout="900" }',
            '{ .run host="new" }',
            '{ .run expect="Enter password:" send="<db_password>" }',
        ]
    )
    return fenced(rng, indent, f"bash {attrs}")


def indented_code(rng: random.Random, indent: str) -> list[str]:
    return [indent + "    " + c for c in commands(rng, rng.randint(1, 3))]


def admonition(rng: random.Random, indent: str) -> list[str]:
    kind = rng.choice(["warning", "danger", "tip", "note", "info"])
    out = [f"{indent}!!! {kind}", ""]
    out += paragraph(rng, rng.randint(1, 3), indent + "    ")
    return out


def tabs(rng: random.Random, indent: str, depth: str = "####") -> list[str]:
    out: list[str] = []
    labels = rng.choice(TABS)
    inner = indent + "    "
    for label in labels:
        out += [f'{indent}=== "{label}"', ""]
        for sub in range(1, rng.randint(2, 3) + 1):
            out += [f"{inner}{depth} {sub}. {rng.choice(VERBS)} {rng.choice(OBJECTS)}", ""]
            out += [*paragraph(rng, rng.randint(1, 2), inner), ""]
            choice = rng.random()
            if choice < 0.4:
                out += [*fenced(rng, inner), ""]
            elif choice < 0.7:
                out += [*indented_code(rng, inner), ""]
            else:
                out += [*run_block(rng, inner), ""]
    return out


def snippet_text(rng: random.Random, i: int, names: list[str]) -> str:
    out = [*paragraph(rng, rng.randint(2, 4)), ""]
    out += tabs(rng, "")
    out += ["", *admonition(rng, ""), ""]
    if rng.random() < 0.5:
        out += ["Check that {{ app_name }} is reachable at `<app-server-ip>`:", ""]
        out += [
            "```console",
            "$ curl -s http://localhost:8080/openboxes/api/status",
            '{"status":"OK"}',
            "```",
            "",
        ]
    if rng.random() < 0.3:
        out += [
            '```yaml title="{{ config_dir }}/openboxes.yml"',
            "dataSource:",
            "  url: jdbc:mysql://<database-server-ip>:3306/{{ db_name }}",
            "  username: {{ db_user }}",
            "```",
            "",
        ]
    if rng.random() < 0.25:
        out += [
            "{% raw %}",
            "```bash",
            "docker ps --format '{{.Names}}'",
            'echo "${#SERVERS[@]} servers"',
            "```",
            "{% endraw %}",
            "",
        ]
    if rng.random() < 0.4:
        out += [
            "Before you go on:",
            "",
            "* [ ] the service is stopped",
            "* [ ] the backup is copied",
            "",
        ]
    # Snippets can include other snippets (only later ones: no cycles).
    if i < len(names) - 1 and rng.random() < 0.35:
        out += [f"{{% include '{rng.choice(names[i + 1 :])}' %}}", ""]
    out += paragraph(rng, rng.randint(1, 2))
    return "\n".join(out) + "\n"


def page_text(rng: random.Random, number: int, names: list[str]) -> str:
    steps = rng.randint(4, 9)
    titles = [f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}" for _ in range(steps)]
    out: list[str] = []
    if number % 10 == 0:
        out += ["---", f"title: Procedure {number}", f"ticket: OPS-{1000 + number}", "---", ""]
    out += [f"# {rng.choice(VERBS)} {rng.choice(OBJECTS)} ({number})", ""]
    out += [*paragraph(rng, rng.randint(2, 3)), ""]
    out += ["This guide applies to {{ app_name }} {{ app_version }} and later.", ""]
    if number % 10 == 0:
        out += ["Record the work under ticket {{ ticket }}.", ""]
    out += [*admonition(rng, ""), ""]
    out += ["## Overview", "", "Complete the following steps:", ""]
    out += [f"* [{'x' if rng.random() < 0.1 else ' '}] {n}. {t}" for n, t in enumerate(titles, 1)]
    out += ["", "## Step-by-step instructions", ""]
    style = rng.random()
    includes = 0 if rng.random() < 0.15 else rng.randint(1, 4)
    include_at = set(rng.sample(range(1, steps + 1), min(includes, steps)))
    for n, title in enumerate(titles, 1):
        if style < 0.7:
            head = f"### {n}. {title}"
        elif style < 0.85:
            head = f"### {n}.{title}"
        else:
            head = f"## Step {n}: {title}"
        out += [head, ""]
        out += [*paragraph(rng, rng.randint(1, 3)), ""]
        if rng.random() < 0.3:
            out += [*admonition(rng, ""), ""]
        kind = rng.random()
        if kind < 0.3:
            out += [*fenced(rng, ""), ""]
        elif kind < 0.5:
            out += [*run_block(rng, ""), ""]
        elif kind < 0.7:
            out += [*indented_code(rng, ""), ""]
        elif kind < 0.8:
            out += [*tabs(rng, "", "####"), ""]
        if n in include_at:
            out += [f"{{% include '{rng.choice(names)}' %}}", ""]
        if rng.random() < 0.3:
            out += [
                "Ask {{ support.email }} if the output differs from what `<username>` expects.",
                "",
            ]
    return "\n".join(out) + "\n"


def mkdocs_yml(plugin: str) -> str:
    if plugin == "runbook":
        plugins = (
            "  - runbook:\n      include_dir: snippets\n"
            "      hosts:\n        new: deploy@new-server\n"
        )
    else:
        plugins = "  - macros:\n      include_dir: snippets\n"
    extra = json.dumps(EXTRA)  # JSON is YAML
    return (
        "site_name: Bench\n"
        "docs_dir: docs\n"
        "theme:\n  name: material\n"
        f"plugins:\n  - search\n{plugins}"
        "markdown_extensions:\n  - admonition\n  - attr_list\n  - pymdownx.details\n"
        "  - pymdownx.superfences\n  - pymdownx.tabbed:\n      alternate_style: true\n"
        "  - pymdownx.tasklist:\n      custom_checkbox: true\n"
        f"extra: {extra}\n"
    )


def generate_site(root: Path, pages: int, seed: int = SEED) -> list[Path]:
    """Write the generated site under ``root``; return its pages in order."""
    rng = random.Random(seed)
    (root / "mkdocs.yml").write_text(mkdocs_yml("runbook"))
    (root / "mkdocs-macros.yml").write_text(mkdocs_yml("macros"))
    names = []
    for i in range(N_SNIPPETS):
        group = ["common", "database", "server", "network", "checks"][i % 5]
        names.append(
            f"admin-guide/{group}/_{i:02d}_{rng.choice(VERBS).lower().replace(' ', '_')}.md"
        )
    for i, name in enumerate(names):
        path = root / "snippets" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(snippet_text(rng, i, names))
    paths = []
    for n in range(1, pages + 1):
        path = root / "docs" / f"section-{(n - 1) // 100:02d}" / f"page-{n:04d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page_text(rng, n, names))
        paths.append(path)
    return paths


def big_guide_text(rng: random.Random, lines: int = 10_000, steps: int = 100) -> str:
    """A single guide of ``lines`` lines with a ``steps``-item overview checklist."""
    out = ["# A very long upgrade", "", "## Overview", ""]
    out += [
        f"* [ ] {n}. {rng.choice(VERBS)} {rng.choice(OBJECTS)} (part {n})"
        for n in range(1, steps + 1)
    ]
    out += ["", "## Steps", ""]
    per_step = (lines - len(out)) // steps
    for n in range(1, steps + 1):
        block = [f"### {n}. {rng.choice(VERBS)} {rng.choice(OBJECTS)}", ""]
        while len(block) < per_step - 8:
            kind = rng.random()
            if kind < 0.35:
                block += [*paragraph(rng, rng.randint(2, 4)), ""]
            elif kind < 0.55:
                block += [
                    ln.replace("{{ ", "").replace(" }}", "")
                    for ln in fenced(rng, "", n=rng.randint(2, 5))
                ] + [""]
            elif kind < 0.7:
                block += [ln.replace("{{ ", "").replace(" }}", "") for ln in run_block(rng, "")] + [
                    ""
                ]
            elif kind < 0.85:
                block += [
                    ln.replace("{{ ", "").replace(" }}", "") for ln in indented_code(rng, "")
                ] + [""]
            else:
                block += [*admonition(rng, ""), ""]
        block = block[: per_step - 1]
        block += [""] * (per_step - len(block))
        out += block
    out += [""] * (lines - len(out))
    return "\n".join(out[:lines]) + "\n"


# -- measuring ---------------------------------------------------------------------------------


class Figure:
    """One row of the table: repeated timings of one thing."""

    def __init__(
        self,
        group: str,
        name: str,
        samples: list[float],
        unit: str = "s",
        note: str = "",
        cpu: list[float] | None = None,
    ) -> None:
        self.group, self.name, self.samples, self.unit, self.note = group, name, samples, unit, note
        self.cpu = cpu or []
        """CPU time of this process for the same repetitions (in-process figures only)."""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None

    def json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "n": len(self.samples),
            "cpu_median": self.cpu_median,
            "note": self.note,
        }


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:7.3f} s "
    if seconds >= 1e-3:
        return f"{seconds * 1e3:7.2f} ms"
    return f"{seconds * 1e6:7.1f} µs"


def timed(func: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def repeat_interleaved(
    jobs: dict[str, Callable[[], Any]], reps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time each job ``reps`` times, round robin, so machine noise hits them all alike."""
    for _ in range(warmup):
        for job in jobs.values():
            job()
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            samples[name].append(timed(job))
    return samples


def site_files(root: Path, pages: list[Path]) -> list[Any]:
    """Return MkDocs File objects for ``pages`` of the generated site."""
    from mkdocs.structure.files import File

    return [
        File(
            str(p.relative_to(root / "docs")),
            str(root / "docs"),
            str(root / "site"),
            use_directory_urls=True,
        )
        for p in pages
    ]


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence MkDocs' and mkdocs-macros' chatter while timing."""
    logger = logging.getLogger("mkdocs")
    old = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old[0])


# -- 1. the docs tree --------------------------------------------------------------------------


def have_macros() -> bool:
    """Whether the mkdocs-macros plugin can be imported."""
    try:
        import mkdocs_macros.plugin  # noqa: F401
    except ImportError:
        return False
    return True


def tree_jobs(
    root: Path, pages: list[Path]
) -> tuple[dict[str, Callable[[], dict[str, tuple[float, float]] | None]], list[str]]:
    """Return the timed jobs over the tree, and notes on what was skipped."""
    import jinja2
    from markdown_it import MarkdownIt

    import runbook.blocks
    import runbook.guide
    import runbook.inputs
    import runbook.render
    import runbook.site

    notes: list[str] = []
    snippets = root / "snippets"

    def runbook_load(whole_pages: bool = False) -> None:
        # Each repetition starts cold, as a command does: what runbook reads once and keeps
        # (a block's placeholder uses, a fence's attributes) is forgotten first.
        runbook.inputs.forget_uses()
        runbook.blocks.fence_attrs.cache_clear()
        site = runbook.site.load_site(pages[0])
        renderer = runbook.render.Renderer(site.include_dir, whole_pages=whole_pages)
        for page in pages:
            runbook.guide.load(page, site=site, renderer=renderer)

    md = MarkdownIt("commonmark").enable("table")

    def baseline() -> None:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(snippets))
        for page in pages:
            text = page.read_text(encoding="utf-8")
            meta: dict[str, Any] = {}
            if text.startswith("---\n"):  # what mkdocs strips before any plugin sees the page
                from mkdocs.utils.meta import get_data

                text, meta = get_data(text)
            out = env.from_string(text).render({**EXTRA, **meta})
            md.parse(out)

    jobs: dict[str, Callable[[], dict[str, tuple[float, float]] | None]] = {
        "runbook guide.load (render + parse)": runbook_load,
        # The same load with every page compiled as one template (what pages using {% if %},
        # {% for %} and the like get): the cost of the line map and the model on Jinja's
        # own footing, next to the baseline.
        WHOLE: lambda: runbook_load(whole_pages=True),
        "Jinja2 + markdown-it-py alone": baseline,
    }

    # The two MkDocs plugins, driven through real MkDocs page objects.
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

    def plugin_job(
        config_name: str, plugin_name: str, label: str, parse_label: str | None
    ) -> Callable[[], dict[str, tuple[float, float]]]:
        """Time a plugin over the tree; with ``parse_label``, also parse its output.

        Returns ``{label: render time, parse_label: render + parse time}``, each as
        (wall, CPU) seconds: the parse of each page is timed apart, so one pass gives both.
        """

        def job() -> dict[str, tuple[float, float]]:
            with quiet_logs():
                config = load_config(config_file=str(root / config_name))
            plugin = config.plugins[plugin_name]
            files = site_files(root, pages)
            all_files = Files(files)
            parsing = parsing_cpu = 0.0
            clock, cpu = time.perf_counter, time.process_time
            start, start_cpu = clock(), cpu()
            # mkdocs-macros resolves include_dir against the working directory, as
            # `mkdocs build` run from the project root does.
            with quiet_logs(), contextlib.chdir(root):
                plugin.on_config(config)
                for file in files:
                    page = Page(None, file, config)
                    page.read_source(config)
                    out = plugin.on_page_markdown(
                        page.markdown, page=page, config=config, files=all_files
                    )
                    if parse_label:
                        t0, c0 = clock(), cpu()
                        md.parse(out)
                        parsing += clock() - t0
                        parsing_cpu += cpu() - c0
            total, total_cpu = clock() - start, cpu() - start_cpu
            result = {label: (total - parsing, total_cpu - parsing_cpu)}
            if parse_label:
                result[parse_label] = (total, total_cpu)
            return result

        return job

    jobs["runbook MkDocs plugin (render only)"] = plugin_job(
        "mkdocs.yml", "runbook", "runbook MkDocs plugin (render only)", None
    )
    if not have_macros():
        notes.append(
            "mkdocs-macros rows SKIPPED: mkdocs-macros-plugin is not installed "
            "(pip install -r bench/requirements.txt)"
        )
    else:
        jobs["mkdocs-macros plugin (render only)"] = plugin_job(
            "mkdocs-macros.yml",
            "macros",
            "mkdocs-macros plugin (render only)",
            "mkdocs-macros + markdown-it parse",
        )
    return jobs, notes


def plugin_outputs(root: Path, config_name: str, plugin_name: str, pages: list[Path]) -> list[str]:
    """Return what a MkDocs plugin's on_page_markdown makes of ``pages``."""
    from mkdocs.config import load_config
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

    with quiet_logs(), contextlib.chdir(root):
        config = load_config(config_file=str(root / config_name))
        plugin = config.plugins[plugin_name]
        plugin.on_config(config)
        files = site_files(root, pages)
        outputs = []
        for file in files:
            page = Page(None, file, config)
            page.read_source(config)
            outputs.append(
                plugin.on_page_markdown(page.markdown, page=page, config=config, files=Files(files))
            )
    return outputs


def check_same_output(root: Path, pages: list[Path], names: list[str]) -> None:
    """Make sure every contender renders the sample pages to the same markdown."""
    import jinja2
    from mkdocs.utils.meta import get_data

    import runbook.guide
    import runbook.render

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(root / "snippets"))
    expected = []
    for page in pages:
        text, meta = get_data(page.read_text(encoding="utf-8"))
        expected.append(env.from_string(text).render({**EXTRA, **meta}).strip())
    whole = runbook.render.Renderer(root / "snippets", whole_pages=True)
    contenders = {
        "runbook guide.load": [runbook.guide.load(p).rendered.text for p in pages],
        "runbook guide.load, pages compiled whole": [
            runbook.guide.load(p, renderer=whole).rendered.text for p in pages
        ],
        "runbook plugin": plugin_outputs(root, "mkdocs.yml", "runbook", pages),
    }
    if "mkdocs-macros plugin (render only)" in names:
        contenders["mkdocs-macros"] = plugin_outputs(root, "mkdocs-macros.yml", "macros", pages)
    for name, outputs in contenders.items():
        for page, want, got in zip(pages, expected, outputs, strict=True):
            if got.strip() != want:
                raise SystemExit(
                    f"{name} renders {page.relative_to(root)} differently from "
                    "plain Jinja2: the comparison would be meaningless"
                )


def run_tree(root: Path, pages: list[Path], reps: int) -> tuple[list[Figure], list[str]]:
    jobs, notes = tree_jobs(root, pages)
    check_same_output(root, pages[:: max(1, len(pages) // 40)], list(jobs))
    warm, _ = tree_jobs(root, pages[:100])
    for job in warm.values():  # warm up: imports, file cache, regex and code caches
        job()
    samples: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(reps):
        for name, job in jobs.items():
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            result = job()
            total = (time.perf_counter() - start, time.process_time() - start_cpu)
            # The plugin jobs time themselves: MkDocs' config loading and page-object
            # set-up are left out, and one pass gives the render and render + parse rows.
            for row, (wall, used) in (result or {name: total}).items():
                samples.setdefault(row, []).append(wall)
                cpu.setdefault(row, []).append(used)
    figures = [
        Figure("tree", name, s, note=f"{len(pages)} pages", cpu=cpu[name])
        for name, s in samples.items()
    ]
    return figures, notes


def run_build(root: Path, reps: int) -> list[Figure]:
    """Full ``mkdocs build`` runs of the tree with each plugin, interleaved (--build only)."""
    plugins = [("runbook", "mkdocs.yml")]
    if have_macros():
        plugins.append(("macros", "mkdocs-macros.yml"))
    samples: dict[str, list[float]] = {name: [] for name, _ in plugins}
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    for _ in range(reps):
        for plugin, config in plugins:
            out = root / f"site-{plugin}"
            cmd = [
                sys.executable,
                "-m",
                "mkdocs",
                "build",
                "-q",
                "-f",
                str(root / config),
                "-d",
                str(out),
            ]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
            samples[plugin].append(time.perf_counter() - start)
            shutil.rmtree(out, ignore_errors=True)
            if proc.returncode != 0:
                raise SystemExit(f"mkdocs build with {plugin} failed: {proc.stderr[-800:]}")
    return [
        Figure("build", f"mkdocs build with {plugin}", s, note="subprocess, whole build")
        for plugin, s in samples.items()
    ]


def phase_breakdown(root: Path, pages: list[Path], reps: int = 3) -> None:
    """Print wall-clock time per phase, runbook next to the baseline (no profiler overhead)."""
    import jinja2
    from markdown_it import MarkdownIt
    from mkdocs.utils.meta import get_data

    import runbook.guide
    import runbook.parse
    import runbook.render
    import runbook.site
    import runbook.walk

    site = runbook.site.load_site(pages[0])
    sources = [p.read_text(encoding="utf-8") for p in pages]
    phases: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        phases.setdefault(name, []).append(seconds)

    our_md = runbook.walk.make_parser()
    finder = runbook.guide.block_finder(site)
    plain_md = MarkdownIt("commonmark").enable("table")
    for _ in range(reps):
        renderer = runbook.render.Renderer(site.include_dir)
        gc.collect()
        t0 = time.perf_counter()
        rendered = [runbook.guide.render_guide(p, site=site, renderer=renderer) for p in pages]
        t1 = time.perf_counter()
        for r in rendered:
            finder.find(r.text)
        t_blocks = time.perf_counter()
        for r in rendered:
            our_md.parse(r.text, {"blocks": {}})
        t2 = time.perf_counter()
        for r in rendered:
            runbook.parse.build(r)
        t3 = time.perf_counter()
        for r in rendered:
            plain_md.parse(r.text)
        t4 = time.perf_counter()
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(root / "snippets"))
        for text in sources:
            body, meta = get_data(text) if text.startswith("---") else (text, {})
            env.from_string(body).render({**EXTRA, **meta})
        t5 = time.perf_counter()
        add("runbook render_guide (read, front matter, Jinja tag by tag, unmark)", t1 - t0)
        add("runbook code blocks as the site renders them (runbook.blocks)", t_blocks - t1)
        add("runbook markdown-it parser (commonmark + container rule)", t2 - t_blocks)
        add("runbook parse.build (blocks + parse + walk + model)", t3 - t2)
        add("  of which walk + model (build - blocks - parse)", (t3 - t2) - (t2 - t1))
        add("baseline Jinja2 from_string + render", t5 - t4)
        add("baseline MarkdownIt('commonmark') parse of the same text", t4 - t3)
    print(f"\nPhase breakdown over {len(pages)} pages (wall clock, median of {reps}):")
    for name, samples in phases.items():
        print(f"  {name:<66}{fmt(statistics.median(samples)):>11}")


def profile_tree(pages: list[Path], top: int = 25) -> None:
    """Print where runbook's load of the tree spends its time (cProfile, own time)."""
    import cProfile
    import pstats

    import runbook.guide
    import runbook.render
    import runbook.site

    site = runbook.site.load_site(pages[0])
    renderer = runbook.render.Renderer(site.include_dir)
    prof = cProfile.Profile()
    prof.enable()
    for page in pages:
        runbook.guide.load(page, site=site, renderer=renderer)
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    by_file: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = _short(filename)
        by_file[short] = by_file.get(short, 0.0) + tt
        rows.append((tt, ct, f"{short}:{line}:{func}"))
    print(
        f"\nProfile of runbook guide.load over {len(pages)} pages "
        f"(cProfile, {total:.2f} s under the profiler)"
    )
    print("  own time by module:")
    for name, tt in sorted(by_file.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {tt / total:6.1%}  {name}")
    print("  functions by own time (own %, cumulative %):")
    for tt, ct, name in sorted(rows, reverse=True)[:top]:
        print(f"    {tt / total:6.1%} {ct / total:6.1%}  {name}")
    print("  runbook functions by cumulative time:")
    ours = [r for r in rows if r[2].startswith("runbook/")]
    for tt, ct, name in sorted(ours, key=lambda r: -r[1])[:15]:
        print(f"    {ct / total:6.1%} (own {tt / total:5.1%})  {name}")


def _short(filename: str) -> str:
    norm = filename.replace(os.sep, "/")
    for marker in ("/site-packages/", "/runbook/", "/lib/python"):
        if marker in norm:
            idx = norm.rindex(marker)
            tail = norm[idx + len(marker) :]
            return ("runbook/" + tail) if marker == "/runbook/" else tail
    return norm


# -- 2. start-up -------------------------------------------------------------------------------


def console_script() -> str | None:
    candidate = Path(sys.executable).parent / "runbook"
    if candidate.exists():
        return str(candidate)
    return shutil.which("runbook")


def run_subprocesses(
    commands: dict[str, list[str]], reps: int, cwd: Path, check_ok: bool = True
) -> dict[str, list[float]]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")

    def job(cmd: list[str]) -> Callable[[], None]:
        def run() -> None:
            proc = subprocess.run(
                cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if check_ok and proc.returncode != 0:
                raise SystemExit(
                    f"{' '.join(cmd)} failed ({proc.returncode}): "
                    f"{proc.stderr.decode(errors='replace')[-500:]}"
                )

        return run

    return repeat_interleaved({name: job(cmd) for name, cmd in commands.items()}, reps)


def run_startup(root: Path, guide: Path, reps: int) -> list[Figure]:
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -m runbook list GUIDE": [py, "-m", "runbook", "list", str(guide)],
    }
    script = console_script()
    if script:
        commands["runbook list GUIDE (console script)"] = [script, "list", str(guide)]
    commands["python -c 'import runbook.cli'"] = [py, "-c", "import runbook.cli"]
    samples = run_subprocesses(commands, reps, root)
    return [Figure("startup", name, s) for name, s in samples.items()]


# -- 3. check on a big guide -------------------------------------------------------------------


def run_check(root: Path, reps: int) -> list[Figure]:
    import runbook.checklist
    import runbook.guide

    folder = root / "big"
    folder.mkdir()
    guide = folder / "long-upgrade.md"
    original = big_guide_text(random.Random(SEED + 1)).encode()
    guide.write_bytes(original)
    assert original.count(b"\n") == 10_000

    def restore() -> None:
        guide.write_bytes(original)

    book = runbook.guide.load(guide)
    assert len(book.steps) == 100 and book.step(50) is not None, "generated guide misread"

    load_s, set_s, both_s = [], [], []
    for _ in range(reps + 1):
        restore()
        gc.collect()
        t0 = time.perf_counter()
        book = runbook.guide.load(guide)
        t1 = time.perf_counter()
        changed = runbook.checklist.set_steps(book, [50], True)
        t2 = time.perf_counter()
        assert changed == [50], changed
        load_s.append(t1 - t0)
        set_s.append(t2 - t1)
        both_s.append(t2 - t0)
    load_s, set_s, both_s = load_s[1:], set_s[1:], both_s[1:]  # first round warms up
    assert b"* [x] 50." in guide.read_bytes()

    script = console_script()
    cli = [script] if script else [sys.executable, "-m", "runbook"]
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    cli_s = []
    for _ in range(reps + 1):
        restore()
        start = time.perf_counter()
        proc = subprocess.run(
            [*cli, "check", str(guide), "50"], cwd=folder, env=env, capture_output=True, text=True
        )
        cli_s.append(time.perf_counter() - start)
        if proc.returncode != 0 or "ticked" not in proc.stdout:
            raise SystemExit(f"runbook check failed ({proc.returncode}): {proc.stderr[-500:]}")
    cli_s = cli_s[1:]
    note = "10,000 lines, 100 steps"
    return [
        Figure("check", "guide.load of the 10,000-line guide", load_s, note=note),
        Figure("check", "checklist.set_steps(book, [50], True)", set_s, note=note),
        Figure("check", "load + set_steps (library)", both_s, note=note),
        Figure("check", "runbook check GUIDE 50 (CLI subprocess)", cli_s, note=note),
    ]


# -- the report --------------------------------------------------------------------------------


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures) + 2
    for group in dict.fromkeys(f.group for f in figures):
        rows = [f for f in figures if f.group == group]
        has_cpu = any(f.cpu for f in rows)
        print(f"\n[{TITLES[group]}]")
        print(
            f"  {'':<{width}}{'median':>11}{'min':>11}{'max':>11}   n"
            + (f"{'CPU median':>13}" if has_cpu else "")
        )
        for fig in rows:
            print(
                f"  {fig.name:<{width}}{fmt(fig.median):>11}{fmt(min(fig.samples)):>11}"
                f"{fmt(max(fig.samples)):>11}  {len(fig.samples):>2}"
                + (f"{fmt(fig.cpu_median):>13}" if fig.cpu_median is not None else "")
            )


TITLES = {
    "tree": "1. Load + render + parse of the generated docs tree",
    "build": "1b. Full mkdocs build of the same tree (--build)",
    "startup": "2. Start-up (subprocess, wall clock)",
    "check": "3. runbook check on a 10,000-line guide",
}


def ratios(figures: list[Figure], pages: int) -> dict[str, float]:
    by = {f.name: f.median for f in figures}
    by_cpu = {f.name: f.cpu_median for f in figures if f.cpu_median is not None}
    rb_name = "runbook guide.load (render + parse)"
    pairs = {
        "runbook_load / baseline": (rb_name, "Jinja2 + markdown-it-py alone"),
        "runbook_load_whole_pages / baseline": (WHOLE, "Jinja2 + markdown-it-py alone"),
        "runbook_plugin / macros_plugin": (
            "runbook MkDocs plugin (render only)",
            "mkdocs-macros plugin (render only)",
        ),
        "runbook_load / (macros + parse)": (rb_name, "mkdocs-macros + markdown-it parse"),
    }
    out: dict[str, float] = {}
    for label, (a, b) in pairs.items():
        if a in by and b in by:
            out[label] = by[a] / by[b]
        if a in by_cpu and b in by_cpu:
            out[f"{label} (CPU time)"] = by_cpu[a] / by_cpu[b]  # type: ignore[operator]
    for name, key in ((rb_name, "runbook"), ("Jinja2 + markdown-it-py alone", "baseline")):
        if name in by:
            out[f"{key} per page (ms)"] = by[name] / pages * 1e3
    py = by.get("python -c pass")
    for name in ("python -m runbook list GUIDE", "runbook list GUIDE (console script)"):
        if py and name in by:
            out[f"{name} - python -c pass (ms)"] = (by[name] - py) * 1e3
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200 pages, few repetitions"
    )
    parser.add_argument("--pages", type=int, help="pages in the generated tree (default 2000)")
    parser.add_argument(
        "--reps", type=int, help="repetitions of the tree figures (default 3; 2 with --quick)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write figures as JSON")
    parser.add_argument(
        "--build",
        action="store_true",
        help="also time one full `mkdocs build` with each plugin (slow)",
    )
    parser.add_argument(
        "--build-reps",
        type=int,
        default=1,
        metavar="N",
        help="repetitions of each full build (default 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile runbook's load of the tree and print hot spots",
    )
    parser.add_argument(
        "--only",
        choices=["tree", "startup", "check"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="generate the tree into DIR and keep it (DIR must not exist)",
    )
    args = parser.parse_args(argv)

    pages_n = args.pages or (200 if args.quick else 2000)
    tree_reps = args.reps or (2 if args.quick else 3)
    proc_reps = 5 if args.quick else 20
    check_reps = 3 if args.quick else 10
    parts = set(args.only or ["tree", "startup", "check"])

    import jinja2
    import markdown_it
    import mkdocs

    try:
        from importlib.metadata import version

        macros_version = version("mkdocs-macros-plugin")
    except Exception:
        macros_version = "not installed"
    print(
        f"runbook load benchmark: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, Jinja2 {jinja2.__version__}, markdown-it-py "
        f"{markdown_it.__version__}, mkdocs {mkdocs.__version__}, "
        f"mkdocs-macros-plugin {macros_version}"
    )
    print(
        f"tree: {pages_n} pages, {N_SNIPPETS} snippets, seed {SEED}; "
        f"repetitions: tree {tree_reps}, subprocess {proc_reps}, check {check_reps}; "
        "figures are median / min / max wall-clock times (tree rows: also CPU time)"
    )

    figures: list[Figure] = []
    notes: list[str] = []
    t_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True)
            root = args.keep
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="runbook-bench-")))
        pages = generate_site(root, pages_n)
        size = sum(p.stat().st_size for p in pages)
        lines = sum(p.read_bytes().count(b"\n") for p in pages)
        print(f"generated in {root}: {lines:,} page lines ({size / 1e6:.1f} MB)", flush=True)
        if "tree" in parts:
            tree_figs, tree_notes = run_tree(root, pages, tree_reps)
            figures += tree_figs
            notes += tree_notes
            if args.build:
                figures += run_build(root, args.build_reps)
        if "startup" in parts:
            figures += run_startup(root, pages[0], proc_reps)
        if "check" in parts:
            figures += run_check(root, check_reps)
        print_table(figures)
        derived = ratios(figures, pages_n)
        print("\n[Derived]")
        for name, value in derived.items():
            if "ms" in name:
                print(f"  {name:<60}{value:8.2f}")
            else:
                goal = (
                    f"   (goal <= {GOAL_RATIO}x)"
                    if name.startswith("runbook_load / baseline")
                    else ""
                )
                print(f"  {name:<60}{value:8.2f}x{goal}")
        for note in notes:
            print(f"\nNOTE: {note}")
        if "tree" in parts:
            print(
                "\nWhat was compared: runbook guide.load = read + front matter + Jinja "
                "render with line map (tag by tag where the page allows it) + markdown-it "
                "parse + model build, one Site and one Renderer for all pages; 'pages "
                "compiled whole' = the same with every page compiled as one Jinja template, "
                "as the baseline does; baseline = one jinja2.Environment(FileSystemLoader("
                "snippets)) and one MarkdownIt('commonmark').enable('table'): read, "
                "from_string().render(extra), parse; plugin rows = each plugin's "
                "on_config + for every page MkDocs' Page.read_source + on_page_markdown "
                "(MkDocs config loading excluded)."
            )
        if args.profile and "tree" in parts:
            phase_breakdown(root, pages)
            profile_tree(pages)
        rb_ratio = derived.get("runbook_load / baseline")
        if rb_ratio is not None and rb_ratio > GOAL_RATIO and not args.profile:
            print(
                f"\nrunbook's load is {rb_ratio:.2f}x the baseline (goal {GOAL_RATIO}x): "
                "rerun with --profile to see where the time goes."
            )
    elapsed = time.perf_counter() - t_start
    print(f"\ntotal benchmark time {elapsed:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "pages": pages_n,
                    "seed": SEED,
                    "figures": [f.json() for f in figures],
                    "derived": derived,
                    "notes": notes,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
