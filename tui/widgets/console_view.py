"""The live console: the emulated screen, drawn cell by cell, with crash lines highlighted.

Keys go to the box, encoded as xterm would send them; the one leader key (Ctrl-]) makes the
next key a command for crashcart. A console that cannot be typed into (a replay) lets keys
through to the app's bindings instead, so the demo answers to `q`, `?` and friends directly.
Bytes are drawn at most `MAX_FPS` times a second: a burst is one redraw, not thousands.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tui.emulator import Emulator
from tui.highlight import CrashLine, Highlights, clip_spans, spans
from tui.keys import LEADER_KEY, encode_key

MAX_FPS = 30
_CURSOR = Style(reverse=True)


def overlay(strip: Strip, row_spans: list[tuple[int, int, Style]]) -> Strip:
    """`strip` with each span's style laid over its cells (the span's colours win)."""
    if not row_spans:
        return strip
    cuts = sorted({c for s, e, _ in row_spans for c in (s, e)} | {strip.cell_length})
    pieces = strip.divide(cuts)
    bounds = [0, *cuts]
    out: list[Strip] = []
    for k, piece in enumerate(pieces):
        start = bounds[k]
        style = None
        for s, e, span_style in row_spans:
            if s <= start < e:
                style = span_style if style is None else style + span_style
        if style is not None:
            piece = Strip(list(Segment.apply_style(piece, post_style=style)), piece.cell_length)
        out.append(piece)
    return Strip.join(out)


# A row as a capture keeps it: its cells, the crash line drawn on it (and where in that line
# the row starts), and the cursor's column (-1: none).
DrawnRow = tuple[Strip, tuple[CrashLine, int] | None, int]


def draw_row(
    base: Strip, found: tuple[CrashLine, int] | None, cursor_x: int, columns: int
) -> Strip:
    """A screen row as shown: the crash highlighting and the cursor laid over its cells."""
    strip = base
    if found is not None:
        line, offset = found
        strip = overlay(strip, clip_spans(spans(line.text, line.role), offset, columns))
    if cursor_x >= 0:
        strip = overlay(strip, [(cursor_x, cursor_x + 1, _CURSOR)])
    return strip


class ConsoleView(Widget, can_focus=True):
    """One console's screen."""

    DEFAULT_CSS = """
    ConsoleView {
        width: 1fr;
        height: 1fr;
        background: black;
        color: #d0d0d0;
    }
    """

    @dataclass
    class Typed(Message):
        """Bytes the operator typed (or the terminal answered) for the box."""

        data: bytes

    @dataclass
    class Leader(Message):
        """The key pressed after the leader key: a command for crashcart."""

        key: str
        character: str | None

    @dataclass
    class Resized(Message):
        columns: int
        rows: int

    def __init__(
        self,
        highlights: Highlights,
        *,
        read_only: bool = False,
        columns: int = 80,
        rows: int = 25,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.highlights = highlights
        self.read_only = read_only
        self.emulator = Emulator(columns, rows, self._reply)
        self.leader_pending = False
        self._flush_timer: Timer | None = None
        self._last_frame = 0.0
        self._unpainted = False  # the screen state moved on without a paint yet
        self.frames = 0  # redraws, for the benchmark's frame-rate figure
        self._drawn: dict[int, tuple[Strip, tuple[int, int, int], Strip]] = {}
        self.on_frame: Callable[[], None] | None = None

    def _reply(self, data: bytes) -> None:
        # pyte answered a query (cursor position, device attributes): it goes to the box.
        self.post_message(self.Typed(data))

    # -- bytes in ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.emulator.queue(data)
        self._paint_soon()

    def _paint_soon(self) -> None:
        """Paint at the next frame: at most MAX_FPS a second, at once after a quiet spell."""
        if self._flush_timer is None:
            # Textual's timers divide by their interval: never ask for zero.
            wait = max(0.002, self._last_frame + 1 / MAX_FPS - time.monotonic())
            self._flush_timer = self.set_timer(wait, self._paint)

    def _paint(self) -> None:
        self._flush_timer = None
        changed = bool(self.emulator.process()) or self._unpainted
        self._unpainted = False
        self._last_frame = time.monotonic()
        if changed:
            self.frames += 1
            self.refresh()
            if self.on_frame is not None:
                self.on_frame()
        if self.emulator.pending:
            self._paint_soon()

    def catch_up(self) -> None:
        """Bring the screen state up to every byte received (a capture wants it exact); the
        painting itself waits for the next frame."""
        if self.emulator.process():
            self._unpainted = True
            self._paint_soon()

    def rehighlight(self) -> None:
        """A crash line arrived after its row was drawn: paint the screen again."""
        self._unpainted = True
        self._paint_soon()

    # -- drawing ----------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size.width, event.size.height
        if width > 0 and height > 0:
            self.emulator.resize(width, height)
            self.post_message(self.Resized(width, height))
            self.refresh()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.emulator.columns

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.emulator.rows

    def render_line(self, y: int) -> Strip:
        emulator = self.emulator
        if y >= emulator.rows:
            return Strip.blank(self.size.width)
        base = emulator.strip(y)
        cursor_x = self._cursor_x(y)
        key = (self.highlights.version, cursor_x, self.size.width)
        # Textual asks for every row on each refresh; a row whose cells, highlights and cursor
        # are unchanged is the strip drawn last time (most rows, as output scrolls by).
        cached = self._drawn.get(y)
        if cached is not None and cached[0] is base and cached[1] == key:
            return cached[2]
        found = self.highlights.for_row(base.text, emulator.columns)
        strip = draw_row(base, found, cursor_x, emulator.columns).adjust_cell_length(
            self.size.width
        )
        self._drawn[y] = (base, key, strip)
        return strip

    def _cursor_x(self, y: int) -> int:
        """The cursor's column on row `y`, or -1 where it is not drawn."""
        emulator = self.emulator
        cursor = emulator.screen.cursor
        if y == cursor.y and self.has_focus and emulator.cursor_visible:
            return min(cursor.x, emulator.columns - 1)
        return -1

    def screen_rows(self) -> list[str]:
        return self.emulator.text_rows()

    def snapshot(self) -> DrawnScreen:
        """The screen exactly as drawn now (pending bytes drawn first), to be saved later.

        Only the rows' cells and their highlight are taken here, on the event loop; laying
        the highlight over them and the picture are left to the incident writer's thread.
        """
        self.catch_up()
        emulator = self.emulator
        rows: list[DrawnRow] = []
        for y in range(emulator.rows):
            base = emulator.strip(y)
            found = self.highlights.for_row(base.text, emulator.columns)
            rows.append((base, found, self._cursor_x(y)))
        return DrawnScreen(rows, emulator.columns)

    # -- keys out ---------------------------------------------------------------------------
    async def on_key(self, event: events.Key) -> None:
        if self.leader_pending:
            self.leader_pending = False
            event.stop()
            event.prevent_default()
            if event.key == LEADER_KEY:  # the leader twice sends it to the box
                self.post_message(self.Typed(b"\x1d"))
            else:
                self.post_message(self.Leader(event.key, event.character))
            return
        if event.key == LEADER_KEY:
            self.leader_pending = True
            event.stop()
            event.prevent_default()
            self.notify("crashcart command: press a key (? for the list)", timeout=3)
            return
        if self.read_only:
            return  # the app's bindings handle it
        data = encode_key(
            event.key, event.character, application_cursor=self.emulator.application_cursor
        )
        if data is not None:
            event.stop()
            event.prevent_default()
            self.post_message(self.Typed(data))

    async def on_paste(self, event: events.Paste) -> None:
        if self.read_only:
            return
        event.stop()
        # A paste goes to the box as typed text, newlines as the Enter key would send them.
        self.post_message(self.Typed(event.text.replace("\r\n", "\r").replace("\n", "\r").encode()))


def _segments_text(strip: Strip, base: Style) -> Text:
    """A strip as Rich Text, on the console's own background, for the SVG exporter."""
    text = Text(end="", no_wrap=True)
    for segment in strip:
        text.append(segment.text, base + segment.style if segment.style else base)
    return text


class DrawnScreen:
    """A console view's screen as drawn: each row's cells, highlight and cursor, from which
    its text and its picture are made later, in the incident writer's thread (Rich's SVG
    exporter costs more than a frame)."""

    def __init__(self, rows: list[DrawnRow], columns: int) -> None:
        self._rows = rows
        self._columns = columns

    def render(self) -> list[str]:
        return [base.text.rstrip() for base, _, _ in self._rows]

    def text(self, rows: list[str] | None = None) -> str:
        return "\n".join(self.render() if rows is None else rows) + "\n"

    def svg(self, title: str, rows: list[str] | None = None) -> str:
        """The picture the way Textual exports its screens (Rich's SVG exporter)."""
        console = Console(
            width=self._columns,
            file=io.StringIO(),
            force_terminal=True,
            color_system="truecolor",
            record=True,
            legacy_windows=False,
        )
        background = Style(color="#d0d0d0", bgcolor="black")
        for base, found, cursor_x in self._rows:
            strip = draw_row(base, found, cursor_x, self._columns)
            console.print(_segments_text(strip, background), end="\n")
        return console.export_svg(title=title)
