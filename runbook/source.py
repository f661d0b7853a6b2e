"""Read a source file (a guide or a snippet): a regular file of bounded size, or a clear error.

A FIFO would block a plain read forever and a device never ends; a file can also grow
between the size check and the read. So the file is opened without blocking, checked on
the open descriptor, and read no further than the limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runbook.errors import GuideError, UsageError

# Real guides are well under 1 MB; far larger files are generated or mistaken.
MAX_SOURCE_BYTES = 4 * 1024 * 1024
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_source(path: Path, what: str = "guide") -> bytes:
    """Return the bytes of ``path``; raise a RunbookError naming it when it is not readable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError("no such file", path=path, hint=f"check the {what}'s path") from None
    except PermissionError:
        raise UsageError("permission denied", path=path, hint="check the file's mode") from None
    except IsADirectoryError:
        raise UsageError(
            f"is a folder, not a {what}", path=path, hint="name a markdown file inside it"
        ) from None
    except OSError as exc:
        raise GuideError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(
                f"is a folder, not a {what}", path=path, hint="name a markdown file inside it"
            )
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise GuideError(
                f"is {kind}, not a markdown file",
                path=path,
                hint=f"name the {what}'s markdown file itself",
            )
        if info.st_size > MAX_SOURCE_BYTES:
            _too_big(path, what, info.st_size)
        data = _read_bounded(fd)
    except OSError as exc:
        raise GuideError(f"cannot read: {exc.strerror}", path=path) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SOURCE_BYTES:
        _too_big(path, what, len(data))  # it grew while being read
    return data


def _too_big(path: Path, what: str, size: int) -> None:
    raise GuideError(
        f"is {size / 1e6:.1f} MB; {what}s are limited to {MAX_SOURCE_BYTES // (1024 * 1024)} MiB",
        path=path,
        hint="split it into several pages, or check that this is the file you meant",
    )


def _read_bounded(fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_SOURCE_BYTES:
        chunk = os.read(fd, min(1 << 20, MAX_SOURCE_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
