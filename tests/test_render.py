"""Rendering: the line markers never change what Jinja produces, and lines map back home."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import IncludeError, TemplateError
from runbook.model import Rendered, rel
from runbook.render import Renderer, split_front_matter

VARIABLES = {"x": "X", "flag": True, "off": False, "items": ["a", "b"], "multi": "l1\nl2"}

# (A snippet's leading byte order mark is dropped on reading, unlike Jinja's loader.)
text_line = st.text(
    alphabet=st.characters(
        blacklist_categories=["Cs", "Cc"], blacklist_characters="{}%#\ue000\ue001\ufeff"
    ),
    max_size=30,
)


@st.composite
def template(draw: st.DrawFn, depth: int = 0) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(
                [
                    "text",
                    "text",
                    "var",
                    "var-strip",
                    "if",
                    "if-strip",
                    "for",
                    "raw",
                    "comment",
                    "blank",
                    "indent",
                ]
                if depth < 2
                else ["text", "var", "comment", "blank"]
            )
        )
        if kind == "text":
            parts.append(draw(text_line) + "\n")
        elif kind == "blank":
            parts.append("\n")
        elif kind == "indent":
            parts.append("    " + draw(text_line) + "\n")
        elif kind == "var":
            parts.append(
                draw(text_line)
                + " {{ "
                + draw(st.sampled_from(["x", "multi", "items|join(',')"]))
                + " }}\n"
            )
        elif kind == "var-strip":
            parts.append("  {{- x -}}\n")
        elif kind == "comment":
            parts.append("{# a\nmulti-line comment #}" + draw(st.sampled_from(["", "\n"])))
        elif kind == "raw":
            parts.append("{% raw %}{{.Names}} ${#A[@]}\n{% endraw %}\n")
        elif kind in ("if", "if-strip"):
            dash = "-" if kind == "if-strip" else ""
            cond = draw(st.sampled_from(["flag", "off"]))
            parts.append(
                f"{{%{dash} if {cond} {dash}%}}\n"
                + draw(template(depth + 1))
                + f"{{%{dash} endif {dash}%}}\n"
            )
        elif kind == "for":
            parts.append(
                "{% for i in items %}\n" + draw(template(depth + 1)) + "{{ i }}\n{% endfor %}\n"
            )
    return "".join(parts)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(source=template(), snippet=template())
def test_markers_never_change_the_output(tmp_path: Path, source: str, snippet: str) -> None:
    (tmp_path / "_s.md").write_text(snippet)
    page = source + "{% include '_s.md' %}\n" + source
    plain = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(tmp_path))
        .from_string(page)
        .render(VARIABLES)
    )
    for whole_pages in (False, True):
        ours = Renderer(tmp_path, whole_pages=whole_pages).render(
            page, tmp_path / "page.md", variables=VARIABLES
        )
        assert ours.text == plain
        assert len(ours.line_map) == len(plain.split("\n"))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page=st.lists(text_line, max_size=20), snippet=st.lists(text_line, min_size=1, max_size=20))
def test_plain_lines_map_to_their_file_and_line(
    tmp_path: Path, page: list[str], snippet: list[str]
) -> None:
    (tmp_path / "_s.md").write_text("\n".join(snippet) + "\n")
    source = "\n".join([*page, "{% include '_s.md' %}", "after"]) + "\n"
    rendered = Renderer(tmp_path).render(source, tmp_path / "page.md", first_line=5)
    lines = rendered.text.split("\n")
    for n, line in enumerate(lines):
        origin = rendered.line_map.origin(n)
        if not line.strip():
            continue  # blank lines carry no content to place
        if origin.path.name == "_s.md":
            assert snippet[origin.line - 1] == line
        else:
            expected = [*page, "", "after"][origin.line - 5]
            assert expected == line


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet=st.sampled_from(["a", " ", "\n", "\r", "\t", "é", "}", "%"]), max_size=40)
)
def test_pages_without_jinja_render_as_jinja_would(tmp_path: Path, text: str) -> None:
    plain = jinja2.Environment().from_string(text).render()
    ours = Renderer(tmp_path).render(text, tmp_path / "p.md")
    assert ours.text == plain
    assert len(ours.line_map) == len(plain.split("\n"))


def test_include_inside_a_tab_keeps_positions(tmp_path: Path) -> None:
    (tmp_path / "_s.md").write_text("first\nsecond\n")
    source = '=== "Tab"\n\n    {% include "_s.md" %}\nlast\n'
    rendered = Renderer(tmp_path).render(source, tmp_path / "p.md")
    assert rendered.text.split("\n")[:4] == ['=== "Tab"', "", "    first", "second"]
    assert [str(rendered.line_map.origin(i)).rsplit("/", 1)[1] for i in range(5)] == [
        "p.md:1",
        "p.md:2",
        "_s.md:1",
        "_s.md:2",
        "p.md:4",
    ]


@pytest.mark.parametrize(
    ("text", "body_line", "body_start"),
    [
        ("---\ntitle: x\n---\n# T\n", 4, "# T"),
        ("\ufeff---\r\ntitle: x\r\n---\r\n# T\r\n", 4, "# T"),
        ("---\n---\nbody\n", 3, "body"),
        ("# no front matter\n", 1, "# no"),
        ("---\nnot closed\n# T\n", 1, "---\nnot closed"),
    ],
)
def test_front_matter_split(text: str, body_line: int, body_start: str) -> None:
    _, body, first = split_front_matter(text)
    assert first == body_line
    assert body.startswith(body_start)


def test_undefined_variables_are_listed_together(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        Renderer(tmp_path).render(
            "{{ a }}\n{{ b }}\n{% if c is defined %}{{ c }}{% endif %}\n", tmp_path / "p.md"
        )
    assert "'a' (" in info.value.message and "'b' (" in info.value.message
    assert "'c'" not in info.value.message
    assert info.value.line == 1


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "_loop.md").write_text("again\n{% include '_loop.md' %}\n")
    with pytest.raises(IncludeError, match=r"include cycle: _loop\.md -> _loop\.md"):
        Renderer(tmp_path).render("{% include '_loop.md' %}", tmp_path / "p.md")


def test_ignore_missing_is_honoured(tmp_path: Path) -> None:
    out = Renderer(tmp_path).render(
        "a\n{% include '_none.md' ignore missing %}\nb\n", tmp_path / "p.md"
    )
    assert out.text == "a\n\nb"


@st.composite
def tag_page(draw: st.DrawFn) -> str:
    """A page using only what is rendered tag by tag: variables, includes and raw blocks."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["text", "text", "var", "include", "raw", "blank", "tag"]))
        if kind == "text":
            parts.append(draw(text_line) + draw(st.sampled_from(["\n", "\r\n", "\r"])))
        elif kind == "blank":
            parts.append("\n")
        elif kind == "var":
            expr = draw(st.sampled_from(["x", "multi", "items|join(',')", "flag", "'}'"]))
            parts.append(draw(text_line) + "{{ " + expr + " }}" + draw(text_line) + "\n")
        elif kind == "include":
            parts.append(draw(st.sampled_from(["", "    "])) + "{% include '_s.md' %}\n")
        elif kind == "raw":
            parts.append(
                draw(
                    st.sampled_from(
                        [
                            "{% raw %}{{.Names}} {% if %}\n${#A[@]}{% endraw %}\n",
                            "{%raw\n%}\n {{ x }}{% endraw %}",
                        ]
                    )
                )
            )
        else:
            parts.append("{{ x }}{{ multi }}")
    return "".join(parts) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page=tag_page(), snippet=template())
def test_pages_rendered_tag_by_tag_match_jinja(tmp_path: Path, page: str, snippet: str) -> None:
    (tmp_path / "_s.md").write_text(snippet)
    plain = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(tmp_path))
        .from_string(page)
        .render(VARIABLES)
    )
    renderer = Renderer(tmp_path)
    context = dict(VARIABLES)
    if any(mark in page for mark in ("{{", "{%")):
        # The page is one the tag-by-tag path takes, not the whole-page compile.
        assert renderer._render_tags(page, tmp_path / "p.md", 1, context) is not None
    ours = renderer.render(page, tmp_path / "p.md", variables=VARIABLES)
    assert ours.text == plain
    assert len(ours.line_map) == len(plain.split("\n"))


RAW_ACROSS_LINES = "{%\n raw %}r1\nr2{% endraw\n%}"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(
            text_line,
            st.sampled_from(["{{ multi }}", "{% include '_s.md' %}", RAW_ACROSS_LINES]),
        ),
        min_size=1,
        max_size=25,
    )
)
@pytest.mark.parametrize("whole_pages", [False, True], ids=["tag-by-tag", "whole-page"])
def test_page_lines_after_tags_map_home(
    tmp_path: Path, lines: list[str], whole_pages: bool
) -> None:
    (tmp_path / "_s.md").write_text("s1\n{{ x }}\n{% if flag %}s2{% endif %}\nlast\n")
    source = "\n".join(lines) + "\n"
    rendered = Renderer(tmp_path, whole_pages=whole_pages).render(
        source, tmp_path / "p.md", variables=VARIABLES, first_line=3
    )
    # Rebuild the expected origins of the page's own text lines.
    expected: list[tuple[str, int] | None] = []
    n = 3
    for line in lines:
        if line == "{{ multi }}":
            expected += [None, None]
        elif line == RAW_ACROSS_LINES:
            expected += [None, None]  # "r1", "r2": the tag lines are gone
        elif line.startswith("{% include"):
            expected += [("_s.md", 1), ("_s.md", 2), ("_s.md", 3), ("_s.md", 4)]
        else:
            # Blank lines carry nothing to place (and stay unmarked for "{%-").
            expected.append(("p.md", n) if line.strip() else None)
        n += line.count("\n") + 1
    assert len(rendered.line_map) == len(expected)
    for n, want in enumerate(expected):
        if want is not None:
            origin = rendered.line_map.origin(n)
            assert (origin.path.name, origin.line) == want


JINJA_PIECES = [
    "{{", "}}", "{%", "%}", "{#", "#}", "-", "+", " ", "\n", "\r\n", "\r", "x", "multi", "'",
    '"', "raw", "endraw", "include", "'_s.md'", "if flag", "endif", "a", "}", "{", "%", "#",
]  # fmt: skip


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(st.sampled_from(JINJA_PIECES), max_size=24))
def test_any_text_renders_as_jinja_or_fails_as_jinja(tmp_path: Path, pieces: list[str]) -> None:
    (tmp_path / "_s.md").write_text("s {{ x }}\n")
    page = "".join(pieces)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(tmp_path), undefined=jinja2.StrictUndefined
    )
    try:
        expected: str | None = env.from_string(page).render(VARIABLES)
    except (jinja2.TemplateError, TypeError):
        expected = None
    try:
        got: str | None = (
            Renderer(tmp_path).render(page, tmp_path / "p.md", variables=VARIABLES).text
        )
    except (TemplateError, IncludeError):
        got = None
    assert got == expected


# Every code point but the surrogates (not text) and NUL (a file holding it is refused as
# binary); line breaks are placed by the strategies below. The private-use ranges, the
# marker characters themselves and marker-shaped strings are drawn often on purpose: a
# guide may hold them (icon-font glyphs), and runbook's markers must never be taken for
# them, nor they for markers.
any_char = st.one_of(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\n\r"),
    st.characters(min_codepoint=0xE000, max_codepoint=0xF8FF),
    st.characters(min_codepoint=0xF0000, max_codepoint=0x10FFFF, blacklist_categories=["Cs"]),
    st.sampled_from(["\ue000", "\ue001", "\ue002", "\uf8ff", ",", "0", "1", "9", " ", "\t"]),
)
marker_like = st.builds(
    lambda pua, file, line, close: f"\ue000{pua}{file},{line}{close}",
    st.text(st.characters(min_codepoint=0xE000, max_codepoint=0xF8FF), max_size=9),
    st.integers(0, 3),
    st.integers(0, 99),
    st.sampled_from(["\ue001", "", "\ue000"]),
)
any_text = st.lists(st.one_of(any_char, marker_like), max_size=12).map("".join)
# Text Jinja copies as it is: no tag openers.
any_line = any_text.filter(lambda s: all(f"{{{c}" not in s for c in "{%#"))
any_value = st.lists(st.one_of(any_text, st.sampled_from(["\n", "\r", "\r\n"])), max_size=4).map(
    "".join
)


@st.composite
def any_lines(draw: st.DrawFn, *, include: bool) -> list[str]:
    """Lines of text, variable uses and (on a page) includes and raw blocks."""
    kinds = ["text", "text", "v", "e"] + (["include", "raw"] if include else [])
    lines = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            lines.append(draw(any_line))
        elif kind in ("v", "e"):
            lines.append(f"{draw(any_line)} {{{{ {kind} }}}}{draw(st.sampled_from(['', ' .']))}")
        elif kind == "include":
            lines.append("{% include '_s.md' %}")
        else:
            lines.append("{% raw %}" + draw(any_line) + " {{ v }}{% endraw %}")
    return lines


def _expected_origins(
    lines: list[str], name: str, first: int, values: dict[str, str], snippet: list[str]
) -> list[tuple[str, int] | None]:
    """Where each rendered line of ``lines`` comes from (None: nothing to check)."""
    expected: list[tuple[str, int] | None] = []
    for n, line in enumerate(lines, start=first):
        if line == "{% include '_s.md' %}":
            expected += _expected_origins(snippet, "_s.md", 1, values, [])
            continue
        expected.append((name, n) if line.strip() else None)  # blank lines carry nothing
        for var in ("v", "e"):
            if f"{{{{ {var} }}}}" in line and not line.startswith("{% raw %}"):
                expected += [None] * values[var].count("\n")  # the value's own lines
    return expected


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    page=any_lines(include=True),
    snippet=any_lines(include=False),
    v=any_value,
    e=any_value,
)
@pytest.mark.parametrize("whole_pages", [False, True], ids=["tag-by-tag", "whole-page"])
def test_any_characters_render_as_jinja_and_map_home(
    tmp_path: Path, page: list[str], snippet: list[str], v: str, e: str, whole_pages: bool
) -> None:
    """Private-use characters and marker look-alikes pass through untouched, everywhere."""
    (tmp_path / "_s.md").write_bytes(("\n".join(["s0", *snippet]) + "\n").encode())
    source = "\n".join(page) + "\n"
    plain = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(tmp_path, encoding="utf-8"))
        .from_string(source)
        .render(v=v, e=e)
    )
    # "e" is site-wide (mkdocs.yml extra:), "v" the page's own (front matter, --set).
    renderer = Renderer(tmp_path, variables={"e": e}, whole_pages=whole_pages)
    for _ in range(2):  # and again with the snippet and tags compiled and cached
        rendered = renderer.render(source, tmp_path / "p.md", variables={"v": v}, first_line=4)
        assert rendered.text == plain
        lines = rendered.text.split("\n")
        assert len(rendered.line_map) == len(lines)
        expected = _expected_origins(page, "p.md", 4, {"v": v, "e": e}, ["s0", *snippet])
        assert len(expected) == len(lines)
        for n, want in enumerate(expected):
            if want is not None:
                origin = rendered.line_map.origin(n)
                assert (origin.path.name, origin.line) == want, (n, lines[n])


def _problems(rendered: Rendered) -> list[tuple[str, int, str, str]]:
    return [
        (d.origin.path.name, d.origin.line, d.code, d.message)
        for d in rendered.problems
        if d.origin is not None
    ]


def test_collecting_render_reports_every_problem_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "_a.md").write_text("a\n{% include '_b.md' %}\n")
    (tmp_path / "_b.md").write_text("b\n{% include '_a.md' %}\n")
    (tmp_path / "_shell.md").write_text("ok\n{{.Names}}\n")
    (tmp_path / "_div.md").write_text("d\n{{ 1 / 0 }}\n")
    (tmp_path / "_ok.md").write_text("fine {{ x }}\n")
    page = tmp_path / "p.md"
    source = (
        "{{ one }} and {{ two }}\n"  # line 3: the page body follows 2 lines of front matter
        "{% include '_none.md' %}\n"
        "{% include '_none.md' ignore missing %}\n"
        "{% include '_none.md' %}\n"
        "{% include '../outside.md' %}\n"
        "{% include '_a.md' %}\n"
        "{% include '_shell.md' %}\n"
        "{% include '_div.md' %}\n"
        "{% include '_ok.md' %}\n"
        "last {{ one }}\n"
    )
    renderer = Renderer(tmp_path)
    with pytest.raises(IncludeError, match=r"'_none\.md' not found") as info:
        renderer.render(source, page, first_line=3, variables={"x": "X"})
    assert info.value.line == 4  # the first problem, as without collecting
    rendered = renderer.render(source, page, first_line=3, variables={"x": "X"}, collect=True)
    assert rendered.complete
    assert _problems(rendered) == [
        ("p.md", 3, "TemplateError", f"undefined variable: 'one' ({rel(page)}:3)"),
        ("p.md", 3, "TemplateError", f"undefined variable: 'two' ({rel(page)}:3)"),
        ("p.md", 4, "IncludeError", "include '_none.md' not found in "
         f"{rel(tmp_path)}/"),
        ("p.md", 6, "IncludeError", "include '_none.md' not found in "
         f"{rel(tmp_path)}/"),
        ("p.md", 7, "IncludeError", "include '../outside.md' leaves the include root "
         f"{rel(tmp_path)}/"),
        ("p.md", 12, "TemplateError", f"undefined variable: 'one' ({rel(page)}:12)"),
        ("_b.md", 2, "IncludeError", "include cycle: _a.md -> _b.md -> _a.md"),
        ("_div.md", 2, "TemplateError", "cannot render: division by zero"),
        ("_shell.md", 2, "TemplateError", "Jinja syntax error: unexpected '.'"),
    ]  # fmt: skip
    # An include that failed renders as nothing; the rest is there, every line in its place.
    lines = rendered.text.split("\n")
    assert lines == [" and ", "", "", "", "", "a", "b", "", "", "", "fine X", "last "]
    origins = [rendered.line_map.origin(n) for n in range(len(lines))]
    assert [(o.path.name, o.line) for o in origins][5:] == [
        ("_a.md", 1), ("_b.md", 1), ("_b.md", 2), ("p.md", 9), ("p.md", 10),
        ("_ok.md", 1), ("p.md", 12),
    ]  # fmt: skip


def test_collecting_render_of_a_page_jinja_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "_shell.md").write_text("{{.Names}}\n")
    (tmp_path / "_ok.md").write_text("ok {% include '_nested-none.md' %}\n")
    (tmp_path / "_bin.md").write_bytes(b"\x7fELF\x00")
    source = (
        "# T\n"
        "{% include '_none.md' %}\n"
        "{% raw %}{% include '_quoted.md' %}{% endraw %}\n"
        "{% include '_gone.md' ignore missing %}\n"
        "{% include '_shell.md' %}\n"
        "{% include '_ok.md' %}\n"
        "{% include '/etc/passwd' %}\n"
        "docker ps --format '{{.Names}}'\n"
        "{% include '_bin.md' %}\n"
    )
    rendered = Renderer(tmp_path).render(source, tmp_path / "p.md", first_line=5, collect=True)
    assert not rendered.complete
    assert rendered.text == ""
    assert _problems(rendered) == [
        ("p.md", 6, "IncludeError", f"include '_none.md' not found in {rel(tmp_path)}/"),
        ("p.md", 11, "IncludeError", "include '/etc/passwd' leaves the include root "
         f"{rel(tmp_path)}/"),
        ("p.md", 12, "TemplateError", "Jinja syntax error: unexpected '.'"),
        ("_bin.md", 1, "TemplateError", "this is a binary file, not markdown"),
        ("_shell.md", 1, "TemplateError", "Jinja syntax error: unexpected '.'"),
    ]  # fmt: skip


def test_collecting_render_of_a_clean_page_is_the_render(tmp_path: Path) -> None:
    (tmp_path / "_s.md").write_text("s {{ x }}\n")
    source = "a {{ x }}\n{% if flag %}{% include '_s.md' %}{% endif %}\nb\n"
    renderer = Renderer(tmp_path)
    plain = renderer.render(source, tmp_path / "p.md", variables=VARIABLES)
    collected = renderer.render(source, tmp_path / "p.md", variables=VARIABLES, collect=True)
    assert collected.text == plain.text == "a X\ns X\nb"
    assert collected.problems == () and collected.complete
    assert [collected.line_map.origin(n) for n in range(3)] == [
        plain.line_map.origin(n) for n in range(3)
    ]


def test_errors_are_placed_on_the_page_after_its_front_matter(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    cases = [
        ("x\n{{ nope }}\n", TemplateError, 7, "undefined variable: 'nope'"),
        ("x\n{% include '../up.md' %}\n", IncludeError, 7, "leaves the include root"),
        ("x\n{% if flag %}{% include '_none.md' %}{% endif %}\n", IncludeError, 7, "not found"),
        ("x\n{% if flag %}{{ 1 / 0 }}{% endif %}\n", TemplateError, 7, "division by zero"),
        ("x\n{% if %}\n", TemplateError, 7, "Jinja syntax error"),
    ]
    for source, error, line, message in cases:
        with pytest.raises(error, match=message) as info:
            Renderer(tmp_path).render(source, page, first_line=6, variables=VARIABLES)
        assert (info.value.path, info.value.line) == (str(page), line), source


def test_private_use_characters_in_a_guide_pass_through(tmp_path: Path) -> None:
    """Icon-font glyphs in the page, a snippet, front matter and extra: stay as they are."""
    from runbook.guide import load, render_guide

    look_alike = "\ue000\ue0010,3\ue001 \ue0001,2\ue001 \uf8ff"
    (tmp_path / "mkdocs.yml").write_text(
        f'site_name: x\ndocs_dir: .\nextra:\n  icon: "{look_alike}"\n', encoding="utf-8"
    )
    (tmp_path / "_s.md").write_text(f"snippet {look_alike}\n", encoding="utf-8")
    body = (
        "# T \ue000\n\n* [ ] 1. Go \ue001\n\n### 1. Go \ue001 {{ icon }}\n\n"
        f"{look_alike} {{{{ fm }}}}\n\n{{% include '_s.md' %}}\n\n"
        "```bash\necho '\ue0000,1\ue001'\n```\n"
    )
    page = tmp_path / "p.md"
    page.write_text(f'---\nfm: "{look_alike}"\n---\n{body}', encoding="utf-8")
    plain = (
        jinja2.Environment(loader=jinja2.FileSystemLoader(tmp_path, encoding="utf-8"))
        .from_string(body)
        .render(icon=look_alike, fm=look_alike)
    )
    rendered = render_guide(page)
    assert rendered.text == plain
    assert [str(rendered.line_map.origin(n)).rsplit("/", 1)[1] for n in (0, 4, 6, 8, 11)] == [
        "p.md:4", "p.md:8", "p.md:10", "_s.md:1", "p.md:15",
    ]  # fmt: skip
    book = load(page)  # reading every line's origin used to fail on a stray \ue000
    assert [s.title for s in book.steps] == [f"Go \ue001 {look_alike}"]
    assert book.steps[0].actions[0].code == "echo '\ue0000,1\ue001'"


@pytest.mark.parametrize(
    "page",
    [
        "\n{#-",  # a comment Jinja ends at the end of the text strips the line break before it
        "a\r\rb {{ x -}}\r\r c{% if flag %}{% endif %}",  # lines ended by a lone \r
        "a\r  {{- x }}\r{% if flag %}{% endif %}",
    ],
)
@pytest.mark.parametrize("whole_pages", [False, True], ids=["tag-by-tag", "whole-page"])
def test_whitespace_control_is_never_defeated_by_a_marker(
    tmp_path: Path, page: str, whole_pages: bool
) -> None:
    plain = jinja2.Environment().from_string(page).render(VARIABLES)
    ours = Renderer(tmp_path, whole_pages=whole_pages).render(
        page, tmp_path / "p.md", variables=VARIABLES
    )
    assert ours.text == plain
