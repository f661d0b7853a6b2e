"""Put a block's text where the shell can source it, never typing it as keystrokes."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from typing import Protocol

from runbook.errors import UsageError
from runbook.shell.model import SessionError, check_typable

_B64_LINE = 2048

Exchange = Callable[[bytes, float], int]
"""Type bytes at the shell prompt, wait for the next prompt, return its exit status."""


class Delivery(Protocol):
    """Put a block's text where the shell can source it as ``$__rb_file``."""

    def open(self) -> None:
        """Acquire local resources; called once before the first shell starts."""
        ...

    def shell_setup(self) -> str:
        """Return shell code, one line without control characters, run in each new shell."""
        ...

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Make ``$__rb_file`` hold exactly ``script``."""
        ...

    def shell_cleanup(self) -> str | None:
        """Return shell code that removes what the shell side created, if anything."""
        ...

    def close(self) -> None:
        """Release local resources."""
        ...


def _memory_backed_root() -> str:
    """Return a writable temporary root, preferring ones kept in memory.

    Rewriting a file on a disk-backed filesystem can cost milliseconds (freeing blocks,
    with ``discard`` even more) per block; in tmpfs it costs microseconds, and block
    text never reaches a disk.
    """
    for root in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if root and os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            return root
    return tempfile.gettempdir()


class FileDelivery:
    """Write the block to a file in a private temporary directory (mode 0700)."""

    def __init__(self, root: str | None = None) -> None:
        self._root = root
        self._dir: str | None = None
        self._fd = -1
        """The block file, kept open: rewriting it in place costs a quarter of opening
        and truncating it for every block."""

    @property
    def path(self) -> str:
        """Return the block file's path."""
        if self._dir is None:
            raise SessionError("the delivery directory is not open")
        return os.path.join(self._dir, "block.sh")

    def open(self) -> None:
        """Create the private directory."""
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="runbook-", dir=self._root or _memory_backed_root())
            os.chmod(self._dir, 0o700)

    def shell_setup(self) -> str:
        """Point ``$__rb_file`` at the block file."""
        path = self.path
        check_typable(path, "the temporary directory path")
        return f"__rb_file={shlex.quote(path)}; builtin readonly __rb_file"

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Write the block file."""
        if self._fd >= 0 and os.fstat(self._fd).st_nlink == 0:
            self._close_file()  # a block removed it: make it again
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        view = memoryview(script)
        at = 0
        while at < len(view):
            at += os.pwrite(self._fd, view[at:], at)
        os.ftruncate(self._fd, len(script))

    def shell_cleanup(self) -> str | None:
        """Return nothing: the directory is local and removed by ``close``."""
        return None

    def _close_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        """Remove the private directory."""
        self._close_file()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class Base64Delivery:
    """Send the block as base64 through short typed lines into a file made by the shell.

    Needs nothing on the shell's machine but ``mktemp`` and ``base64``, and no file
    written from here, so it works over a remote terminal. Lines stay far below the
    terminal's 4095-byte line limit.
    """

    def __init__(self, line_length: int = _B64_LINE) -> None:
        if not 4 <= line_length <= 3000:
            raise UsageError("base64 line length must be between 4 and 3000")
        self._line = line_length

    def open(self) -> None:
        """Acquire nothing: everything lives on the shell's side."""

    def shell_setup(self) -> str:
        """Create a private directory on the shell's side and the receiving function."""
        return (
            '__rb_dir=$(umask 077 && command mktemp -d "${TMPDIR:-/tmp}/runbook.XXXXXXXX"); '
            "__rb_file=$__rb_dir/block.sh; "
            "builtin readonly __rb_dir __rb_file; "
            "__rb_recv() { local __rb_l __rb_i; "
            "for ((__rb_i = 0; __rb_i < $1; __rb_i++)); do "
            'IFS= builtin read -r __rb_l || builtin return 1; builtin printf "%s\\n" "$__rb_l"; '
            'done >| "$__rb_file.b64" && command base64 -d < "$__rb_file.b64" >| "$__rb_file"; }; '
            "builtin readonly -f __rb_recv"
        )

    def put(self, script: bytes, exchange: Exchange) -> None:
        """Type the encoded block and have the shell decode it."""
        encoded = base64.b64encode(script)
        lines = [encoded[i : i + self._line] for i in range(0, len(encoded), self._line)]
        payload = b"".join(line + b"\n" for line in lines)
        timeout = 10.0 + len(payload) / 100_000
        status = exchange(f"__rb_recv {len(lines)}\n".encode() + payload, timeout)
        if status != 0:
            raise SessionError(f"the shell could not receive the block (status {status})")

    def shell_cleanup(self) -> str | None:
        """Remove the shell-side directory."""
        return 'command rm -rf -- "$__rb_dir"'

    def close(self) -> None:
        """Release nothing."""
