"""Redaction: one-shot and streaming forms agree and never let a secret through."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.redact import MASK, MASK_TEXT, Redactor

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


def test_holdback_is_bounded_by_longest_secret() -> None:
    redactor = Redactor(["abcdef", "xy"])
    assert redactor.holdback == 5
    passed = redactor.feed(b"0123456789" * 3 + b"abcde")
    assert len(passed) == 35 - 5
    assert redactor.flush() == b"abcde"


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
