"""Checklist write-back: only box bytes ever change, edits by people are kept or refused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import ConcurrentEditError, RunbookError, StateError
from runbook.state import (
    Snapshot,
    Tick,
    apply_ticks,
    find_checkbox,
    item_text,
    line_offsets,
    split_lines,
)

FIXTURES = Path(__file__).parent / "fixtures" / "state"
SPEC = json.loads((FIXTURES / "commonmark-spec.json").read_text(encoding="utf-8"))
SPEC_MARKDOWN = [example["markdown"].encode("utf-8") for example in SPEC]


# --- find_checkbox -------------------------------------------------------------------------

BOXES = [
    (b"* [ ] 1. Install", 3),
    (b"- [x] done", 3),
    (b"+ [X] done", 3),
    (b"* [ ]", 3),
    (b"* [ ]\n", 3),
    (b"* [ ]\r\n", 3),
    (b"* [ ]\r", 3),
    (b"* [ ]\tTab after box", 3),
    (b"*\t[ ] tab before box", 3),
    (b"    * [ ] nested", 7),
    (b"\t- [ ] tab indented", 4),
    (b"1. [ ] ordered", 4),
    (b"12) [x] ordered paren", 5),
    (b"123456789. [ ] longest ordered marker", 12),
    (b"> * [ ] quoted", 5),
    (b">* [ ] quoted tight", 4),
    (b"> > - [ ] twice quoted", 7),
    (b"  >   1. [ ] indented quote", 10),
    (b"\xef\xbb\xbf* [ ] after a BOM", 6),
    (b"* [ ] \xff\xfe invalid utf-8 after", 3),
    (b"* [ ]   trailing spaces   ", 3),
]

NOT_BOXES = [
    b"",
    b"[ ] no bullet",
    b"* [] empty box",
    b"* [  ] two spaces",
    b"* [y] other letter",
    b"* [x]no space after",
    b"*[ ] no space before",
    b"* (x) parens",
    b"1234567890. [ ] marker too long",
    b"a. [ ] letter marker",
    b"** [ ] double star",
    b"text * [ ] in a sentence",
    b"# * [ ] heading",
    b"* [ ]\x0c form feed after",
    b"\xc2\xa0* [ ] no-break space indent",
    b"\xef\xbb\xbf\xef\xbb\xbf* [ ] two BOMs",
    b"* [\xc3\x97] multibyte state",
]


@pytest.mark.parametrize(("line", "offset"), BOXES)
def test_find_checkbox_finds_the_state_byte(line: bytes, offset: int) -> None:
    assert find_checkbox(line) == offset
    assert line[offset - 1 : offset + 2] in {b"[ ]", b"[x]", b"[X]"}


@pytest.mark.parametrize("line", NOT_BOXES)
def test_find_checkbox_rejects_everything_else(line: bytes) -> None:
    assert find_checkbox(line) is None
    assert item_text(line) is None


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"* [ ] 3. Take a database backup", "3. Take a database backup"),
        (b"* [x]   padded \t ", "padded"),
        (b"* [ ]", ""),
        (b"* [ ] caf\xc3\xa9\r\n", "café"),
        (b"* [ ] bad \xff byte", "bad \ufffd byte"),
    ],
)
def test_item_text_is_decoded_and_trimmed(line: bytes, text: str) -> None:
    assert item_text(line) == text


# --- lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offsets", "lines"),
    [
        (b"", [], []),
        (b"a", [0], [b"a"]),
        (b"a\n", [0], [b"a"]),
        (b"\n", [0], [b""]),
        (b"a\r\nb", [0, 3], [b"a", b"b"]),
        (b"a\rb\r", [0, 2], [b"a", b"b"]),
        (b"a\n\rb", [0, 2, 3], [b"a", b"", b"b"]),
        (b"a\r\r\nb", [0, 2, 4], [b"a", b"", b"b"]),
        # Not line breaks for a markdown parser, though str.splitlines splits on them.
        (b"a\x0cb\x1cc\xe2\x80\xa8d\x85e", [0], [b"a\x0cb\x1cc\xe2\x80\xa8d\x85e"]),
        (b"\xef\xbb\xbfa\nb", [0, 5], [b"\xef\xbb\xbfa", b"b"]),
    ],
)
def test_line_offsets_split_on_crlf_cr_lf_only(
    data: bytes, offsets: list[int], lines: list[bytes]
) -> None:
    assert line_offsets(data) == offsets
    assert split_lines(data) == lines


@given(st.binary(max_size=300) | st.text(alphabet="ab\r\n\x0c\u2028", max_size=60).map(str.encode))
def test_lines_and_offsets_agree(data: bytes) -> None:
    offsets = line_offsets(data)
    lines = split_lines(data)
    assert len(offsets) == len(lines)
    for start, line in zip(offsets, lines, strict=True):
        assert data.startswith(line, start)
        end = start + len(line)
        assert end == len(data) or data[end] in b"\r\n"
    snap = Snapshot.of("g.md", data)
    assert snap.line_count == len(lines)


# --- fixture guides ------------------------------------------------------------------------

GUIDES: dict[str, bytes] = {
    "lf": b"# Guide\n\n* [ ] 1. One\n* [ ] 2. Two\n\n### 1. One\n",
    "crlf": b"# Guide\r\n\r\n* [ ] 1. One\r\n* [ ] 2. Two\r\n",
    "bom": b"\xef\xbb\xbf* [ ] 1. One\n* [ ] 2. Two\n",
    "lone-cr": b"# Old Mac\r* [ ] 1. One\r* [ ] 2. Two\r",
    "mixed-endings": b"* [ ] 1. One\r\n* [ ] 2. Two\rplain\n",
    "trailing-spaces": b"* [ ] 1. One   \n* [ ] 2. Two\t \n  \n",
    "no-final-newline": b"* [ ] 1. One\n* [ ] 2. Two",
    "tabs": b"*\t[ ]\t1. One\n\t- [ ]\t2. Two\n",
    "invalid-utf8": b"\xff\xfe junk\n* [ ] 1. One \xc3\n* [ ] 2. Two\n\x80\n",
    "quoted": b"> * [ ] 1. One\n>\n> 1) [ ] 2. Two\n",
    "form-feed": b"* [ ] 1. One\x0c* [ ] not a line\n* [ ] 2. Two\n",
}


def guide(tmp_path: Path, data: bytes, name: str = "guide.md") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ticks_for(snap: Snapshot, checked: bool) -> list[Tick]:
    return [Tick(snap.path, item.line, checked, item.text) for item in snap.items]


def box_offsets(data: bytes) -> set[int]:
    return {item.offset for item in Snapshot.of("x.md", data).items}


def only_boxes_differ(before: bytes, after: bytes) -> bool:
    if len(before) != len(after):
        return False
    boxes = box_offsets(before)
    return all(a == b or i in boxes for i, (a, b) in enumerate(zip(before, after, strict=True)))


@pytest.fixture(params=sorted(GUIDES))
def fixture_guide(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    data = GUIDES[request.param]
    yield guide(tmp_path, data), data


def test_fixture_guides_check_and_uncheck_byte_exact(
    fixture_guide: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, original = fixture_guide
    locks = tmp_path / ".runbook" / "locks"
    snap = Snapshot.read(path)
    assert len(snap.items) == 2
    checked = apply_ticks(path, ticks_for(snap, True), snapshot=snap, lock_dir=locks)
    on_disk = path.read_bytes()
    assert checked.data == on_disk
    expected = bytearray(original)
    for item in snap.items:
        expected[item.offset] = ord("x")
    assert on_disk == bytes(expected)
    assert all(item.checked for item in checked.items)
    back = apply_ticks(path, ticks_for(checked, False), snapshot=checked, lock_dir=locks)
    assert path.read_bytes() == original == back.data


def test_seed_overview_checklist(tmp_path: Path) -> None:
    overview = b"".join(b"* [ ] %d. Step number %d\n" % (n, n) for n in range(1, 11))
    path = guide(tmp_path, b"# Upgrade\n\n" + overview + b"\n### 1. Install\n")
    snap = Snapshot.read(path)
    step3 = snap.items[2]
    assert (step3.line, step3.text) == (5, "3. Step number 3")
    new = apply_ticks(path, [Tick(path, 5, True, step3.text)], snapshot=snap, lock_dir=tmp_path)
    assert new.line(5) == b"* [x] 3. Step number 3"
    assert [item.checked for item in new.items].count(True) == 1


def test_unchecking_capital_x_gives_space_and_checking_keeps_it(tmp_path: Path) -> None:
    path = guide(tmp_path, b"* [X] 1. One\n* [X] 2. Two\n")
    snap = Snapshot.read(path)
    ticks = [Tick(path, 1, False, "1. One"), Tick(path, 2, True, "2. Two")]
    apply_ticks(path, ticks, snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == b"* [ ] 1. One\n* [X] 2. Two\n"


def test_no_change_means_no_write(tmp_path: Path) -> None:
    path = guide(tmp_path, b"* [x] 1. One\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    snap = Snapshot.read(path)
    assert apply_ticks(path, [Tick(path, 1, True, "1. One")], snapshot=snap, lock_dir=tmp_path)
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_mode_owner_inode_and_hard_links_are_kept(tmp_path: Path) -> None:
    path = guide(tmp_path, GUIDES["crlf"])
    link = tmp_path / "linked.md"
    os.link(path, link)
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, 1234, 5678)
    before = path.stat()
    snap = Snapshot.read(path)
    apply_ticks(path, ticks_for(snap, True), snapshot=snap, lock_dir=tmp_path / "locks")
    after = path.stat()
    assert (after.st_ino, after.st_dev, after.st_nlink) == (before.st_ino, before.st_dev, 2)
    assert after.st_mode & 0o7777 == 0o640
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert link.read_bytes() == path.read_bytes() != GUIDES["crlf"]


def test_symlinked_guide_writes_the_target(tmp_path: Path) -> None:
    target = guide(tmp_path, b"* [ ] 1. One\n", "real.md")
    alias = tmp_path / "alias.md"
    alias.symlink_to(target)
    snap = Snapshot.read(alias)
    apply_ticks(alias, [Tick(alias, 1, True, "1. One")], snapshot=snap, lock_dir=tmp_path)
    assert alias.is_symlink()
    assert target.read_bytes() == b"* [x] 1. One\n"


# --- concurrent edits ----------------------------------------------------------------------

BASE = b"# Guide\r\n\r\n* [ ] 1. Install\r\n* [ ] 2. Copy config\r\n* [ ] 3. Backup\r\n"


def test_line_inserted_above_is_followed_and_edit_kept(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    edited = BASE.replace(b"# Guide\r\n", b"# Guide\r\nA note added by hand.\r\n\r\n")
    path.write_bytes(edited)
    new = apply_ticks(path, [Tick(path, 5, True, "3. Backup")], snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == edited.replace(b"[ ] 3.", b"[x] 3.")
    assert new.data == path.read_bytes()
    assert new.item_at(7) is not None and new.item_at(7).checked  # type: ignore[union-attr]


def test_item_text_changed_is_refused_and_file_untouched(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    edited = BASE.replace(b"3. Backup", b"3. Backup twice")
    path.write_bytes(edited)
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    ticks = [Tick(path, 3, True, "1. Install"), Tick(path, 5, True, "3. Backup")]
    with pytest.raises(ConcurrentEditError) as caught:
        apply_ticks(path, ticks, snapshot=snap, lock_dir=tmp_path)
    error = caught.value
    assert error.location == f"{path}:5"
    assert "3. Backup twice" in str(error) and "'3. Backup'" in str(error)
    assert error.hint
    assert path.read_bytes() == edited
    assert path.stat().st_mtime_ns == 2_000_000_000


def test_item_removed_is_refused(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    edited = BASE.replace(b"* [ ] 3. Backup\r\n", b"")
    path.write_bytes(edited)
    with pytest.raises(ConcurrentEditError, match="removed"):
        apply_ticks(path, [Tick(path, 5, True, "3. Backup")], snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == edited


def test_ambiguous_text_is_refused(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    # The item's own line was reformatted and a second item with its text appeared.
    edited = BASE.replace(b"* [ ] 3. Backup", b"- [ ] 3. Backup")
    edited = edited.replace(b"* [ ] 1. Install", b"* [ ] 3. Backup")
    path.write_bytes(edited)
    with pytest.raises(ConcurrentEditError, match="2 times"):
        apply_ticks(path, [Tick(path, 5, True, "3. Backup")], snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == edited


def test_duplicates_follow_their_own_line(tmp_path: Path) -> None:
    data = b"* [ ] restart\n* [ ] 1. One\n* [ ] restart\n"
    path = guide(tmp_path, data)
    snap = Snapshot.read(path)
    edited = b"intro\n\n" + data
    path.write_bytes(edited)
    apply_ticks(path, [Tick(path, 3, True, "restart")], snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == b"intro\n\n* [ ] restart\n* [ ] 1. One\n* [x] restart\n"


def test_lone_survivor_of_duplicates_is_not_guessed(tmp_path: Path) -> None:
    data = b"* [ ] restart\n* [ ] 1. One\n* [ ] restart\n"
    path = guide(tmp_path, data)
    snap = Snapshot.read(path)
    path.write_bytes(b"* [ ] restart\n* [ ] 1. One\n")
    with pytest.raises(ConcurrentEditError):
        apply_ticks(path, [Tick(path, 3, True, "restart")], snapshot=snap, lock_dir=tmp_path)


def test_box_ticked_by_hand_and_line_reformatted(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    # A person ticked item 1, the editor turned CRLF into LF and the bullet changed.
    edited = BASE.replace(b"\r\n", b"\n").replace(b"* [ ] 1.", b"* [x] 1.")
    edited = edited.replace(b"* [ ] 2.", b"- [ ] 2.")
    path.write_bytes(edited)
    ticks = [Tick(path, 3, True, "1. Install"), Tick(path, 4, True, "2. Copy config")]
    apply_ticks(path, ticks, snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == edited.replace(b"- [ ] 2.", b"- [x] 2.")


def test_person_unticked_meanwhile_and_run_ticks_again(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE.replace(b"[ ] 1.", b"[x] 1."))
    snap = Snapshot.read(path)
    path.write_bytes(BASE + b"extra line\r\n")
    apply_ticks(path, [Tick(path, 3, False, "1. Install")], snapshot=snap, lock_dir=tmp_path)
    assert path.read_bytes() == BASE + b"extra line\r\n"


# --- refusals ------------------------------------------------------------------------------


def test_snippet_ticks_are_refused(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snippet = guide(tmp_path, b"* [ ] 1. Install\n", "_snippet.md")
    snap = Snapshot.read(path)
    with pytest.raises(StateError, match="only the guide") as caught:
        apply_ticks(path, [Tick(snippet, 1, True, "1. Install")], snapshot=snap, lock_dir=tmp_path)
    assert caught.value.location == f"{snippet}:1"
    assert snippet.read_bytes() == b"* [ ] 1. Install\n"
    assert path.read_bytes() == BASE


def test_snapshot_of_another_file_is_refused(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    other = guide(tmp_path, BASE, "other.md")
    snap = Snapshot.read(other)
    with pytest.raises(StateError, match="snapshot"):
        apply_ticks(path, [Tick(path, 3, True, "1. Install")], snapshot=snap, lock_dir=tmp_path)
    assert other.read_bytes() == path.read_bytes() == BASE


@pytest.mark.parametrize(
    ("line", "text"), [(3, "1. Instal"), (1, "# Guide"), (99, "1. Install"), (0, "x")]
)
def test_tick_not_matching_the_snapshot_is_refused(tmp_path: Path, line: int, text: str) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    with pytest.raises(StateError) as caught:
        apply_ticks(path, [Tick(path, line, True, text)], snapshot=snap, lock_dir=tmp_path)
    assert not isinstance(caught.value, ConcurrentEditError)
    assert caught.value.line == line
    assert path.read_bytes() == BASE


def test_unwritable_or_missing_guide_is_a_clear_error(tmp_path: Path) -> None:
    path = guide(tmp_path, BASE)
    snap = Snapshot.read(path)
    path.unlink()
    with pytest.raises(StateError, match="cannot open"):
        apply_ticks(path, [Tick(path, 3, True, "1. Install")], snapshot=snap, lock_dir=tmp_path)
    with pytest.raises(StateError, match="cannot read"):
        Snapshot.read(path)


# --- properties ----------------------------------------------------------------------------

LINE_PIECES = st.sampled_from(
    [
        b"* [ ] ",
        b"- [x] ",
        b"+ [X]\t",
        b"1. [ ] ",
        b"> * [ ] ",
        b"    - [ ] ",
        b"* [ ]",
        b"[ ] ",
        b"*[x] ",
        b"text ",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\t",
        b" ",
        b"\r\n",
        b"\r",
        b"\n",
        b"\x0c",
        b"x",
    ]
)
FILES = st.lists(LINE_PIECES, max_size=40).map(b"".join) | st.binary(max_size=200)


def with_boxes(markdown: bytes, picks: list[int]) -> bytes:
    """Turn some lines of ``markdown`` into task items, keeping every line break."""
    offsets = line_offsets(markdown)
    out = bytearray(markdown)
    for pick in sorted({p % len(offsets) for p in picks} if offsets else (), reverse=True):
        out[offsets[pick] : offsets[pick]] = b"* [ ] "
    return bytes(out)


SPEC_FILES = st.builds(
    with_boxes, st.sampled_from(SPEC_MARKDOWN), st.lists(st.integers(0, 1000), max_size=6)
)


def run_sequence(data: bytes, ops: list[tuple[int, bool]]) -> None:
    """Apply random ticks to a real file and check the write-back invariants after each."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "guide.md"
        path.write_bytes(data)
        boxes = box_offsets(data)
        snap = Snapshot.read(path)
        items = snap.items
        for pick, checked in ops:
            if not items:
                break
            item = snap.items[pick % len(items)]
            snap = apply_ticks(
                path, [Tick(path, item.line, checked, item.text)], snapshot=snap, lock_dir=folder
            )
            now = path.read_bytes()
            assert now == snap.data
            assert len(now) == len(data)
            assert all(a == b or i in boxes for i, (a, b) in enumerate(zip(data, now, strict=True)))
            assert now[item.offset] in (b"xX" if checked else b" ")
        if not items:
            assert path.read_bytes() == data
            return
        all_on = apply_ticks(path, ticks_for(snap, True), snapshot=snap, lock_dir=folder)
        assert all(item.checked for item in all_on.items)
        all_off = apply_ticks(path, ticks_for(all_on, False), snapshot=all_on, lock_dir=folder)
        if not any(item.checked for item in items):
            assert path.read_bytes() == data
        assert len(all_off.data) == len(data)
        assert only_boxes_differ(data, all_off.data)


OPS = st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=8)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(FILES, OPS)
def test_random_files_only_box_bytes_change(data: bytes, ops: list[tuple[int, bool]]) -> None:
    run_sequence(data, ops)


@PROPERTY
@given(SPEC_FILES, OPS)
def test_spec_examples_with_boxes_only_box_bytes_change(
    data: bytes, ops: list[tuple[int, bool]]
) -> None:
    run_sequence(data, ops)


@pytest.mark.parametrize("index", range(len(SPEC_MARKDOWN)), ids=lambda i: f"ex{i + 1}")
def test_every_spec_example_round_trips(index: int, tmp_path: Path) -> None:
    original = with_boxes(SPEC_MARKDOWN[index], [0, 3, 7])
    path = guide(tmp_path, original)
    snap = Snapshot.read(path)
    on = apply_ticks(path, ticks_for(snap, True), snapshot=snap, lock_dir=tmp_path)
    assert len(on.data) == len(original) and only_boxes_differ(original, on.data)
    off = apply_ticks(path, ticks_for(on, False), snapshot=on, lock_dir=tmp_path)
    assert path.read_bytes() == off.data == original


# --- kill -9 -------------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from runbook.state import Snapshot, Tick, apply_ticks

path, locks = Path(sys.argv[1]), sys.argv[2]
snap = Snapshot.read(path)
print("ready", flush=True)
state = True
while True:
    for item in snap.items:
        tick = Tick(path, item.line, state, item.text)
        snap = apply_ticks(path, [tick], snapshot=snap, lock_dir=locks)
    state = not state
"""


def test_kill_9_never_leaves_a_torn_guide(tmp_path: Path) -> None:
    items = b"".join(b"* [ ] %d. Step with a longer text\r\n" % n for n in range(60))
    original = b"\xef\xbb\xbf# Guide\r\n\r\n" + items + b"trailing   \rno final newline"
    path = guide(tmp_path, original)
    locks = tmp_path / "locks"
    rng = random.Random(9)
    seen: set[bytes] = set()
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(locks)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.01, 0.12))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        now = path.read_bytes()
        assert len(now) == len(original)
        assert only_boxes_differ(original, now)
        assert len(Snapshot.of(path, now).items) == 60
        seen.add(now)
    assert len(seen) > 1, "the child never got to write before being killed"
    # The killed writer's lock does not block the next run.
    snap = Snapshot.read(path)
    done = apply_ticks(path, ticks_for(snap, False), snapshot=snap, lock_dir=locks, wait=0)
    assert done.data == original


RACER = """
import sys
from pathlib import Path
from runbook.state import Snapshot, Tick, apply_ticks

path, locks, parity = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
snap = Snapshot.read(path)
sys.stdin.read()
for item in snap.items[parity::2]:
    tick = Tick(path, item.line, True, item.text)
    apply_ticks(path, [tick], snapshot=snap, lock_dir=locks, wait=20)
"""


def test_two_writers_with_stale_snapshots_keep_each_others_ticks(tmp_path: Path) -> None:
    original = b"".join(b"* [ ] %d. Step\n" % n for n in range(40))
    path = guide(tmp_path, original)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(tmp_path / "locks"), str(parity)],
            stdin=subprocess.PIPE,
        )
        for parity in (0, 1)
    ]
    time.sleep(0.3)  # both have read their snapshot before anyone writes
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.close()
    assert [racer.wait(timeout=30) for racer in racers] == [0, 0]
    assert path.read_bytes() == original.replace(b"[ ]", b"[x]")


def test_errors_are_runbook_errors() -> None:
    assert issubclass(ConcurrentEditError, RunbookError)


# --- the fast paths of a long run: ticks against the snapshot the run loaded ------------------


def reference_only_boxes_differ(old: Snapshot, current: Snapshot) -> bool:
    """The definition, byte by byte: every difference is a box byte of ``old`` that now
    holds ' ', 'x' or 'X'."""
    if len(old.data) != len(current.data):
        return False
    boxes = {item.offset for item in old.items}
    return all(
        a == b or (i in boxes and b in b" xX")
        for i, (a, b) in enumerate(zip(old.data, current.data, strict=True))
    )


@PROPERTY
@given(FILES | SPEC_FILES, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255))))
def test_only_boxes_differ_is_the_byte_by_byte_definition(
    data: bytes, edits: list[tuple[int, int]]
) -> None:
    from runbook.state import _only_boxes_differ, item_now

    old = Snapshot.of("g.md", data)
    boxes = sorted(item.offset for item in old.items)
    changed = bytearray(data)
    for pick, byte in edits:
        # Mostly box bytes set to a state byte, sometimes any byte anywhere.
        if boxes and pick % 3:
            changed[boxes[pick % len(boxes)]] = b" xX"[byte % 3]
        elif changed:
            changed[pick % len(changed)] = byte
    current = Snapshot.of("g.md", bytes(changed))
    same = _only_boxes_differ(old, current)
    assert same == reference_only_boxes_differ(old, current)
    if same:
        # Items are where they were, with their text; only their boxes may differ.
        assert [(i.line, i.offset, i.text) for i in current.items] == [
            (i.line, i.offset, i.text) for i in old.items
        ]
        for item in old.items:
            tick = Tick(Path("g.md"), item.line, True, item.text)
            assert item_now(tick, old, current) == current.item_at(item.line)


@PROPERTY
@given(FILES | SPEC_FILES, OPS)
def test_ticks_against_the_loaded_snapshot_only_change_box_bytes(
    data: bytes, ops: list[tuple[int, bool]]
) -> None:
    """What a run does: every tick names a line of the guide as loaded, and passes that
    snapshot, while the file holds the run's earlier ticks."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "guide.md"
        path.write_bytes(data)
        loaded = Snapshot.read(path)
        expected = bytearray(data)
        for pick, checked in ops:
            if not loaded.items:
                break
            item = loaded.items[pick % len(loaded.items)]
            now = apply_ticks(
                path, [Tick(path, item.line, checked, item.text)], snapshot=loaded, lock_dir=folder
            )
            if not checked:
                expected[item.offset] = 0x20
            elif expected[item.offset] == 0x20:
                expected[item.offset] = 0x78
            assert path.read_bytes() == now.data == bytes(expected)
