"""Where a failed block is retried from: the top-level command holding the failing line,
as bash reads the block, and the line the shell reports for a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.execution.retry import command_start, complete, rest
from runbook.shell.session import Session

BLOCK = """\
echo one
for i in 1 2; do
  echo "$i"
  test -e "$i.done"
done
cat <<'END'
line
END
if [ -d /nonexistent ]; then
  echo yes
else
  false
fi
a=1 && \\
  b=2 && \\
  false
echo 'a
b'
f() {
  false
}
f
"""


@pytest.mark.parametrize(
    ("line", "start"),
    [
        (1, 1),  # the first command: a whole retry
        (2, 2),
        (4, 2),  # inside the loop: the loop again
        (7, 6),  # inside a here-document: its command
        (12, 9),  # in the else branch: the whole if
        (16, 14),  # a continued line: where it began
        (18, 17),  # inside a quoted string
        (20, 19),  # inside a function's body: its definition
        (22, 22),
    ],
)
def test_the_failing_line_maps_to_its_top_level_command(line: int, start: int) -> None:
    assert command_start(BLOCK, line) == start


def test_a_line_outside_the_block_maps_to_nothing() -> None:
    assert command_start(BLOCK, 0) is None
    assert command_start(BLOCK, 99) is None


def test_bash_decides_what_is_complete() -> None:
    assert complete("echo a\n")
    for open_ in ("for i in 1; do\n", "echo 'a\n", "a &&\n", "cat <<END\nx\n", "f() {\n"):
        assert not complete(open_), open_


def test_the_rest_of_a_block_from_a_line() -> None:
    assert rest("a\nb\nc", 2) == "b\nc"


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("echo a\nfalse\necho b\n", "2"),
        ("echo a\nfor i in 1; do\n  false\ndone\n", "3"),
        ("g() { false; }\nf() { g; }\necho x\nf\n", "4"),  # the call, in the block
        ("trap 'echo handler' ERR\necho 1\nfalse\n", "3"),
        ("echo ok\n", ""),
    ],
)
def test_the_shell_reports_the_line_that_failed(tmp_path: Path, code: str, line: str) -> None:
    with Session(cwd=tmp_path) as shell:
        shell.run(code, timeout=10)
        assert shell.query('builtin printf %s "${__rb_line-}"').decode() == line
