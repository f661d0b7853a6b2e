"""Values are data in every shell context: held to real bash with hostile values.

Each context either holds any value as data, or holds only some (a whole number, a variable
name) and refuses the others before anything runs, or runs text as code and is refused
outright (lint reports it). Real bash decides whether anything ran.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.errors import GuideError, UsageError
from runbook.inputs import check_value, shell_var, substitute, uses

# Contexts that hold any text: (template, what it prints for value V).
TEXT = {
    "printf in $( ) in quotes": ("echo \"[$(printf '<%s>' <x>)]\"", "[<{v}>]\n"),
    "backticks": ("printf '%s' `printf '%s' <x>`", None),
    "backticks in quotes": ("printf '%s' \"`printf '%s' <x>`\"", "{v}"),
    "${v:-word}": ("printf '%s' \"${unset_var:-<x>}\"", "{v}"),
    "${v:-word} unquoted": ("printf '%s' ${unset_var:-<x>}", None),
    "${v/pattern/}": ('v="a<x>b"; printf \'%s\' "${v/<x>/}"', "ab"),
    "${v/#pattern/rep}": ("v=ab; printf '%s' \"${v/#a/<x>}\"", "{v}b"),
    "$'…'": ("printf '%s' $'<x>'", "{v}"),
    "array element": ("a=(<x> z); printf '%s' \"${a[0]}\"", "{v}"),
    "case word": ("case <x> in *) printf '%s' ok;; esac", "ok"),
    "case pattern": ("case lit in <x>) printf '%s' same;; *) printf '%s' other;; esac", None),
    "here-document with $( )": ("cat <<EOF | head -c -1\n$(printf '%s' <x>)\nEOF", "{v}"),
    "here-string": ("cat <<< <x> | head -c -1", "{v}"),
    "assignment before a command": ("V=<x> bash -c 'printf %s \"$V\"'", "{v}"),
    "[ -eq ] (test builtin)": ("[ <x> -eq 1 ] 2>/dev/null; printf '%s' done", "done"),
    "associative subscript": ("declare -A m; m[<x>]=1; printf '%s' \"${!m[@]}\"", "{v}"),
    "associative literal": ("declare -A m=([<x>]=1); printf '%s' \"${!m[@]}\"", "{v}"),
    "[[ == ]]": ("[[ <x> == lit ]] && printf '%s' same || printf '%s' other", None),
}

# Contexts that read the value again as arithmetic: they hold whole numbers only.
INTEGER = {
    "$(( ))": ('echo "doubled: $(( <x> * 2 ))"', "doubled: {2v}\n"),
    "(( ))": ("(( <x> > 3 )) && echo gt || echo le", None),
    "[[ -gt ]]": ("[[ <x> -gt 3 ]] && echo gt || echo le", None),
    "let": ("let y=<x>*2; echo $y", "{2v}\n"),
    "array subscript": ("a=(0 1 2 3 4 5 6 7 8 9 10); echo ${a[<x>]}", None),
    "assignment subscript": ("a[<x>]=1; echo ${#a[@]}", None),
    "substring offset": ("v=abcdefghij; echo ${v:<x>:1}", None),
    "declare -i": ("declare -i n=<x>; echo $n", "{v}\n"),
    "for (( ))": ("for ((i=0; i< <x>; i++)); do :; done; echo $i", None),
    "unset subscript": ("a=(1 2 3); unset 'a[<x>]'; echo ${#a[@]}", None),
    "array literal subscript": ("a=([<x>]=1); echo ${#a[@]}", None),
    "declare -a literal subscript": ("declare -a a=([<x>]=1); echo ${#a[@]}", None),
}

# Contexts that take the value as a variable's name.
NAME = {
    "printf -v": ('printf -v <x> %s hi; echo "${!x_name}"', None),
    "read": ("read -r <x> <<< hi; echo ok", "ok\n"),
    "${<name>}": ("HOME=/h; echo ${<x>}", None),
    "declare -n": ("declare -n r=<x>; echo ok", "ok\n"),
    "[[ -v ]]": ("[[ -v <x> ]] && echo set || echo unset", None),
}

# Contexts where the shell runs the text as code: never data.
CODE = [
    "eval echo <x>",
    "eval \"echo '<x>'\"",
    "bash -c 'echo <x>'",
    'sh -c "echo <x>"',
    "sudo -u postgres bash -lc 'psql -c <x>'",
    'su - postgres -c "echo <x>"',
    "ssh admin@db1 'systemctl restart <x>'",
    "ssh -p 2222 admin@db1 echo <x>",
    "bash <<EOF\necho <x>\nEOF",
    "ssh admin@db1 <<EOF\necho <x>\nEOF",
    "sudo -i <<EOF\necho <x>\nEOF",
]

PWN = "touch PWNED"
HOSTILE = [
    f"x[$({PWN})]",
    f"a[$({PWN})]+1",
    f"$({PWN})",
    f"`{PWN}`",
    f"1+x[$({PWN})]",
    f"'; {PWN}; '",
    f'"; {PWN}; "',
    "RUNBOOK_IN_other",  # names the variable holding another hostile value
    "1 + 1",
    "a b",
    "*",
    "-n",
    "5",
    "-3",
    "010",
    "0",
    "name_1",
    "é ü 中文",
    "\\",
    "",
]
hostile = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\x7f"),
        max_size=60,
    ),
)


def run(code: str, value: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with <x> as ``value`` the way a session does: a variable, never source."""
    env = {
        "PATH": os.environ["PATH"],
        shell_var("x"): value,
        # A second input holding a hostile value, for values that name it.
        "RUNBOOK_IN_other": f"x[$({PWN})]",
        "x_name": value,
    }
    script = substitute(code, ["x"]).code
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=10
    )


def limits_of(code: str) -> list:  # type: ignore[type-arg]
    return [u.limit for u in uses(code, ["x"]) if u.limit is not None]


def accepted(code: str, value: str) -> bool:
    """Whether the checks made before anything runs take ``value`` for <x> in ``code``."""
    try:
        check_value("x", value, limits_of(code))
    except UsageError as exc:
        assert "<x>" in exc.message
        return False
    return True


def expected(template: str | None, value: str) -> str | None:
    if template is None:
        return None
    plain = value.lstrip("+-")
    doubled = str(int(value) * 2) if plain.isascii() and plain.isdigit() else ""
    return template.replace("{2v}", doubled).replace("{v}", value)


@pytest.mark.parametrize("context", sorted(TEXT))
@settings(max_examples=30, deadline=None)
@given(value=hostile)
def test_text_contexts_hold_any_value(
    context: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, want = TEXT[context]
    assert accepted(code, value), "a context that holds any text refused a value"
    cwd = tmp_path_factory.mktemp("bash")
    result = run(code, value, cwd)
    assert not (cwd / "PWNED").exists(), result.stderr
    if want is not None:
        assert result.stdout == expected(want, value), result.stderr


@pytest.mark.parametrize("context", sorted(INTEGER))
@settings(max_examples=30, deadline=None)
@given(value=hostile)
def test_arithmetic_contexts_hold_numbers_and_refuse_the_rest(
    context: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, want = INTEGER[context]
    assert limits_of(code), f"{context}: no limit found"
    digits = value[1:] if value[:1] in ("+", "-") else value
    whole = (
        digits != ""
        and all(c in "0123456789" for c in digits)
        and (digits == "0" or digits[0] != "0")
    )
    assert accepted(code, value) == whole
    if not whole:
        return  # refused before anything runs
    cwd = tmp_path_factory.mktemp("bash")
    result = run(code, value, cwd)
    assert not (cwd / "PWNED").exists()
    if want is not None:
        # As bash reads the number: "+5" is 5.
        assert result.stdout == expected(want, str(int(value))), result.stderr


@pytest.mark.parametrize("context", sorted(NAME))
@settings(max_examples=30, deadline=None)
@given(value=hostile)
def test_name_contexts_hold_names_and_refuse_the_rest(
    context: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, want = NAME[context]
    name = bool(value) and (value[0].isascii() and (value[0].isalpha() or value[0] == "_"))
    name = name and all(c.isascii() and (c.isalnum() or c == "_") for c in value)
    assert accepted(code, value) == name
    if not name:
        return
    cwd = tmp_path_factory.mktemp("bash")
    result = run(code, value, cwd)
    assert not (cwd / "PWNED").exists()
    if want is not None:
        assert result.stdout == want, result.stderr


@pytest.mark.parametrize("code", CODE)
def test_code_contexts_are_refused(code: str) -> None:
    assert any(u.code for u in uses(code, ["x"])), code
    with pytest.raises(GuideError, match=r"<x> stands in .*runs text as code"):
        substitute(code, ["x"])


@pytest.mark.parametrize(
    ("code", "value", "out"),
    [
        ("echo \"[$(printf '<%s>' <name>)]\"", "*", "[<*>]\n"),
        ('echo "doubled: $(( <retries> * 2 ))"', "5", "doubled: 10\n"),
    ],
)
def test_safe_values_pass_unchanged(code: str, value: str, out: str, tmp_path: Path) -> None:
    name = "name" if "<name>" in code else "retries"
    script = substitute(code, [name]).code
    env = {"PATH": os.environ["PATH"], shell_var(name): value}
    (tmp_path / "a-file").write_text("")  # a glob would find it
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.stdout == out


@pytest.mark.parametrize(
    "code", ["[[ <retries> -gt 3 ]] && echo many", "echo $(( <retries> * 2 ))"]
)
def test_the_reported_attack_is_refused(code: str) -> None:
    with pytest.raises(UsageError, match="<retries> is not a whole number"):
        check_value(
            "retries",
            "x[$(touch /tmp/PWNED)]",
            [u.limit for u in uses(code, ["retries"]) if u.limit],
        )


# -- end to end: `runbook exec` and `runbook lint` ---------------------------------------------

ARITH_BLOCK = '[[ <retries> -gt 3 ]] && echo many\necho "doubled: $(( <retries> * 2 ))"'


def test_exec_refuses_a_hostile_number_before_anything_runs(tmp_path: Path) -> None:
    from tests.conftest import one_step_guide, run_cli

    pwned = tmp_path / "PWNED"
    guide = one_step_guide(tmp_path, "echo started > started.txt\n" + ARITH_BLOCK)
    before = guide.read_bytes()
    done = run_cli(tmp_path, "exec", "guide.md", "--set", f"retries=x[$(touch {pwned})]")
    assert done.returncode == 2, done.stderr
    assert "<retries> is not a whole number" in done.stderr
    assert "guide.md:7" in done.stderr  # the block that reads it as arithmetic
    assert "Traceback" not in done.stderr
    assert not pwned.exists()
    assert not (tmp_path / "started.txt").exists()  # nothing ran
    assert guide.read_bytes() == before


def test_exec_takes_safe_values_unchanged(tmp_path: Path) -> None:
    from tests.conftest import one_step_guide, run_cli

    (tmp_path / "some-file").write_text("")  # what a glob of * would find
    one_step_guide(tmp_path, ARITH_BLOCK + "\necho \"[$(printf '<%s>' <name>)]\"")
    done = run_cli(tmp_path, "exec", "guide.md", "--set", "retries=5", "--set", "name=*")
    assert done.returncode == 0, done.stderr
    assert "many" in done.stdout
    assert "doubled: 10" in done.stdout
    assert "[<*>]" in done.stdout


@pytest.mark.parametrize("code", CODE[:4])
def test_lint_and_exec_refuse_values_run_as_code(tmp_path: Path, code: str) -> None:
    from tests.conftest import one_step_guide, run_cli

    one_step_guide(tmp_path, code)
    lint = run_cli(tmp_path, "lint", "guide.md")
    assert lint.returncode == 3
    assert "<x> stands in" in lint.stdout and "runs text as code" in lint.stdout
    dry = run_cli(tmp_path, "exec", "guide.md", "--dry-run", "--set", "x=1")
    assert dry.returncode == 3
    assert "runs text as code" in dry.stderr


def test_lint_takes_a_placeholder_in_a_quoted_heredoc(tmp_path: Path) -> None:
    """Its value is written as text at run time; only an unknown or secret one is refused."""
    from tests.conftest import one_step_guide, run_cli

    one_step_guide(tmp_path, "cat <<'EOF'\nhost: <host>\nEOF")
    lint = run_cli(tmp_path, "lint", "guide.md")
    assert lint.returncode == 0, lint.stdout
    done = run_cli(tmp_path, "exec", "guide.md", "--set", "host=db1")
    assert done.returncode == 0, done.stderr
    assert "host: db1" in done.stdout


def test_lint_checks_defaults_against_the_contexts(tmp_path: Path) -> None:
    """A default that exec would refuse is a lint error: one checker."""
    from tests.conftest import one_step_guide, run_cli

    guide = one_step_guide(tmp_path, ARITH_BLOCK)
    guide.write_text("---\ninputs: {retries: 'x[$(id)]'}\n---\n" + guide.read_text())
    lint = run_cli(tmp_path, "lint", "guide.md")
    assert lint.returncode == 3
    assert "<retries> is not a whole number" in lint.stdout
    dry = run_cli(tmp_path, "exec", "guide.md", "--dry-run")
    assert dry.returncode != 0
    assert "<retries> is not a whole number" in dry.stderr
