"""Exclusive per-guide locks: a flock on a separate lock file that says who holds it.

The lock file is never replaced while in use (a flock on a replaced file protects nothing);
it holds a JSON record of the holder so a refused taker can say who, since when and what.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from types import TracebackType
from typing import Literal

from runbook.errors import LockedError, StateError
from runbook.users import current_user, this_host

LockKind = Literal["run", "write"]

_WAIT_STEP = 0.02
# A live holder writes its record right after its flock succeeds; a record that still names
# a dead process after this long belongs to a holder that is gone.
_STALE_GRACE = 0.2
_MAX_ATTEMPTS = 50
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEM_MAX = 40
_HASH_LEN = 12


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a lock, as recorded inside the lock file."""

    pid: int
    """Process id of the holder on ``host``."""
    user: str
    """Login name of the holder."""
    host: str
    """Host name of the machine the holder runs on."""
    since: str
    """When the lock was taken, ISO 8601 with UTC offset."""
    command: str
    """What the holder is doing, e.g. ``runbook exec docs/upgrade.md``."""
    kind: LockKind
    """``run`` for a whole ``runbook exec``, ``write`` for a checklist write."""
    started: int | None = None
    """The holder's process start time in clock ticks (Linux), to tell pid reuse apart."""

    def describe(self) -> str:
        """Return ``user@host (pid N) since T, running COMMAND``."""
        what = f", running {self.command}" if self.command else ""
        return f"{self.user}@{self.host} (pid {self.pid}) since {self.since}{what}"

    def to_json(self) -> bytes:
        """Serialize the record as it is stored in the lock file."""
        # Every field is a plain value: no deep copy (asdict) needed.
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self)}
        return json.dumps(fields, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> LockHolder | None:
        """Parse a stored record; None when it is empty or not a record."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        try:
            pid, started = raw["pid"], raw.get("started")
            kind = raw.get("kind", "run")
            if not isinstance(pid, int) or not (started is None or isinstance(started, int)):
                return None
            return cls(
                pid=pid,
                user=str(raw["user"]),
                host=str(raw["host"]),
                since=str(raw["since"]),
                command=str(raw.get("command", "")),
                kind="write" if kind == "write" else "run",
                started=started,
            )
        except KeyError:
            return None

    def is_stale(self) -> bool:
        """Whether the holder is provably gone: same host, and its process no longer exists."""
        if self.host != this_host():
            return False
        if self.pid <= 0:
            return True
        if not _pid_exists(self.pid):
            return True
        if self.started is not None:
            now = _process_start(self.pid)
            return now is not None and now != self.started
        return False


def lock_name(path: str | os.PathLike[str], kind: LockKind = "run") -> str:
    """Return a short, readable lock name for a guide: ``<stem>-<hash of resolved path>.<kind>``."""
    resolved = Path(path).resolve()
    stem = _NAME_UNSAFE.sub("_", resolved.stem).strip("._") or "guide"
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:_HASH_LEN]
    return f"{stem[:_STEM_MAX]}-{digest}.{kind}"


def read_holder(lock_file: str | os.PathLike[str]) -> LockHolder | None:
    """Return the record stored in a lock file, or None when there is none."""
    try:
        with open(lock_file, "rb") as handle:
            return LockHolder.from_json(handle.read())
    except FileNotFoundError:
        return None


class Lock:
    """An exclusive, non-blocking lock on ``<lock_dir>/<name>.lock``; a context manager.

    ``kind="run"`` guards a whole ``runbook exec``; ``kind="write"`` guards one checklist
    write and usually waits a moment (``wait``) for another short write to finish.
    """

    def __init__(
        self,
        lock_dir: str | os.PathLike[str],
        name: str,
        *,
        kind: LockKind = "run",
        command: str | None = None,
        subject: str | os.PathLike[str] | None = None,
        wait: float = 0.0,
    ) -> None:
        if not name or "/" in name or name in {".", ".."} or "\0" in name:
            raise StateError(f"invalid lock name {name!r}", hint="use lock_name(guide_path)")
        self.lock_dir = Path(lock_dir)
        self.path = self.lock_dir / f"{name}.lock"
        self.kind: LockKind = kind
        self.command = command if command is not None else default_command()
        self.subject = str(subject) if subject is not None else None
        self.wait = wait
        self.previous: LockHolder | None = None
        """Record left by a holder that ended without releasing, found when taking the lock."""
        self.record: LockHolder | None = None
        """This process's record while the lock is held."""
        self._fd: int | None = None
        self._subject_fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> LockHolder:
        """Take the lock or raise LockedError naming the holder; return this holder's record."""
        if self._fd is not None:
            raise StateError("lock already held by this object", path=self.path)
        _make_private_dir(self.lock_dir)
        self.previous = None
        deadline = time.monotonic() + max(self.wait, 0.0)
        for _ in range(_MAX_ATTEMPTS):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_fd(fd)
                if holder is not None and holder.is_stale() and self._break_stale(fd, holder):
                    os.close(fd)
                    continue
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(_WAIT_STEP)
                    continue
                raise self._locked_error(holder) from None
            except BaseException:
                os.close(fd)
                raise
            if not _same_file(fd, self.path):
                # Someone removed a stale lock file after we opened it: lock the new one.
                os.close(fd)
                continue
            try:
                self._lock_subject()
            except BaseException:
                os.close(fd)
                raise
            return self._claim(fd)
        raise StateError(
            "could not take the lock: the lock file keeps changing",
            path=self.path,
            hint="check that nothing else is deleting files in the lock folder",
        )

    def _lock_subject(self) -> None:
        """For a run, also lock the guide file itself, so that the same file reached through
        another path (a hard link, another site's copy of the path) cannot run twice."""
        if self.kind != "run" or self.subject is None:
            return
        try:
            fd = os.open(self.subject, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # nothing to lock: reading the guide reports what is wrong with it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                "another run holds this guide, through another path to the same file",
                path=self.subject,
                hint="wait for it to finish; 'ls -li' shows the paths (hard links) of one file",
            ) from None
        self._subject_fd = fd

    def release(self) -> None:
        """Release the lock (clearing the record); a no-op when not held."""
        subject, self._subject_fd = self._subject_fd, None
        if subject is not None:
            os.close(subject)
        fd, self._fd = self._fd, None
        self.record = None
        if fd is None:
            return
        try:
            # A cleared record tells the next taker the previous holder ended cleanly.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            self.release()

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            return os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot open lock file: {exc.strerror}",
                path=self.path,
                hint="check the permissions of the lock folder",
            ) from exc

    def _claim(self, fd: int) -> LockHolder:
        left = _read_fd(fd)
        if left is not None:
            self.previous = left
        pid, user, started = _this_process()
        record = LockHolder(
            pid=pid,
            user=user,
            host=this_host(),
            since=dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds"),
            command=self.command,
            kind=self.kind,
            started=started,
        )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.to_json(), 0)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot write lock file: {exc.strerror}", path=self.path) from exc
        self._fd = fd
        self.record = record
        return record

    def _break_stale(self, fd: int, holder: LockHolder) -> bool:
        """Remove a lock file whose recorded holder is gone; True when removed."""
        time.sleep(_STALE_GRACE)
        again = _read_fd(fd)
        if again != holder or not holder.is_stale():
            return False
        # Serialize breakers on the folder so one cannot remove a file another just made.
        dir_fd = os.open(self.lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            if not _same_file(fd, self.path):
                return True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.previous = holder
            return True
        finally:
            os.close(dir_fd)

    def _locked_error(self, holder: LockHolder | None) -> LockedError:
        subject = self.subject or str(self.path)
        if holder is None:
            return LockedError(
                f"{subject} is locked by another process (no holder recorded yet)",
                path=self.subject,
                hint=f"wait for it to finish and try again; the lock file is {self.path}",
            )
        doing = "a run" if holder.kind == "run" else "a checklist write"
        if holder.is_stale():
            hint = (
                f"pid {holder.pid} is gone but a process it started still holds the lock; "
                f"stop that process, or remove {self.path}"
            )
        else:
            hint = (
                f"wait for it to finish; if pid {holder.pid} is no longer running on "
                f"{holder.host}, remove {self.path}"
            )
        return LockedError(
            f"{subject} is locked by {doing}: {holder.describe()}",
            path=self.subject,
            hint=hint,
        )


def default_command() -> str:
    """Describe this process's command line, with every ``name=value`` value masked."""
    # Values given as ``--set password=…`` must never reach a file, so mask them all.
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    for arg in sys.argv[1:]:
        head, sep, _ = arg.partition("=")
        words.append(f"{head}=***" if sep else arg)
    return " ".join(words)


def _make_private_dir(path: Path) -> None:
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StateError(
                f"cannot create lock folder: {exc.strerror}",
                path=folder,
                hint="check the permissions of the folder holding the guide",
            ) from exc
        # mkdir's mode is filtered by the umask; the folder must be private regardless.
        os.chmod(folder, 0o700)
    if not path.is_dir():
        raise StateError("lock folder is not a directory", path=path)


def _read_fd(fd: int) -> LockHolder | None:
    try:
        data = os.pread(fd, 65536, 0)
    except OSError:
        return None
    return LockHolder.from_json(data)


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


_THIS_PROCESS: tuple[int, str, int | None] | None = None


def _this_process() -> tuple[int, str, int | None]:
    """Return this process's pid, user and start time, read once per process (a forked
    child has a pid of its own, and reads them again): a long run takes a write lock per
    tick, and the user's name and the start time cost more than the lock itself."""
    global _THIS_PROCESS
    pid = os.getpid()
    if _THIS_PROCESS is None or _THIS_PROCESS[0] != pid:
        _THIS_PROCESS = (pid, current_user(), _process_start(pid))
    return _THIS_PROCESS


def _process_start(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rpartition(b")")[2].split()
    try:
        # starttime is field 22 overall, the 20th after comm.
        return int(fields[19])
    except (IndexError, ValueError):
        return None
