"""One log file, drawn line by line from its index (toolong's approach): a gigabyte log costs
its line index, never a widget or a string per line. The chosen hit's lines are marked."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from crashcart.logs.readers import LogFile
from tui.ansi import styled_line

# Drawing reads at most this much of a line; wider lines are cut (a log can hold 100 kB ones).
MAX_DRAWN = 1024
_NUMBER = Style(color="grey42")
_MARKED = Style(bgcolor="grey23")
_HIT = Style(bgcolor="dark_red", bold=True)


class LogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView { height: 1fr; width: 1fr; background: $surface; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.logfile: LogFile | None = None
        self.hit_line = -1  # 0-based
        self.marked = range(0)  # the hit's context, 0-based

    def show(self, log: LogFile, line: int, context: range) -> None:
        """Show `log` with its 0-based `line` a third of the way down, `context` marked."""
        self.logfile = log
        self.hit_line = line
        self.marked = context
        self.virtual_size = Size(MAX_DRAWN + 10, len(log))
        target = max(line - self.size.height // 3, 0)
        self.call_after_refresh(self.scroll_to, y=target, animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = self.scroll_offset.y + y
        if self.logfile is None or index >= len(self.logfile):
            return Strip.blank(width)
        number = f"{index + 1:>8} "
        text = styled_line(self.logfile.index.line(index, MAX_DRAWN))
        strip = Strip([Segment(number, _NUMBER), *text.render(self.app.console)])
        strip = strip.crop(self.scroll_offset.x, self.scroll_offset.x + width)
        if index == self.hit_line:
            strip = Strip(list(Segment.apply_style(strip, post_style=_HIT)), strip.cell_length)
            return strip.adjust_cell_length(width, _HIT)
        if index in self.marked:
            strip = Strip(list(Segment.apply_style(strip, style=_MARKED)), strip.cell_length)
            return strip.adjust_cell_length(width, _MARKED)
        return strip.adjust_cell_length(width)
