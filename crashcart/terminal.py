"""The emulated screen, for what the operator saw when the crash completed.

pyte runs at well under 1 MB/s, so the headless pipeline never feeds it every byte: it keeps
the tail of the stream in a ring buffer and renders only that tail, into a fresh screen, when a
snapshot is asked for (the "tail-only fast path" of DESIGN.md). A screen of 25 rows needs far
less than the 64 KiB kept, even with escape sequences.
"""

from __future__ import annotations

import io
from collections import deque
from typing import Protocol

import pyte
from rich.console import Console
from rich.text import Text

# Enough for a screenful even of escape-heavy output; pyte's cost is linear in what it is fed.
TAIL_BYTES = 16 * 1024


class ScreenSource(Protocol):
    """What an incident needs of a screen: its rows as text and a picture of it."""

    def render(self) -> list[str]: ...

    def text(self, rows: list[str] | None = None) -> str: ...

    def svg(self, title: str, rows: list[str] | None = None) -> str: ...


class ScreenTail:
    """Remembers the last `TAIL_BYTES` of a console and renders them on demand."""

    def __init__(self, columns: int = 80, rows: int = 25, tail_bytes: int = TAIL_BYTES) -> None:
        self.columns = columns
        self.rows = rows
        self._tail_bytes = tail_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= self._tail_bytes:
            self._size -= len(self._chunks.popleft())

    def tail(self) -> bytes:
        data = b"".join(self._chunks)
        return data[-self._tail_bytes :]

    def render(self) -> list[str]:
        """The screen's rows as text (trailing spaces removed)."""
        screen = pyte.Screen(self.columns, self.rows)
        stream = pyte.ByteStream(screen)
        try:
            stream.feed(self.tail())
        except Exception:
            # Hostile input can make pyte raise (a CSI parameter of thousands of digits):
            # draw line by line with a fresh parser, leaving out the lines it refuses.
            for line in self.tail().splitlines(keepends=True):
                try:
                    stream.feed(line)
                except Exception:
                    stream = pyte.ByteStream(screen)
        return [row.rstrip() for row in screen.display]

    def text(self, rows: list[str] | None = None) -> str:
        return "\n".join(self.render() if rows is None else rows) + "\n"

    def svg(self, title: str, rows: list[str] | None = None) -> str:
        """The screen as an SVG picture (Rich's exporter), for reports and tickets."""
        console = Console(
            record=True, width=self.columns, file=io.StringIO(), color_system=None, markup=False
        )
        for row in self.render() if rows is None else rows:
            console.print(Text(row), overflow="crop", no_wrap=True)
        return console.export_svg(title=title)
