"""Redaction: one-shot and streaming forms agree and never let a secret through."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.redact import MASK, MASK_TEXT, Redactor
from tests.test_exec import CANARY, cli_env
from tests.test_exec_pty import Terminal
from tests.test_xtrace import WrittenWorkspace

# Secrets are drawn without "*": a secret made of mask characters is visible in the mask.
_ALPHABET = b"abc\x00\xff\n"
_secret_bytes = st.binary(min_size=1, max_size=6).map(
    lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)
)
_secrets = st.lists(
    _secret_bytes.map(lambda b: b.decode("utf-8", "surrogateescape")), min_size=0, max_size=4
)
_streams = st.binary(max_size=200).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b))


def _stream(redactor: Redactor, chunks: list[bytes]) -> bytes:
    out = [redactor.feed(chunk) for chunk in chunks]
    out.append(redactor.flush())
    return b"".join(out)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return chunks


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        (["hunter2"], "pw=hunter2;", "pw=********;"),
        (["ab", "abc"], "xabcx", "x********x"),
        (["abc", "bcd"], "abcd", "********d"),
        (["s"], "sss", "************************"),
        (["pässwörd"], "<pässwörd>", "<********>"),
        ([], "nothing to hide", "nothing to hide"),
        ([""], "empty secrets are ignored", "empty secrets are ignored"),
    ],
)
def test_redact_text(secrets: list[str], text: str, expected: str) -> None:
    redactor = Redactor(secrets)
    assert redactor.redact_text(text) == expected
    assert redactor.redact_bytes(text.encode()) == expected.encode()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_secret_split_across_chunks(size: int) -> None:
    secret = "correct-horse-battery"
    data = f"a {secret} b {secret}{secret} c".encode()
    redactor = Redactor([secret])
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    out = _stream(redactor, chunks)
    assert out == b"a " + MASK + b" b " + MASK + MASK + b" c"


def test_only_the_start_of_a_secret_is_held_back() -> None:
    redactor = Redactor(["abcdef", "xy"])
    assert redactor.feed(b"0123456789" * 3 + b"abcde") == b"0123456789" * 3
    assert redactor.held == b"abcde"
    assert redactor.feed(b"!") == b"abcde!"
    assert redactor.feed(b"x") == b"" and redactor.held == b"x"
    assert redactor.flush() == b"x"


def test_a_prompt_passes_at_once_while_secrets_are_masked() -> None:
    redactor = Redactor(["correct-horse-battery", "it's a secret"])
    assert redactor.feed(b"Proceed? ") == b"Proceed? "
    assert redactor.feed(b"[y/N] c") == b"[y/N] "  # "c" may start a secret
    assert redactor.feed(b"orrect-horse-battery\n") == MASK + b"\n"
    assert redactor.feed(b"x='it'\\''s a secret'") == b"x='" + MASK + b"'"
    assert redactor.pending == 0


def test_a_match_over_a_held_tail_passes_what_follows_it() -> None:
    # The "b" that could start "bcdefg" belongs to the masked "ab": nothing waits.
    redactor = Redactor(["ab", "bcdefg"])
    assert redactor.feed(b"xab") == b"x" + MASK
    assert redactor.feed(b"cde") == b"cde"
    assert redactor.flush() == b""


def test_no_secrets_means_no_holdback() -> None:
    redactor = Redactor()
    assert redactor.feed(b"abc") == b"abc"
    assert redactor.flush() == b""


def test_secret_added_mid_stream() -> None:
    redactor = Redactor()
    first = redactor.feed(b"before ")
    redactor.add("token-123")
    rest = redactor.feed(b"token-") + redactor.feed(b"123 after") + redactor.flush()
    assert first + rest == b"before " + MASK + b" after"
    assert "token-123" in redactor
    assert len(redactor) == 1


def test_mask_text_matches_mask() -> None:
    assert MASK_TEXT.encode() == MASK


@settings(max_examples=400, deadline=None)
@given(secrets=_secrets, data=_streams, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_equals_one_shot(secrets: list[str], data: bytes, cuts: list[int]) -> None:
    one_shot = Redactor(secrets).redact_bytes(data)
    streamed = _stream(Redactor(secrets), _split(data, cuts))
    assert streamed == one_shot
    for secret in secrets:
        assert secret.encode("utf-8", "surrogateescape") not in streamed


@settings(max_examples=200, deadline=None)
@given(secrets=_secrets, data=_streams)
def test_byte_by_byte_holds_back_at_most_longest_minus_one(secrets: list[str], data: bytes) -> None:
    redactor = Redactor(secrets)
    for i in range(len(data)):
        redactor.feed(data[i : i + 1])
        assert redactor.pending <= redactor.holdback
    redactor.flush()
    assert redactor.pending == 0


# Characters whose shell forms differ from the secret (quotes, backslash, $, non-ASCII),
# and the octal digits of "ä" as $'\303\244'.
_QUOTING = "ab'\"\\$ ä"
_quoted_secrets = st.lists(st.text(alphabet=_QUOTING, min_size=1, max_size=7), max_size=4)
_text = st.text(alphabet=_QUOTING + "0234", max_size=8).map(lambda t: t.encode())


def _undecided(data: bytes, patterns: frozenset[bytes]) -> bytes:
    """Return what a stream must still hold after ``data``: all from the first position
    the one-shot scan reaches where a pattern longer than the rest could still match."""
    pos = 0
    while pos < len(data):
        rest = data[pos:]
        if any(len(p) > len(rest) and p.startswith(rest) for p in patterns):
            return rest
        pos += max((len(p) for p in patterns if rest.startswith(p)), default=1)
    return b""


def _leftmost_longest(data: bytes, patterns: frozenset[bytes]) -> bytes:
    """Mask ``data`` the plain way: at each position, the longest pattern found there."""
    out, pos = [], 0
    while pos < len(data):
        size = max((len(p) for p in patterns if data.startswith(p, pos)), default=0)
        out.append(MASK if size else data[pos : pos + 1])
        pos += size or 1
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(secrets=_quoted_secrets, data=st.data())
def test_streaming_holds_back_exactly_what_may_still_become_a_secret(
    secrets: list[str], data: st.DataObject
) -> None:
    redactor = Redactor(secrets)
    patterns = redactor.patterns
    pieces = _text
    if patterns:
        # Whole secrets and forms, and their beginnings, so that tails are often held.
        starts = st.sampled_from(sorted(patterns)).flatmap(
            lambda p: st.integers(0, len(p)).map(lambda k: p[:k])
        )
        pieces = st.one_of(_text, st.sampled_from(sorted(patterns)), starts)
    stream = b"".join(data.draw(st.lists(pieces, max_size=12)))
    cuts = data.draw(st.lists(st.integers(min_value=0), max_size=10))
    out, fed = [], b""
    for chunk in _split(stream, cuts):
        out.append(redactor.feed(chunk))
        fed += chunk
        held = redactor.held
        assert fed.endswith(held)
        assert not held or any(len(p) > len(held) and p.startswith(held) for p in patterns)
        assert held == _undecided(fed, patterns)  # never more than needed
    out.append(redactor.flush())
    streamed = b"".join(out)
    assert streamed == Redactor(secrets).redact_bytes(stream) == _leftmost_longest(stream, patterns)
    for pattern in patterns:
        assert pattern not in streamed


def test_a_prompt_reaches_the_terminal_before_its_answer_is_sent(tmp_path: Path) -> None:
    # The command stays busy for a second after its prompt, as a slow step would: the
    # prompt must show meanwhile, although a secret is being masked.
    ws = WrittenWorkspace(
        tmp_path,
        ["printf '%s? ' Proceed; sleep 1; read -r a; echo \"answer: $a\"; : <db-password>"],
        info='bash { .run expect="Proceed?" send="affirmative-42" }',
    )
    term = Terminal(ws, env=cli_env(TERM="xterm-256color", RUNBOOK_SET_DB_PASSWORD=CANARY))
    term.expect("Proceed? ")
    assert "affirmative-42" not in term.text
    term.expect("answer: affirmative-42")
    assert term.finish() == 0
    assert CANARY not in term.text


def test_secrets_nested_too_deep_for_one_trie_regex_still_mask_the_longest() -> None:
    # Each branches off the next one's path: the plain alternation takes over.
    redactor = Redactor(["a" * n + "b" for n in range(1, 150)])
    assert redactor.redact_bytes(b"x" + b"a" * 120 + b"bab") == b"x" + MASK + MASK
    assert redactor.feed(b"a" * 200) == b"a" * 51 and redactor.pending == 149
