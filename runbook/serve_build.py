"""The site ``runbook serve`` shows: built by mkdocs itself into a private folder, and the
files it comes from watched, telling a change of text (build again) from a change of boxes
or of the runtime folder (only the live state moved).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import ConfigError
from runbook.live import content_key
from runbook.serve_page import SERVE_ENV

# A file's identity and last change, as cheap to read as a look at the folder.
Stamp = tuple[int, int, int]


class SiteBuild:
    """Builds of one site into folders of their own, the newest one served."""

    def __init__(self, config_file: Path, workdir: Path) -> None:
        """Build the site of ``config_file`` into new folders under ``workdir``."""
        self.config_file = config_file
        self.workdir = workdir
        self.current: Path | None = None
        """The folder of the newest good build, None before the first."""
        self._count = 0
        self._lock = threading.Lock()
        # mkdocs' own command line shows its warnings; called as a library it would not.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("mkdocs: %(levelname)s: %(message)s"))
        logging.getLogger("mkdocs").addHandler(handler)

    def build(self) -> Path:
        """Build the site with mkdocs and runbook's plugin in serve mode; return its folder.

        A build that fails raises ConfigError and leaves the previous one served.
        """
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
        from mkdocs.exceptions import MkDocsException

        with self._lock:  # one build at a time: plugins keep state between hooks
            self._count += 1
            out = self.workdir / f"site-{self._count}"
            os.environ[SERVE_ENV] = "1"
            try:
                config = load_config(config_file=str(self.config_file), site_dir=str(out))
                config.plugins.on_startup(command="build", dirty=False)
                try:
                    build(config)
                finally:
                    config.plugins.on_shutdown()
            except (MkDocsException, SystemExit) as exc:
                shutil.rmtree(out, ignore_errors=True)
                raise ConfigError(
                    f"the site does not build: {exc}",
                    path=self.config_file,
                    hint="'mkdocs build' says the same with every warning; fix it and save",
                ) from None
            old, self.current = self.current, out
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return out


@dataclass(frozen=True)
class Changes:
    """What a look at the watched files found."""

    text: bool
    """A page, snippet, config or asset changed beyond its boxes: build again."""
    state: bool
    """Anything watched changed (boxes, journal, locks included): the live state may have."""


class Watch:
    """The files a served site comes from and the runtime folder, looked at by stat."""

    def __init__(self, sources: Iterable[Path], runtime: Path) -> None:
        """Watch the files under ``sources`` (folders or files) and under ``runtime``."""
        self.sources = tuple(sources)
        self.runtime = runtime
        # Checked for every file of every look: a string prefix, not Path.parents.
        self._inside = str(runtime) + os.sep
        self._stamps = self._scan()
        # The text of every page now, so the first change of only its boxes is told apart.
        self._keys = {
            p: k for p in self._stamps if p.suffix == ".md" and (k := _key(p)) is not None
        }

    def _scan(self, files: Iterable[Path] | None = None) -> dict[Path, Stamp]:
        # Journals and locks say what runs; transcripts only grow with a run's output.
        runtime = [self.runtime / "journal", self.runtime / "locks"]
        return dict(_stamps([*(self.sources if files is None else files), *runtime]))

    def look(self, only: Iterable[Path] | None = None) -> Changes:
        """Compare the files with the last look; say what changed. With ``only``, look at
        just those files and the runtime folder: a quick look between full ones."""
        files = None if only is None else set(only)

        def part(path: Path) -> bool:
            return files is None or path in files or str(path).startswith(self._inside)

        stamps = self._scan(files)
        before = {p: s for p, s in self._stamps.items() if part(p)}
        self._stamps = {p: s for p, s in self._stamps.items() if not part(p)} | stamps
        moved = {p for p in stamps.keys() | before.keys() if stamps.get(p) != before.get(p)}
        text = False
        for path in moved:
            if str(path).startswith(self._inside):
                continue
            if path.suffix != ".md" or path not in stamps:
                text = True
                continue
            key = _key(path)
            if key != self._keys.get(path):
                text = True
            if key is not None:
                self._keys[path] = key
        return Changes(text=text, state=bool(moved))


class Wakeup:
    """inotify (through watchdog) on the watched folders, calling ``poke`` at each change:
    the looks that follow say what changed, so a missed or spurious event costs nothing but
    a look."""

    def __init__(self, watch: Watch, poke: Callable[[], object]) -> None:
        """Wake ``poke`` on changes under ``watch``'s folders."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        transcripts = str(watch.runtime / "transcripts")

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # Reads (ours too) change nothing; a run's transcript is only its output.
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if transcripts not in str(event.src_path):
                    poke()

        self._handler = Handler()
        self._observer = Observer()
        self._watched: set[Path] = set()
        self._runtime = watch.runtime
        for source in watch.sources:
            self._add(source if source.is_dir() else source.parent, source.is_dir())
        self.follow_runtime()
        self._observer.daemon = True
        self._observer.start()

    def _add(self, folder: Path, recursive: bool) -> None:
        if folder in self._watched or not folder.is_dir():
            return
        try:
            self._observer.schedule(self._handler, str(folder), recursive=recursive)
        except OSError:
            return  # too many watches: the regular looks still see every change
        self._watched.add(folder)

    def follow_runtime(self) -> None:
        """Watch the runtime folder once it exists (its parent until then)."""
        if self._runtime.is_dir():
            self._add(self._runtime, True)
        elif self._runtime.parent.is_dir():
            self._add(self._runtime.parent, False)

    def stop(self) -> None:
        """Stop watching."""
        self._observer.stop()


def _key(path: Path) -> str | None:
    try:
        return content_key(path.read_bytes())
    except OSError:
        return None


def _stamps(roots: Iterable[Path]) -> Iterator[tuple[Path, Stamp]]:
    """Yield every regular file under ``roots`` with its inode, size and change time."""
    for root in roots:
        try:
            info = root.stat()
        except OSError:
            continue
        if root.is_dir():
            for folder, dirs, files in os.walk(root):
                # Hidden folders (an editor's, git's, the runtime folder) are not the site.
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    if name.startswith(".") or name.endswith("~"):
                        continue  # an editor's swap and backup files, not the site's
                    path = Path(folder, name)
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    yield path, (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        else:
            yield root, (info.st_ino, info.st_size, info.st_mtime_ns)
