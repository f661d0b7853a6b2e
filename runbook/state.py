"""The guide's checklist as the run's progress: find boxes in bytes, flip one byte each.

Everything here works on bytes and byte offsets: the guide's encoding, BOM, line endings and
any invalid UTF-8 are never decoded away, so a write changes nothing but box bytes.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from runbook.errors import ConcurrentEditError, StateError
from runbook.lock import Lock, lock_name

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
# A task-list item as pymdownx.tasklist sees it: optional BOM, indentation and blockquote
# markers, a bullet or ordered marker, whitespace, the box, then a blank or the line's end.
_BOX = re.compile(
    rb"(?:\xef\xbb\xbf)?[ \t]*(?:>[ \t]*)*(?:[*+-]|[0-9]{1,9}[.)])[ \t]+\[[ xX]\](?=[ \t\r\n]|\Z)"
)
_READ_CHUNK = 1 << 20
_BOX_STATES = frozenset(b" xX")
# Re-read attempts when the file changes between our read and our write.
_WRITE_ATTEMPTS = 5
_WRITE_WAIT = 5.0


def line_offsets(data: bytes) -> list[int]:
    """Return the start offset of each line; lines end at ``\\r\\n``, ``\\r`` or ``\\n`` only.

    The empty remainder after a final line break is not a line, so ``b"a\\n"`` has one line
    and ``b""`` none.
    """
    offsets = [0]
    offsets.extend(match.end() for match in _LINE_BREAK.finditer(data))
    if offsets[-1] == len(data):
        offsets.pop()
    return offsets


def split_lines(data: bytes) -> list[bytes]:
    """Return the lines of ``data`` without their line breaks (same numbering as line_offsets)."""
    lines = _LINE_BREAK.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def find_checkbox(line: bytes) -> int | None:
    """Return the offset of the state byte (between ``[`` and ``]``) of a task item, or None.

    ``line`` may carry its line break. A BOM, indentation and ``>`` prefixes may precede the
    bullet (``*``, ``-``, ``+``) or ordered marker (``1.``, ``1)``); the box must be followed
    by a space, a tab or the end of the line.
    """
    match = _BOX.match(line)
    return match.end() - 2 if match else None


def item_text(line: bytes) -> str | None:
    """Return a task item's text after its box, decoded and ``str.strip``-ed, or None."""
    box = find_checkbox(line)
    if box is None:
        return None
    rest = line[box + 2 :].rstrip(b"\r\n")
    return rest.decode("utf-8", errors="replace").strip()


@dataclass(frozen=True)
class TaskItem:
    """A task-list item found in a guide file."""

    line: int
    """1-based line number."""
    offset: int
    """Byte offset of the state byte (``' '``, ``'x'`` or ``'X'``) in the file."""
    checked: bool
    """Whether the box is ticked (``x`` or ``X``)."""
    text: str
    """The text after the box, decoded as UTF-8 (invalid bytes replaced) and stripped."""


@dataclass(frozen=True)
class Tick:
    """A request to set one item's box, naming the file the item was found in."""

    path: Path
    """The file holding the item; must be the guide itself (snippets are never written)."""
    line: int
    """1-based line number of the item in that file, as the caller read it."""
    checked: bool
    """The desired state: True ticks the box, False clears it."""
    text: str
    """The item's text as the caller knows it (see ``item_text``), to verify identity."""


def digest(data: bytes) -> str:
    """Return the guide's fingerprint: equal fingerprints mean the same bytes."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """Return the fingerprint of the file at ``path``, or None when it cannot be read."""
    try:
        return digest(path.read_bytes())
    except OSError:
        return None


@dataclass(frozen=True)
class Snapshot:
    """The guide's bytes as read once, with line and task-item lookups."""

    path: Path
    """The guide's resolved path."""
    data: bytes
    """The file's content, exactly as read."""
    sha256: str
    """Hex SHA-256 of ``data``: equal digests mean the file did not change."""

    @classmethod
    def of(cls, path: str | os.PathLike[str], data: bytes) -> Snapshot:
        """Build a snapshot of ``data`` for the guide at ``path``."""
        return cls(Path(path).resolve(), data, digest(data))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Snapshot:
        """Read the guide once."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise StateError(f"cannot read the guide: {exc.strerror}", path=Path(path)) from exc
        return cls.of(path, data)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start offset of each line (see ``line_offsets``)."""
        return tuple(line_offsets(self.data))

    @cached_property
    def lines(self) -> tuple[bytes, ...]:
        """Each line without its line break."""
        return tuple(split_lines(self.data))

    @property
    def line_count(self) -> int:
        """Number of lines."""
        return len(self.offsets)

    def line(self, number: int) -> bytes:
        """Return line ``number`` (1-based) without its line break."""
        if not 1 <= number <= len(self.lines):
            raise IndexError(f"line {number} out of range 1..{len(self.lines)}")
        return self.lines[number - 1]

    @cached_property
    def items(self) -> tuple[TaskItem, ...]:
        """Every line that looks like a task item, in file order."""
        found: list[TaskItem] = []
        for index, (start, line) in enumerate(zip(self.offsets, self.lines, strict=True)):
            box = find_checkbox(line)
            if box is None:
                continue
            text = line[box + 2 :].decode("utf-8", errors="replace").strip()
            found.append(TaskItem(index + 1, start + box, line[box] != 0x20, text))
        return tuple(found)

    @cached_property
    def _by_line(self) -> dict[int, TaskItem]:
        return {item.line: item for item in self.items}

    def item_at(self, number: int) -> TaskItem | None:
        """Return the task item on line ``number``, or None."""
        return self._by_line.get(number)


def apply_ticks(
    path: str | os.PathLike[str],
    ticks: Iterable[Tick],
    *,
    snapshot: Snapshot,
    lock_dir: str | os.PathLike[str],
    wait: float = _WRITE_WAIT,
) -> Snapshot:
    """Set each tick's box in the guide, changing one byte per item, and return the new snapshot.

    ``snapshot`` is the caller's view of the guide; ticks name lines in it. Under a write lock
    in ``lock_dir`` the guide is read again: if a person edited it meanwhile, each item is
    found by content (moved lines are followed) or the whole call is refused with
    ConcurrentEditError and nothing is written.
    """
    guide = Path(path).resolve()
    wanted = list(ticks)
    if snapshot.path != guide:
        raise StateError(
            f"the snapshot is of {snapshot.path}, not of this guide",
            path=guide,
            hint="read the snapshot from the guide being written",
        )
    for tick in wanted:
        _check_origin(tick, guide)
        _check_against(tick, snapshot)
    lock = Lock(
        lock_dir,
        lock_name(guide, "write"),
        kind="write",
        subject=guide,
        wait=wait,
        command=f"writing the checklist of {guide}",
    )
    with lock:
        fd = _open_guide(guide, line=wanted[0].line if wanted else None)
        try:
            return _write(fd, guide, wanted, snapshot)
        finally:
            os.close(fd)


def _write(fd: int, guide: Path, ticks: Sequence[Tick], snapshot: Snapshot) -> Snapshot:
    data = _read_all(fd)
    for _ in range(_WRITE_ATTEMPTS):
        # ``guide`` is resolved already: build snapshots without resolving it again.
        current = snapshot if data == snapshot.data else Snapshot(guide, data, digest(data))
        plan = _plan(ticks, snapshot, current)
        changes = {offset: byte for offset, byte in plan.items() if data[offset] != byte}
        if not changes:
            return current
        # Editors ignore our lock: shrink the window in which their save could interleave.
        again = _read_all(fd)
        if again != data:
            data = again
            continue
        for offset, byte in sorted(changes.items()):
            os.pwrite(fd, bytes((byte,)), offset)
        os.fsync(fd)
        if not _same_file(fd, guide):
            raise ConcurrentEditError(
                "the guide was replaced by another program while its checklist was written",
                path=guide,
                hint="check the guide's checklist, then run again",
            )
        updated = bytearray(data)
        for offset, byte in changes.items():
            updated[offset] = byte
        written = bytes(updated)
        return Snapshot(guide, written, digest(written))
    raise ConcurrentEditError(
        "the guide keeps changing while its checklist is written",
        path=guide,
        hint="wait until the other program has finished saving, then run again",
    )


def item_now(tick: Tick, old: Snapshot, current: Snapshot) -> TaskItem:
    """Return the tick's item (a line of ``old``) as it stands in ``current``, followed
    through edits as a tick would be; raise ConcurrentEditError when it is gone."""
    if current.sha256 == old.sha256 or _only_boxes_differ(old, current):
        # Lines unmoved: the item stands where it stood, only its box may have changed.
        item = old.item_at(tick.line)
        if item is not None:
            checked = current.data[item.offset] != 0x20
            return item if item.checked == checked else replace(item, checked=checked)
    return _relocate(tick, old, current, _map_lines(old, current))


def _plan(ticks: Sequence[Tick], old: Snapshot, current: Snapshot) -> dict[int, int]:
    """Map the offset of each target state byte to its new value, or refuse."""
    plan: dict[int, int] = {}
    mapping: dict[int, tuple[str, int | None]] | None = None
    same_lines = current is old or _only_boxes_differ(old, current)
    for tick in ticks:
        if same_lines:
            # Only box bytes differ, so every item of ``old`` stands in ``current`` at the
            # same line and offset with the same text: no need to find them all again.
            target = old.item_at(tick.line)
            assert target is not None  # checked by _check_against
        else:
            if mapping is None:
                mapping = _map_lines(old, current)
            target = _relocate(tick, old, current, mapping)
        new = 0x78 if tick.checked else 0x20  # 'x' / ' '
        if tick.checked and current.data[target.offset] != 0x20:
            new = current.data[target.offset]  # keep an existing 'X'
        plan[target.offset] = new
    return plan


def _only_boxes_differ(old: Snapshot, current: Snapshot) -> bool:
    """Tell whether ``current`` is ``old`` with some boxes ticked or cleared (lines unmoved).

    This is the common case of a long run, ticking step after step: it must cost neither a
    diff of the whole guide nor a search for its items per tick. Every box byte of ``old``
    must hold ``' '``, ``'x'`` or ``'X'`` in ``current``; put back to ``old``'s, the rest
    must be equal byte for byte.
    """
    a, b = old.data, current.data
    if len(a) != len(b):
        return False
    restored = bytearray(b)
    for item in old.items:
        if b[item.offset] not in _BOX_STATES:
            return False
        restored[item.offset] = a[item.offset]
    return restored == a


def _relocate(
    tick: Tick, old: Snapshot, current: Snapshot, mapping: dict[int, tuple[str, int | None]]
) -> TaskItem:
    """Find the tick's item in an edited guide, or raise ConcurrentEditError."""
    how, new_line = mapping.get(tick.line, ("delete", None))
    if how == "equal" and new_line is not None:
        item = current.item_at(new_line)
        if item is not None and item.text == tick.text:
            return item
    same = [item for item in current.items if item.text == tick.text]
    # With duplicates before the edit, a lone survivor may be the other one.
    was_unique = sum(item.text == tick.text for item in old.items) == 1
    if len(same) == 1 and was_unique:
        return same[0]
    if same:
        where = ", ".join(str(item.line) for item in same)
        raise ConcurrentEditError(
            f"the guide was edited and the item {tick.text!r} now appears {len(same)} times "
            f"(lines {where}); not guessing which one is meant",
            path=tick.path,
            line=tick.line,
            hint="tick the right line by hand, or make the items distinct and run again",
        )
    if new_line is not None and 1 <= new_line <= current.line_count:
        now = current.line(new_line).decode("utf-8", errors="replace").strip()
        change = f"line {tick.line} now reads {now!r} (line {new_line})"
    else:
        change = f"line {tick.line} was removed"
    raise ConcurrentEditError(
        f"the guide was edited and the item {tick.text!r} is gone: {change}",
        path=tick.path,
        line=tick.line,
        hint="the edit was kept; check the item by hand if that step is done, then run again",
    )


def _map_lines(old: Snapshot, current: Snapshot) -> dict[int, tuple[str, int | None]]:
    """Map old line numbers to new ones: ``equal`` (unchanged) or ``replace`` (rewritten)."""

    # A box ticked by hand must not make its line look rewritten.
    def normal(snap: Snapshot) -> list[bytes]:
        out = []
        for line in snap.lines:
            box = find_checkbox(line)
            out.append(line if box is None else line[:box] + b" " + line[box + 1 :])
        return out

    before, after = normal(old), normal(current)
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    mapping: dict[int, tuple[str, int | None]] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for i in range(i1, i2):
            if tag == "equal":
                mapping[i + 1] = ("equal", j1 + (i - i1) + 1)
            elif tag == "replace":
                j = j1 + (i - i1)
                mapping[i + 1] = ("replace", j + 1 if j < j2 else None)
    return mapping


def _check_origin(tick: Tick, guide: Path) -> None:
    origin = Path(tick.path)
    # A tick naming the resolved guide itself (a run's ticks do) needs no resolve.
    same = origin == guide or origin.resolve() == guide
    if not same:
        try:
            same = os.path.samefile(origin, guide)
        except OSError:
            same = False
    if not same:
        raise StateError(
            f"refusing to tick an item of {origin}: only the guide {guide} is ever written",
            path=origin,
            line=tick.line,
            hint="items from included snippets are not the guide's progress; "
            "tick the guide's overview checklist instead",
        )


def _check_against(tick: Tick, snapshot: Snapshot) -> None:
    item = snapshot.item_at(tick.line)
    if item is not None and item.text == tick.text:
        return
    found = "no task item" if item is None else f"the item {item.text!r}"
    raise StateError(
        f"line {tick.line} holds {found}, not the item {tick.text!r}",
        path=snapshot.path,
        line=tick.line,
        hint="take ticks from the same snapshot that is passed in",
    )


def check_writable(path: str | os.PathLike[str], *, line: int | None = None) -> None:
    """Refuse a guide whose checklist could not be written, without changing it.

    Only opening the file for writing tells: root passes any permission bits (so neither
    ``os.access`` nor the mode can say), yet a read-only file system or an immutable file
    stops root too. The open is the one a tick makes, without O_TRUNC or O_CREAT, so the
    content and the modification time stay as they were.
    """
    os.close(_open_guide(Path(path).resolve(), line=line))


def unwritable(guide: Path, error: OSError, *, line: int | None = None) -> StateError:
    """Return the refusal for a guide that cannot be opened for writing: the one message
    that exec (before it runs anything, and at a tick), check, uncheck and reset give."""
    if error.errno == errno.EROFS:
        hint = (
            "the file system is mounted read-only: remount it read-write, or copy the site "
            "to a writable place and run it there"
        )
    elif error.errno == errno.EPERM:
        hint = (
            f"the file may be immutable or append-only (see 'lsattr {guide}'; "
            f"'chattr -i -a {guide}' as root clears that)"
        )
    elif _owner(guide) not in (None, os.geteuid()):
        hint = "it is not yours: run as its owner, or have it made writable for you"
    else:
        hint = f"make it writable ('chmod u+w {guide}') and run again"
    return StateError(
        f"the guide cannot be written ({error.strerror or error}), so progress cannot be "
        "recorded in its checklist",
        path=guide,
        line=line,
        hint=hint,
    )


def _owner(path: Path) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _open_guide(guide: Path, *, line: int | None = None) -> int:
    try:
        fd = os.open(guide, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise StateError(
            "cannot open the guide for writing: it is gone",
            path=guide,
            hint="put the guide back (or give its new path) and run again",
        ) from exc
    except OSError as exc:
        raise unwritable(guide, exc, line=line) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StateError("the guide is not a regular file", path=guide)
    return fd


def _read_all(fd: int) -> bytes:
    # Ask for the file's size (and a byte more, to see the end) rather than a whole chunk:
    # a tick reads a small guide twice, and a 1 MiB buffer each time costs more than the read.
    want = os.fstat(fd).st_size + 1
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, min(max(want - offset, 4096), _READ_CHUNK), offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
