"""Scrollback: every line of the session, drawn line by line from the recording on disk.

A ScrollView whose virtual height is the line count; `render_line` reads only the lines on
screen (toolong's approach), so a session of millions of lines costs an index, not widgets.
Crash lines are drawn from the parser's cleaned text with the crash highlighting; other lines
keep the colours the box gave them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.ansi import styled_line
from tui.emulator import UNSAFE_AS_REPLACEMENT
from tui.highlight import STYLES, Highlights, spans
from tui.linestore import LineStore
from tui.widgets.console_view import overlay

# Wide enough for any kernel line; wider lines are cut when drawn.
VIRTUAL_WIDTH = 512
_CURRENT = Style(bgcolor="grey19")


class Scrollback(ScrollView, can_focus=True):
    """The whole session's lines, with search and jump-to-crash."""

    DEFAULT_CSS = """
    Scrollback {
        width: 1fr;
        height: 1fr;
        background: black;
        color: #d0d0d0;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "back to live", show=True),
        Binding("slash", "search", "search", show=True),
        Binding("n", "next_match", "next match", show=True),
        Binding("N", "previous_match", "previous match", show=True),
        Binding("c", "next_crash", "next crash", show=True),
        Binding("C", "previous_crash", "previous crash", show=True),
        Binding("g,home", "top", "top", show=False),
        Binding("G,end", "bottom", "bottom", show=False),
        Binding("up,k", "line_up", show=False),
        Binding("down,j", "line_down", show=False),
        Binding("pageup,b", "page_up", show=False),
        Binding("pagedown,space", "page_down", show=False),
    ]

    @dataclass
    class Closed(Message):
        pass

    @dataclass
    class SearchRequested(Message):
        pass

    def __init__(self, store: LineStore, highlights: Highlights, *, id: str | None = None):
        super().__init__(id=id)
        self.store = store
        self.highlights = highlights
        self.current: int | None = None  # the line a search or jump landed on
        self.pattern: re.Pattern[bytes] | None = None
        self._follow = True

    # -- content ----------------------------------------------------------------------------
    def grow(self) -> None:
        """New lines arrived; keep following the end unless the operator scrolled away."""
        at_end = self._follow or self.scroll_offset.y >= self.max_scroll_y
        self.virtual_size = Size(VIRTUAL_WIDTH, len(self.store))
        if at_end:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.size.width
        if index >= len(self.store):
            return Strip.blank(width)
        strip = self._line_strip(index)
        strip = strip.crop(self.scroll_offset.x, self.scroll_offset.x + width)
        if index == self.current:
            strip = Strip(list(Segment.apply_style(strip, style=_CURRENT)), strip.cell_length)
        return strip.adjust_cell_length(width, _CURRENT if index == self.current else None)

    def _line_strip(self, index: int) -> Strip:
        crash_line = self.highlights.by_number.get(index + 1)
        if crash_line is not None:
            # The parser's cleaned text keeps TAB and bidi controls; on a terminal they move
            # the cursor or reorder what is read.
            text = crash_line.text.translate(UNSAFE_AS_REPLACEMENT)
            strip = Strip([Segment(text)])
            strip = overlay(strip, spans(text, crash_line.role))
        else:
            rich_text = styled_line(self.store.line_bytes(index))
            text = rich_text.plain
            strip = Strip(list(rich_text.render(self.app.console)))
        if self.pattern is not None and index == self.current:
            strip = overlay(strip, _matches(self.pattern, text))
        return strip

    # -- navigation -------------------------------------------------------------------------
    def show_line(self, index: int) -> None:
        """Scroll so that `index` is on screen, a third of the way down, and mark it."""
        self.current = index
        self._follow = False
        self.virtual_size = Size(VIRTUAL_WIDTH, len(self.store))
        target = max(index - self.size.height // 3, 0)
        # After the refresh: a scrollback just switched to has no size yet, and scrolling now
        # would be clamped to it.
        self.call_after_refresh(self.scroll_to, y=target, animate=False, immediate=True)
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._follow = False

    def action_close(self) -> None:
        self.post_message(self.Closed())

    def action_search(self) -> None:
        self.post_message(self.SearchRequested())

    def action_top(self) -> None:
        self._follow = False
        self.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self._follow = True
        self.scroll_end(animate=False)

    def action_line_up(self) -> None:
        self._follow = False
        self.scroll_relative(y=-1, animate=False)

    def action_line_down(self) -> None:
        self.scroll_relative(y=1, animate=False)

    def action_page_up(self) -> None:
        self._follow = False
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def search(self, query: str) -> bool:
        """Start a search (case-insensitive, literal) from the top of the screen down."""
        if not query:
            self.pattern = None
            self.refresh()
            return False
        self.pattern = re.compile(re.escape(query.encode("utf-8", "replace")), re.IGNORECASE)
        start = self.scroll_offset.y if self.current is None else self.current
        return self._find_forward(start)

    def action_next_match(self) -> None:
        if self.pattern is None:
            self.action_search()
            return
        start = 0 if self.current is None else self.current + 1
        if not self._find_forward(start):
            self.notify("no more matches below", timeout=2)

    def action_previous_match(self) -> None:
        if self.pattern is None:
            return
        before = len(self.store) if self.current is None else self.current
        found = self.store.search_backward(self.pattern, before)
        if found is None:
            self.notify("no more matches above", timeout=2)
        else:
            self.show_line(found)

    def _find_forward(self, start: int) -> bool:
        assert self.pattern is not None
        for found in self.store.search(self.pattern, start):
            self.show_line(found)
            return True
        return False

    def action_next_crash(self) -> None:
        here = -1 if self.current is None else self.current
        for number in self.highlights.crash_starts:
            if number - 1 > here:
                self.show_line(number - 1)
                return
        self.notify("no crash below", timeout=2)

    def action_previous_crash(self) -> None:
        here = len(self.store) if self.current is None else self.current
        for number in reversed(self.highlights.crash_starts):
            if number - 1 < here:
                self.show_line(number - 1)
                return
        self.notify("no crash above", timeout=2)

    def jump_to_crash(self, number: int) -> None:
        """Show the header line of a crash (1-based line number)."""
        self.show_line(max(number - 1, 0))


def _matches(pattern: re.Pattern[bytes], text: str) -> list[tuple[int, int, Style]]:
    as_text = re.compile(pattern.pattern.decode("utf-8", "replace"), re.IGNORECASE)
    return [
        (m.start(), m.end(), STYLES["search"])
        for m in as_text.finditer(text)
        if m.end() > m.start()
    ]
