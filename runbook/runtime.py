"""The runtime folder and its layout: where a guide's locks, journal and transcripts live.

One folder a site (``.runbook/`` beside ``mkdocs.yml``, or in the user's state folder when
that place is not the user's alone; see ``runbook.site``), private and git-ignored:

    locks/<guide>-<hash>.run.lock      the run lock (and .write.lock, for checklist writes)
    journal/<guide>-<hash>.jsonl       the guide's append-only journal
    transcripts/<run id>.log           each run's raw output
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runbook.errors import StateError
from runbook.lock import lock_name
from runbook.model import Runbook

FOLDER = ".runbook"
"""The runtime folder's name beside a site (or a lone guide)."""
GITIGNORE = "# runbook's runtime files (journals, transcripts, locks)\n*\n"


def folder_of(book: Runbook) -> Path:
    """Return the runtime folder of ``book`` (not created: for readers such as status)."""
    return book.runtime_dir or book.path.parent / FOLDER


def prepare(book: Runbook) -> Path:
    """Return the runtime folder, created private and git-ignored, refusing one not ours."""
    folder = folder_of(book)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        # A link or another user's folder here would let them choose what runbook writes.
        raise StateError(
            "the runtime folder is "
            + ("a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a private folder of yours")
            + ": runbook writes its journal and locks only into its own folder",
            path=folder,
            hint=f"remove {folder} (runbook makes it again), or run as its owner",
        )
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE)
    return folder


def locks(runtime: Path) -> Path:
    """Return the folder of the lock files."""
    return runtime / "locks"


def run_lock_file(runtime: Path, guide: Path) -> Path:
    """Return the run lock file of ``guide``."""
    return locks(runtime) / f"{lock_name(guide, 'run')}.lock"


def journal_path(runtime: Path, guide: Path) -> Path:
    """Return the journal file of ``guide``."""
    return runtime / "journal" / f"{lock_name(guide, 'run').rsplit('.', 1)[0]}.jsonl"


def transcript_path(runtime: Path, run_id: str) -> Path:
    """Return the transcript file of one run."""
    return runtime / "transcripts" / f"{run_id}.log"
