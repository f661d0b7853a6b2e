"""Mask secret values in text and in byte streams, including across chunk boundaries.

A secret is masked as it is and in each form bash prints a value in: the quoting of
``set -x`` traces, ``${v@Q}``, ``printf %q``, ``declare -p`` and the patterns of ``[[ ]]``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator

MASK = b"********"
"""What every occurrence of a secret becomes."""

MASK_TEXT = MASK.decode("ascii")

MIN_QUOTED = 4
"""Secrets shorter than this are masked as they are only: their quoted forms (``\\'``,
``\\a\\b``) would mask far too much ordinary text."""

# Characters `printf %q` puts a backslash before (`#` and `~` only at the start).
_Q_SPECIAL = re.compile(r"""([ !"$&'()*,;<>?\[\\\]^`{|}])""")
# Characters a quoted `[[ x =~ "$v" ]]` operand has escaped in a trace.
_ERE_SPECIAL = re.compile(r"([$()*+.?\[\\^{|])")
_DQ_SPECIAL = re.compile(r'([\\"$`])')


def shell_forms(secret: str) -> set[bytes]:
    """Return the byte strings ``secret`` may show as in bash's output, itself included.

    Each quoted form is the text between the quotes bash adds, so the mask leaves the
    quotes (``'********'``). Forms that depend on the locale come in both variants: a
    C locale prints every non-ASCII byte as an octal escape, a UTF-8 one only characters
    it cannot print.
    """
    raw = _encode(secret)
    forms = {raw}
    if len(secret) < MIN_QUOTED:
        return forms
    single = secret.replace("'", "'\\''")
    texts = {
        single,  # 'v': set -x, ${v@Q}, set, alias, trap -p
        single.replace("'", "'\\''"),  # a ${v@Q} value quoted once more: x=${v@Q} traced
        _DQ_SPECIAL.sub(r"\\\1", secret),  # "v": declare -p, export -p
        _printf_q(secret),  # printf %q
        "".join("\\" + char for char in secret),  # [[ x == "$v" ]] traced
        _ERE_SPECIAL.sub(r"\\\1", secret),  # [[ x =~ "$v" ]] traced
    }
    forms.update(_encode(text) for text in texts)
    if not raw.isascii():
        forms.add(b"".join(b"\\" + bytes((byte,)) for byte in raw))  # == pattern, C locale
    # $'v': printf %q, ${v@Q} and declare -p for a value with a character the locale
    # cannot print.
    forms.add(_ansi_c(secret, lambda char: not char.isascii()))
    forms.add(_ansi_c(secret, lambda char: not char.isprintable()))
    return forms


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _printf_q(text: str) -> str:
    quoted = _Q_SPECIAL.sub(r"\\\1", text)
    return "\\" + quoted if quoted[:1] in ("#", "~") else quoted


def _ansi_c(text: str, octal: Callable[[str], bool]) -> bytes:
    """Return ``text`` as inside ``$'…'``, the characters ``octal`` picks as octal bytes."""
    out = bytearray()
    for char in text:
        if char in "\\'":
            out += b"\\" + char.encode()
        elif octal(char):
            out += b"".join(b"\\%03o" % byte for byte in _encode(char))
        else:
            out += _encode(char)
    return bytes(out)


_NESTING = 100
"""Deepest nesting of groups the trie regex may have; Python's regex compiler recurses."""


class _TooDeep(Exception):
    """The trie regex would nest too deep for the regex compiler."""


class _Matcher:
    """Every pattern in one trie, read two ways.

    As a regex, it finds the longest pattern at each position: its branches differ in
    their first byte, so at most one is followed and the cost does not grow with the
    number of patterns. As an Aho–Corasick automaton, it finds where the tail of a buffer
    may still grow into a pattern.
    """

    def __init__(self, patterns: set[bytes]) -> None:
        goto: list[dict[int, int]] = [{}]
        depth = [0]
        ends: set[int] = set()
        for pattern in patterns:
            node = 0
            for byte in pattern:
                child = goto[node].get(byte)
                if child is None:
                    child = len(goto)
                    goto[node][byte] = child
                    goto.append({})
                    depth.append(depth[node] + 1)
                node = child
            ends.add(node)
        self._goto = goto
        self._depth = depth
        self._ends = ends
        self._longest = max(depth)
        self.pattern = self._compile(patterns)
        self._fail, self._open = self._links()
        self._head = _heads(patterns)

    def _compile(self, patterns: set[bytes]) -> re.Pattern[bytes]:
        try:
            return re.compile(self._regex(0, 0))
        except (_TooDeep, RecursionError):
            # Python's alternation takes the first branch that matches: longest first.
            ordered = sorted(patterns, key=lambda s: (-len(s), s))
            return re.compile(b"|".join(re.escape(s) for s in ordered))

    def _regex(self, node: int, nesting: int) -> bytes:
        """Return a regex for the rests of the patterns below ``node``, longest first."""
        if nesting > _NESTING:
            raise _TooDeep
        goto = self._goto
        branches = []
        for byte, child in sorted(goto[node].items()):
            run = bytearray((byte,))
            # A chain of single children where no pattern ends is one literal.
            while len(goto[child]) == 1 and child not in self._ends:
                ((byte, child),) = goto[child].items()
                run.append(byte)
            rest = self._regex(child, nesting + 1) if goto[child] else b""
            branches.append(re.escape(bytes(run)) + rest)
        body = b"|".join(branches)
        if node in self._ends:  # a greedy `?` tries the longer patterns first
            return b"(?:" + body + b")?"
        return body if len(branches) == 1 else b"(?:" + body + b")"

    def _links(self) -> tuple[list[int], list[int]]:
        """Return each node's failure link and its deepest node (on that chain) with
        children: the longest suffix read so far that is a proper prefix of a pattern."""
        goto = self._goto
        fail = [0] * len(goto)
        opened = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:
            node = queue.popleft()
            opened[node] = node if goto[node] else opened[fail[node]]
            for byte, child in goto[node].items():
                back = fail[node]
                while back and byte not in goto[back]:
                    back = fail[back]
                fail[child] = goto[back].get(byte, 0)
                queue.append(child)
        return fail, opened

    def starts(self, buf: bytes) -> Iterator[int]:
        """Yield where each suffix of ``buf`` that is a proper prefix of some pattern
        starts, the longest first.

        Only the last (longest pattern - 1) bytes can hold one. A regex finds the first
        place that might (in C); the automaton reads on from there, once, and its failure
        links then give the suffixes one shorter than the other.
        """
        if self._head is None:
            return
        first = self._head.search(buf, max(len(buf) - self._longest + 1, 0))
        if first is None:
            return
        goto, fail = self._goto, self._fail
        node = 0
        for byte in buf[first.start() :]:
            while node and byte not in goto[node]:
                node = fail[node]
            node = goto[node].get(byte, 0)
        node = self._open[node]
        while node:
            yield len(buf) - self._depth[node]
            node = self._open[fail[node]]


def _heads(patterns: set[bytes], width: int = 4) -> re.Pattern[bytes] | None:
    """Return a regex matching where a proper prefix of a pattern may start: the first
    ``width`` bytes of a longer pattern, or fewer that end the buffer.

    Its branches start with distinct bytes, so the regex engine skips the other bytes
    without trying a match at each.
    """
    opened = {p[:j] for p in patterns for j in range(1, min(width, len(p) - 1) + 1)}

    def branches(prefix: bytes) -> bytes:
        if len(prefix) == width:
            return b""
        following = sorted({p[len(prefix)] for p in opened if p[:-1] == prefix})
        parts = [re.escape(bytes((b,))) + branches(prefix + bytes((b,))) for b in following]
        if prefix:
            parts.append(rb"\Z")
        return b"(?:" + b"|".join(parts) + b")"

    return re.compile(branches(b"")) if opened else None


class Redactor:
    """Replace every occurrence of every secret, in any of its shell forms, with ``********``.

    Matching is leftmost-longest and non-overlapping, so the streaming and the one-shot
    forms give the same result for any chunking of the same bytes. A secret made of mask
    characters (``*``) can still be seen in the mask itself; nothing else leaks.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[bytes] = set()
        self._patterns: set[bytes] = set()
        self._matcher: _Matcher | None = None
        self._stale = False
        self._held = b""
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Start masking ``secret`` and its shell forms (empty strings are ignored)."""
        raw = _encode(secret)
        if not raw or raw in self._secrets:
            return
        self._secrets.add(raw)
        self._patterns |= shell_forms(secret)
        # Built on first use: a run adds its secrets one by one before any output.
        self._stale = True

    def _compiled(self) -> _Matcher | None:
        """Return the matcher of every pattern, if there is any."""
        if self._stale:
            self._matcher = _Matcher(self._patterns)
            self._stale = False
        return self._matcher

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, secret: object) -> bool:
        if not isinstance(secret, str):
            return False
        return _encode(secret) in self._secrets

    @property
    def patterns(self) -> frozenset[bytes]:
        """Return every byte string that is masked: the secrets and their shell forms."""
        return frozenset(self._patterns)

    @property
    def held(self) -> bytes:
        """Return the bytes ``feed`` holds back: a proper prefix of some pattern, or none."""
        return self._held

    @property
    def pending(self) -> int:
        """Return how many bytes ``feed`` currently holds back."""
        return len(self._held)

    @property
    def holdback(self) -> int:
        """Return the most bytes ``feed`` may keep back (longest pattern minus one)."""
        return max(max(map(len, self._patterns), default=0) - 1, 0)

    def redact_bytes(self, data: bytes) -> bytes:
        """Return ``data`` with every secret masked (stateless)."""
        compiled = self._compiled()
        if compiled is None:
            return data
        return compiled.pattern.sub(MASK, data)

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret masked."""
        compiled = self._compiled()
        if compiled is None:
            return text
        return compiled.pattern.sub(MASK, _encode(text)).decode("utf-8", "surrogateescape")

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk of a stream; return what can already be passed on, masked.

        Only a tail that could still become a secret waits for the next chunk, so a
        prompt such as ``Proceed? `` passes at once.
        """
        buf = self._held + chunk if self._held else chunk
        matcher = self._compiled()
        if matcher is None:
            self._held = b""
            return buf
        # Decisions at positions before `limit` are final: no pattern longer than what
        # follows them in `buf` can still match there.
        starts = matcher.starts(buf)
        limit = next(starts, len(buf))
        out: list[bytes] = []
        cursor = 0
        for match in matcher.pattern.finditer(buf):
            if match.start() >= limit:
                break
            out.append(buf[cursor : match.start()])
            out.append(MASK)
            cursor = match.end()
            if cursor > limit:
                # The tail that waited is part of this match: a shorter one may wait.
                limit = next((start for start in starts if start >= cursor), len(buf))
        out.append(buf[cursor:limit])
        self._held = buf[limit:]
        return b"".join(out)

    def flush(self) -> bytes:
        """End the stream: return whatever was held back, masked."""
        held, self._held = self._held, b""
        return self.redact_bytes(held)
