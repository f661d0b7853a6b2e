"""Where each ``<placeholder>`` stands in shell code, and the reference that keeps it data.

A value never becomes shell source: each placeholder becomes a reference to a shell
variable, written to suit its context. Quoting alone is enough where bash only expands a
variable (words, quotes, here-documents, ``${x:-…}`` words). Elsewhere bash reads the
variable's text again: as arithmetic (``$(( ))``, ``(( ))``, ``let``, ``[[ … -gt … ]]``,
array subscripts, substring offsets), where ``x[$(cmd)]`` runs ``cmd``; or as a variable
name (``printf -v``, ``read``, ``declare``, ``${!x}``), where a subscript runs the same way.
Those uses carry a ``Limit``: the value must be a whole number, or a plain name. Where the
shell runs the text as code (``eval``, ``bash -c``, a command for ``ssh`` or ``su``, a
here-document fed to a shell) no quoting keeps a value data: such uses are ``code`` uses,
which lint reports.

The scanner reads bash's quoting and nesting (quotes, ``$'…'``, ``$( )``, backticks,
``${ }``, arithmetic, ``[[ ]]``, here-documents, comments) the way bash does for the code
guides hold; it is held to real bash by property tests that run hostile values through
every context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from runbook.errors import UsageError
from runbook.model import Limit
from runbook.shellcommands import DECLARE, Commands, Use, Word, command_name

PLACEHOLDER_RE = re.compile(r"(?<!<)<([A-Za-z][A-Za-z0-9_.-]*)>(?!>)")
"""A ``<name>`` input in a command (not ``<<`` or ``>>``): the one rule of placeholder syntax."""

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEPARATORS = frozenset(";&|()\n")
# None of them a separator, blank, quote, escape, expansion, redirection, comment,
# subscript or assignment: what the command loop and word_part take one at a time.
_PLAIN_RE = re.compile(r"[^ \t\n;&|()<>\\'\"$`\[=#]+")
_HEREDOC_RE = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\?([A-Za-z_][\w.-]*))")


class Scanner:
    """Rewrite placeholders in shell code, noting the context of each."""

    def __init__(
        self,
        code: str,
        wanted: set[str],
        literal: Mapping[str, str],
        var: Callable[[str], str],
    ) -> None:
        self.src = code
        self.wanted = wanted
        self.literal = literal
        self.var = var
        self.out: list[str] = []
        self.uses: list[Use] = []
        self.heredocs = HereDocs(self)
        self.assoc = set(re.findall(r"\b(?:declare|typeset|local)\s+-\w*A\w*\s+(\w+)", code))
        self.rules = Commands(self.uses, self.assoc)

    # -- placeholders ----------------------------------------------------------------------

    def placeholder(self, i: int) -> re.Match[str] | None:
        """Return the placeholder at ``i`` if it is one this scan replaces."""
        if self.src[i] != "<" or (i and self.src[i - 1] == "<"):
            return None
        m = PLACEHOLDER_RE.match(self.src, i)
        return m if m and m.group(1) in self.wanted else None

    def use(self, name: str, form: str, limit: Limit | None = None) -> int:
        """Write a reference to ``name`` in ``form`` (``word``, ``bare``, ``single`` …)."""
        var = self.var(name)
        self.out.append(
            {
                "word": f'"${{{var}}}"',
                "bare": f"${{{var}}}",
                "single": f"'\"${{{var}}}\"'",
                "ansi": f"'\"${{{var}}}\"$'",
                "indirect": f"!{var}",
                "var": var,
            }[form]
        )
        self.uses.append(Use(name, limit))
        return len(self.uses) - 1

    # -- the command level ------------------------------------------------------------------

    def commands(self, i: int, close: str = "") -> int:
        """Scan commands from ``i`` up to ``close`` (``)`` or a backtick); return the end."""
        src, n = self.src, len(self.src)
        words: list[Word] = []
        word: Word | None = None
        depth = cases = 0  # open subshells; open case statements, whose patterns end in )
        while i < n:
            ch = src[i]
            if close == "`" and ch == "`":
                break
            if close == ")" and ch == ")" and depth == 0 and not cases:
                break
            if (
                ch in "&|()<>"
                and command_name(words) == "[["
                and not any(w.raw == "]]" for w in words)
                and not self.placeholder(i)
            ):
                # Inside [[ ]] these are operators of the test, not command separators.
                if word is not None:
                    words.append(word)
                word = Word([ch])
                self.out.append(ch)
                i += 1
                continue
            if ch in " \t" or ch in _SEPARATORS:
                if word is not None:
                    words.append(word)
                    word = None
                    cases += {"case": 1, "esac": -1}.get(words[-1].raw, 0)
                if ch not in _SEPARATORS:
                    self.out.append(ch)
                    i += 1
                    continue
                if ch == "(" and src.startswith("((", i) and command_name(words) in ("", "for"):
                    self.out.append("((")
                    i = self.arith(i + 2, "))", "(( ))")
                    continue
                if ch == "(":
                    depth += 1
                elif ch == ")" and depth:
                    depth -= 1
                self.rules.command_end(words)
                words = []
                self.out.append(ch)
                i += 1
                if ch == "\n":
                    i = self.heredocs.bodies(i)
                continue
            if ch == "#" and word is None:
                end = src.find("\n", i)
                end = n if end < 0 else end
                self.out.append(src[i:end])
                i = end
                continue
            if src.startswith("<<", i) and not src.startswith("<<<", i):
                if word is not None:
                    words.append(word)
                    word = None
                i = self.heredocs.operator(i, words)
                continue
            if word is None:
                word = Word()
            plain = _PLAIN_RE.match(src, i)
            if plain:
                # Characters no rule here or in word_part looks at: taken as a run, as
                # word_part would take them one by one.
                self.out.append(plain.group())
                word.text.append(plain.group())
                i = plain.end()
                continue
            i = self.word_part(i, word, words)
        if word is not None:
            words.append(word)
        self.rules.command_end(words)
        return i

    def word_part(self, i: int, word: Word, words: list[Word], *, element: bool = False) -> int:
        """Scan one piece of a word (a character, a quoted string, an expansion); an
        ``element`` of an array literal assigns nothing itself."""
        src = self.src
        ch = src[i]
        before = len(self.uses)
        m = self.placeholder(i)
        if m:
            word.uses.append(self.use(m.group(1), "word"))
            word.text.append(m.group(0))
            return m.end()
        if ch == "\\":
            self.out.append(src[i : i + 2])
            word.text.append(src[i : i + 2])
            return i + 2
        if ch == "'":
            end = self.single(i + 1)
        elif src.startswith("$'", i):
            end = self.ansi(i + 2)
        elif ch == '"' or src.startswith('$"', i):
            skip = 1 if ch == '"' else 2
            self.out.append(src[i : i + skip])
            end = self.double(i + skip, '"')
        elif ch == "$" or ch == "`":
            end = self.expansion(i)
        elif ch == "[" and not element and self._subscript_here(word, words):
            self.out.append("[")
            end = self.subscript(i + 1, word.raw.rstrip("+"))
        elif ch == "=" and src.startswith("=(", i) and not element and self._assigns(words):
            self.out.append("=(")
            end = self.array_literal(i + 2, word.raw.rstrip("+"))
        else:
            self.out.append(ch)
            end = i + 1
        word.text.append(src[i:end])
        word.uses.extend(range(before, len(self.uses)))
        return end

    @staticmethod
    def _assigns(words: list[Word]) -> bool:
        """Whether a word here may assign a variable: before the command, or for declare."""
        name = command_name(words)
        return not name or name in DECLARE

    def _subscript_here(self, word: Word, words: list[Word]) -> bool:
        """A ``[`` after a name in an assignment (``a[i]=``) or a name argument of declare …"""
        if not _NAME_RE.fullmatch(word.raw):
            return False
        name = command_name(words)
        return not name or name in DECLARE or name in ("unset", "read", "printf")

    # -- words in quotes --------------------------------------------------------------------

    def single(self, i: int) -> int:
        """Scan a single-quoted string after its opening quote."""
        self.out.append("'")
        return self.quoted(i, "'", "single", escapes=False)

    def ansi(self, i: int) -> int:
        """Scan ``$'…'`` after its opening."""
        self.out.append("$'")
        return self.quoted(i, "'", "ansi", escapes=True)

    def quoted(self, i: int, end: str, form: str, *, escapes: bool) -> int:
        src, n = self.src, len(self.src)
        while i < n:
            m = self.placeholder(i)
            if m:
                self.use(m.group(1), form)
                i = m.end()
                continue
            ch = src[i]
            if escapes and ch == "\\":
                self.out.append(src[i : i + 2])
                i += 2
                continue
            self.out.append(ch)
            i += 1
            if ch == end:
                return i
        return i

    def double(self, i: int, end: str) -> int:
        """Scan a double-quoted string (or a here-document body, ``end`` empty) after its
        opening; expansions inside are scanned in their own contexts."""
        src, n = self.src, len(self.src)
        while i < n:
            m = self.placeholder(i)
            if m:
                self.use(m.group(1), "bare")
                i = m.end()
                continue
            ch = src[i]
            if ch == "\\":
                self.out.append(src[i : i + 2])
                i += 2
            elif ch == "$" or ch == "`":
                i = self.expansion(i)
            else:
                self.out.append(ch)
                i += 1
                if ch == end:
                    return i
        return i

    # -- expansions -------------------------------------------------------------------------

    def expansion(self, i: int) -> int:
        """Scan ``$(( ))``, ``$( )``, ``${ }``, ``$[ ]`` or a backtick command at ``i``."""
        src = self.src
        if src.startswith("$((", i):
            self.out.append("$((")
            return self.arith(i + 3, "))")
        if src.startswith("$(", i):
            self.out.append("$(")
            end = self.commands(i + 2, ")")
            self.out.append(src[end : end + 1])
            return end + 1
        if src.startswith("${", i):
            self.out.append("${")
            return self.parameter(i + 2)
        if src.startswith("$[", i):
            self.out.append("$[")
            return self.arith(i + 2, "]")
        if src[i] == "`":
            self.out.append("`")
            end = self.commands(i + 1, "`")
            self.out.append(src[end : end + 1])
            return end + 1
        self.out.append("$")
        return i + 1

    def arith(self, i: int, close: str, context: str = "") -> int:
        """Scan arithmetic up to ``close``: every placeholder there must be a number."""
        label = context or {"))": "$(( ))", "]": "$[ ]"}[close]
        return self.nested(i, close, "()", "bare", Limit("integer", label))

    def subscript(self, i: int, array: str) -> int:
        """Scan an array subscript after ``[``: arithmetic unless the array is associative."""
        if array in self.assoc:
            return self.nested(i, "]", "[]", "word", None)
        return self.nested(i, "]", "[]", "bare", Limit("integer", "an array subscript"))

    def nested(self, i: int, close: str, pair: str, form: str, limit: Limit | None) -> int:
        """Scan up to ``close`` outside the nesting ``pair`` of brackets: each placeholder a
        ``form`` reference under ``limit``, expansions and quotes in their own contexts."""
        src, n = self.src, len(self.src)
        depth = 0
        while i < n:
            if depth == 0 and src.startswith(close, i):
                self.out.append(close)
                return i + len(close)
            m = self.placeholder(i)
            if m:
                self.use(m.group(1), form, limit)
                i = m.end()
                continue
            ch = src[i]
            if ch in "$`":
                i = self.expansion(i)
            elif ch == "'":
                i = self.single(i + 1)
            elif ch == '"':
                self.out.append('"')
                i = self.double(i + 1, '"')
            else:
                depth += {pair[0]: 1, pair[1]: -1}.get(ch, 0)
                self.out.append(ch)
                i += 1
        return i

    def parameter(self, i: int) -> int:
        """Scan ``${…}`` after its opening: name, subscript, then operator and word."""
        src, n = self.src, len(self.src)
        if i < n and src[i] in "!#" and not src.startswith("#}", i):
            self.out.append(src[i])
            i += 1
            indirect = src[i - 1] == "!"
        else:
            indirect = False
        m = self.placeholder(i) if i < n else None
        name = ""
        if m:
            # ${<name>} (or ${!<name>}): the variable the value names.
            self.use(m.group(1), "var" if indirect else "indirect", Limit("name", "${ }"))
            i = m.end()
        else:
            nm = _NAME_RE.match(src, i) or re.compile(r"[0-9]+|[@*#?$!-]").match(src, i)
            if nm:
                name = nm.group()
                self.out.append(name)
                i = nm.end()
        if i < n and src[i] == "[":
            self.out.append("[")
            i = self.subscript(i + 1, name)
        if i < n and src[i] == ":" and (i + 1 >= n or src[i + 1] not in "-=+?"):
            self.out.append(":")
            return self.arith_until_brace(i + 1)
        return self.parameter_word(i)

    def arith_until_brace(self, i: int) -> int:
        """Scan ``offset:length`` of ``${x:offset:length}``: arithmetic up to ``}``."""
        src, n = self.src, len(self.src)
        limit = Limit("integer", "a ${x:offset:length} offset")
        while i < n and src[i] != "}":
            m = self.placeholder(i)
            if m:
                self.use(m.group(1), "bare", limit)
                i = m.end()
            elif src[i] in "$`":
                i = self.expansion(i)
            else:
                self.out.append(src[i])
                i += 1
        self.out.append(src[i : i + 1])
        return i + 1

    def parameter_word(self, i: int) -> int:
        """Scan the operator's word of ``${x:-word}``, ``${x/pat/rep}`` … up to ``}``."""
        src, n = self.src, len(self.src)
        depth = 0
        while i < n:
            ch = src[i]
            if ch == "}" and depth == 0:
                self.out.append("}")
                return i + 1
            m = self.placeholder(i)
            if m:
                # Quoted even inside double quotes: a pattern or replacement stays literal.
                self.use(m.group(1), "word")
                i = m.end()
                continue
            if ch == "\\":
                self.out.append(src[i : i + 2])
                i += 2
            elif ch == "'":
                i = self.single(i + 1)
            elif ch == '"':
                self.out.append('"')
                i = self.double(i + 1, '"')
            elif ch in "$`":
                i = self.expansion(i)
            else:
                depth += {"{": 1, "}": -1}.get(ch, 0)
                self.out.append(ch)
                i += 1
        return i

    def array_literal(self, i: int, array: str) -> int:
        """Scan the elements of ``array=( … )``: ``[i]=v`` subscripts and words."""
        src, n = self.src, len(self.src)
        while i < n and src[i] != ")":
            ch = src[i]
            if ch == "[" and (i == 0 or src[i - 1] in " \t\n("):
                self.out.append("[")
                i = self.subscript(i + 1, array)
                continue
            word = Word()
            i = self.word_part(i, word, [], element=True)
        if i < n:
            self.out.append(")")
            i += 1
        return i


class HereDocs:
    """Here-documents: noted at their operator, their bodies read once the line ends."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.pending: list[tuple[str, bool, bool, str]] = []
        """Opened on this line: (delimiter, tabs stripped, quoted, the command running it)."""

    def operator(self, i: int, words: list[Word]) -> int:
        """Note a here-document (``<<EOF``, ``<<-'EOF'``); its body follows the line."""
        sc = self.scanner
        m = _HEREDOC_RE.match(sc.src, i)
        if not m:
            sc.out.append("<<")
            return i + 2
        delim = m.group(2) or m.group(3) or m.group(4)
        self.pending.append(
            (delim, m.group(1) == "-", m.group(4) is None, sc.rules.code_for(words))
        )
        sc.out.append(m.group(0))
        return m.end()

    def bodies(self, i: int) -> int:
        """Scan the bodies of the here-documents opened on the line that just ended."""
        sc = self.scanner
        src = sc.src
        while self.pending:
            delim, strip, quoted, code_for = self.pending.pop(0)
            while i < len(src):
                end = src.find("\n", i)
                end = len(src) if end < 0 else end
                line = src[i:end]
                if (line.lstrip("\t") if strip else line) == delim:
                    sc.out.append(src[i : end + 1])
                    i = end + 1
                    break
                before = len(sc.uses)
                if quoted:
                    self._literal(line)
                else:
                    self._expanding(line)
                for k in range(before, len(sc.uses)):
                    if code_for:
                        sc.rules.restrict(k, code=code_for)
                sc.out.append(src[end : end + 1])
                i = end + 1
        return i

    def _expanding(self, line: str) -> None:
        """Scan one line of an unquoted here-document body: expansions, no quotes."""
        sc = self.scanner
        sub = Scanner(line, sc.wanted, sc.literal, sc.var)
        sub.assoc = sc.assoc
        sub.double(0, "")
        sc.out.extend(sub.out)
        sc.uses.extend(sub.uses)

    def _literal(self, line: str) -> None:
        """Write one line of a quoted here-document: values there must be known and public."""
        sc = self.scanner

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in sc.wanted:
                return m.group(0)
            sc.uses.append(Use(name, None))
            if name in sc.literal:
                return sc.literal[name]
            raise UsageError(
                f"<{name}> stands in a quoted heredoc (<<'EOF'), where the shell expands "
                "nothing, and its value is secret or unknown",
                hint="use an unquoted heredoc delimiter (<<EOF) so the value can be expanded",
            )

        sc.out.append(PLACEHOLDER_RE.sub(repl, line))


def scan(
    code: str,
    names: set[str],
    var: Callable[[str], str],
    literal: Mapping[str, str] | None = None,
) -> tuple[str, list[Use]]:
    """Return ``code`` with each placeholder in ``names`` replaced, and every use found."""
    scanner = Scanner(code, names, literal if literal is not None else {}, var)
    scanner.commands(0)
    return "".join(scanner.out), scanner.uses
