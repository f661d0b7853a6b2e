"""The source files of a renderer: decoded once, numbered for the line maps, kept to quote."""

from __future__ import annotations

from pathlib import Path

from runbook.errors import TemplateError


def decode(data: bytes, path: Path) -> str:
    """Decode a source file as UTF-8 (BOM allowed), or fail naming the file."""
    if b"\x00" in data[:8192]:
        raise TemplateError(
            "this is a binary file, not markdown",
            path=path,
            hint="point runbook at a markdown guide",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TemplateError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=path,
            line=line,
            hint="save the file as UTF-8",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


class Sources:
    """The pages and snippets a renderer has read, in the order first seen."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        """Every file seen; a line map names a file by its index here."""
        self.texts: dict[Path, str] = {}
        """The last text read of each file (front matter removed from pages)."""
        self._index: dict[Path, int] = {}

    def index(self, path: Path) -> int:
        """Return the index of ``path`` in :attr:`paths`, adding it when new."""
        idx = self._index.get(path)
        if idx is None:
            idx = self._index[path] = len(self.paths)
            self.paths.append(path)
        return idx
