"""The live console screen: pyte fed in batches, rendered as run-length styled strips.

pyte costs about 3 s per MB, so the view never feeds it more than a frame's budget: bytes
queue up between frames, and when a burst outruns the budget the screen skips to the burst's
tail (a screenful of line output needs only its last few kilobytes; the recorder and the parser
still see every byte). Nothing the box sends is ever written to the operator's terminal: the
view draws cells, and a cell's character is checked before it becomes part of a strip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from crashcart.safetext import BIDI_CONTROLS

# A frame never feeds pyte more than this; beyond it the screen fast-forwards to the tail.
FEED_BUDGET = 16 * 1024
# The most that is kept of a burst that outran the budget: its last screenful of lines, which
# for a 40-row screen of kernel lines is ~4 KiB.
FAST_FORWARD_TAIL = 8 * 1024
# A box can ask "where is the cursor?" in a loop; answers beyond this rate are dropped so a
# hostile host cannot turn the view into a flood source.
MAX_REPLIES_PER_SECOND = 20
# pyte's private-mode numbers are shifted by 5 bits.
DECCKM = 1 << 5

# Every character below 0x20, DEL and the C1 block: none may reach the real terminal as such.
# A str.translate table that keeps lengths, so highlight offsets still line up.
# The bidi controls too: they would reorder what the operator reads ("Trojan Source").
UNSAFE_AS_REPLACEMENT = {
    code: "\N{REPLACEMENT CHARACTER}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *map(ord, BIDI_CONTROLS)]
}
_ZERO_WIDTH = {
    code: "\N{REPLACEMENT CHARACTER}"
    for code in [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x206A), 0xFEFF]
}
_ANSI_NAMES = {
    "black": "black",
    "red": "red",
    "green": "green",
    "brown": "yellow",
    "blue": "blue",
    "magenta": "magenta",
    "cyan": "cyan",
    "white": "white",
}


def _color(name: str) -> Color | None:
    """pyte's colour names (and its bare hex for 256-colour and truecolour) as Rich colours."""
    if name == "default":
        return None
    if name in _ANSI_NAMES:
        return Color.parse(_ANSI_NAMES[name])
    if name.startswith("bright") or name == "bfightmagenta":  # pyte 0.8 misspells one
        base = _ANSI_NAMES.get(name.replace("bfight", "bright")[6:])
        return Color.parse(f"bright_{base}") if base else None
    if len(name) == 6:
        try:
            return Color.parse(f"#{name}")
        except Exception:  # a name pyte made up that Rich does not know: draw it plain
            return None
    return None


class StyleCache:
    """One Rich Style per distinct attribute set: a screen has a handful, not one per cell."""

    def __init__(self) -> None:
        self._styles: dict[tuple[Any, ...], Style] = {}

    def get(self, key: tuple[Any, ...]) -> Style:
        style = self._styles.get(key)
        if style is None:
            fg, bg, bold, italics, underscore, strike, reverse = key
            style = Style(
                color=_color(fg),
                bgcolor=_color(bg),
                bold=bold or None,
                italic=italics or None,
                underline=underscore or None,
                strike=strike or None,
                reverse=reverse or None,
            )
            self._styles[key] = style
        return style

    def __len__(self) -> int:
        return len(self._styles)


class _Screen(pyte.Screen):
    """pyte's screen with the terminal's answers routed back to the box, rate-limited."""

    def __init__(self, columns: int, lines: int, reply: Callable[[bytes], None]) -> None:
        super().__init__(columns, lines)
        self._reply = reply
        self._reply_window = 0.0
        self._replies = 0
        self.scrolls: list[tuple[int, int]] = []  # (top, bottom) of each scroll since asked

    def write_process_input(self, data: str) -> None:
        now = time.monotonic()
        if now - self._reply_window >= 1.0:
            self._reply_window = now
            self._replies = 0
        self._replies += 1
        if self._replies <= MAX_REPLIES_PER_SECOND:
            self._reply(data.encode("ascii", "replace"))

    def set_mode(self, *modes_: int, **kwargs: Any) -> None:
        # DECCOLM would resize the screen to 132 columns behind the widget's back; the view's
        # size is the operator's, not the box's.
        if kwargs.get("private"):
            modes_ = tuple(m for m in modes_ if m != 3)
        super().set_mode(*modes_, **kwargs)

    def reset_mode(self, *modes_: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            modes_ = tuple(m for m in modes_ if m != 3)
        super().reset_mode(*modes_, **kwargs)

    def index(self) -> None:
        top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
        if self.cursor.y != bottom:
            super().index()
            return
        # A scroll: pyte marks every row dirty, though the rows only moved up by one. Keep
        # the dirty marks where the rows went, so the view redraws only what changed.
        moved = {y - 1 if top < y <= bottom else y for y in self.dirty if y != top}
        super().index()
        self.dirty.clear()
        self.dirty.update(moved)
        self.dirty.add(bottom)
        self.scrolls.append((top, bottom))

    def draw(self, data: str) -> None:
        # pyte 0.8 stops drawing a run of text at a zero-width character that is not a
        # combining mark: a box could blank the rest of a line. Such characters are drawn as
        # U+FFFD instead (they carry nothing an operator should read).
        super().draw(data.translate(_ZERO_WIDTH))

    def set_title(self, param: str) -> None:
        # Kept for the status bar at most; bounded so a flood of titles costs nothing.
        super().set_title(param[:200])

    def set_icon_name(self, param: str) -> None:
        super().set_icon_name(param[:200])


class Emulator:
    """The console's screen state, fed in frame-sized batches."""

    def __init__(self, columns: int, rows: int, reply: Callable[[bytes], None]) -> None:
        self.screen = _Screen(columns, rows, reply)
        self._stream = pyte.ByteStream(self.screen)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.styles = StyleCache()
        self._strips: dict[int, Strip] = {}
        self.skipped_bytes = 0  # bytes a fast-forward did not draw (still recorded)
        self.fed_bytes = 0
        self.parser_errors = 0  # batches pyte refused (hostile input), for the status line

    @property
    def columns(self) -> int:
        return int(self.screen.columns)

    @property
    def rows(self) -> int:
        return int(self.screen.lines)

    @property
    def pending(self) -> int:
        return self._pending_size

    @property
    def application_cursor(self) -> bool:
        return DECCKM in self.screen.mode

    @property
    def cursor_visible(self) -> bool:
        return modes.DECTCEM in self.screen.mode and not self.screen.cursor.hidden

    def queue(self, data: bytes) -> None:
        """Bytes that arrived; drawn at the next frame."""
        self._pending.append(data)
        self._pending_size += len(data)

    def process(self) -> set[int]:
        """Feed what is pending (within budget); returns the rows that changed."""
        if not self._pending:
            return set()
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if len(data) > FEED_BUDGET:
            start = self._screenful_start(data)
            self.skipped_bytes += start
            data = data[start:]
            if not data.startswith(b"\r"):
                data = b"\r\n" + data
        self.fed_bytes += len(data)
        try:
            self._stream.feed(data)
        except Exception:
            # pyte can be made to raise by hostile input (a CSI parameter of thousands of
            # digits overflows int()). The bytes are already recorded; the view redraws the
            # batch line by line with a fresh parser, leaving out only the lines pyte refuses.
            self.parser_errors += 1
            self._stream = pyte.ByteStream(self.screen)
            for line in data.splitlines(keepends=True):
                try:
                    self._stream.feed(line)
                except Exception:
                    self._stream = pyte.ByteStream(self.screen)
        self._follow_scrolls()
        dirty = set(self.screen.dirty)
        self.screen.dirty.clear()
        for row in dirty:
            self._strips.pop(row, None)
        return dirty

    def _screenful_start(self, data: bytes) -> int:
        """Where the last screenful of a burst starts: after the (rows+1)-th newline from the
        end (each line fills at least one row), at a line start, within FAST_FORWARD_TAIL."""
        floor = len(data) - FAST_FORWARD_TAIL
        at = len(data)
        for _ in range(self.rows + 1):
            at = data.rfind(b"\n", floor, at)
            if at < 0:
                # Few newlines in the tail (long lines, or escape-drawn screens): resume at the
                # first line start within it.
                newline = data.find(b"\n", floor)
                return newline + 1 if 0 <= newline < len(data) - 1 else floor
        return at + 1

    def _follow_scrolls(self) -> None:
        """Move cached rows up with the screen: a line of output costs one new row, not 40."""
        scrolls = self.screen.scrolls
        if len(scrolls) >= self.rows:
            self._strips.clear()
        else:
            for top, bottom in scrolls:
                strips = self._strips
                self._strips = {
                    (y - 1 if top < y <= bottom else y): strip
                    for y, strip in strips.items()
                    if y != top
                }
        scrolls.clear()

    def resize(self, columns: int, rows: int) -> None:
        if columns == self.columns and rows == self.rows:
            return
        self.screen.resize(rows, columns)
        self._strips.clear()

    def row_text(self, row: int) -> str:
        return self.strip(row).text

    def text_rows(self) -> list[str]:
        return [self.row_text(y).rstrip() for y in range(self.rows)]

    def strip(self, row: int) -> Strip:
        """Row `row` as a strip of run-length styled segments (cached until it changes)."""
        strip = self._strips.get(row)
        if strip is None:
            strip = Strip(self._segments(row), self.columns)
            self._strips[row] = strip
        return strip

    def _segments(self, row: int) -> list[Segment]:
        line = self.screen.buffer[row]
        segments: list[Segment] = []
        run: list[str] = []
        run_key: tuple[Any, ...] | None = None
        for x in range(self.columns):
            char = line[x]
            data = char.data
            if not data:  # the right half of a wide character
                continue
            key = (
                char.fg,
                char.bg,
                char.bold,
                char.italics,
                char.underscore,
                char.strikethrough,
                char.reverse,
            )
            if key != run_key:
                if run:
                    segments.append(Segment("".join(run), self.styles.get(run_key or ())))
                run = []
                run_key = key
            run.append(data)
        if run:
            segments.append(Segment("".join(run), self.styles.get(run_key or ())))
        return [Segment(seg.text.translate(UNSAFE_AS_REPLACEMENT), seg.style) for seg in segments]
