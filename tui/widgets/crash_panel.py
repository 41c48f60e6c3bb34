"""The crash panel: what the parser made of each crash, newest first.

It opens as soon as a crash starts (kind and header, "collecting…"), and fills in when the
crash completes: title, guilty function, culprit module, panic reason, taint letters explained,
where it ran, the registers and the call trace as tables, and where the incident was saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option

from crashcart.kernel import CrashReport
from crashcart.safetext import clean

REDRAW_DELAY = 0.1


@dataclass
class CrashEntry:
    """One crash as the panel knows it."""

    crash_id: int
    kind: str
    header: str
    line: int
    report: CrashReport | None = None
    incident: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        title = self.report.title if self.report is not None else self.header
        state = "" if self.report is not None else "  (collecting…)"
        return clean(f"#{self.crash_id} {self.kind}: {title}")[:90] + state


def _field(name: str, value: object) -> Text:
    text = Text()
    text.append(f"{name:<9}", style="bold cyan")
    text.append(clean(str(value)) if value not in (None, "") else "—")
    return text


class CrashPanel(VerticalScroll):
    """A list of crashes (newest first) and the details of the selected one."""

    DEFAULT_CSS = """
    CrashPanel {
        width: 50;
        height: 1fr;
        border-left: thick $error;
        background: $surface;
        padding: 0 1;
    }
    CrashPanel.-hidden { display: none; }
    CrashPanel > #crash-list { height: auto; max-height: 6; border: none; margin-bottom: 1; }
    CrashPanel > .section { text-style: bold; color: $warning; margin-top: 1; }
    CrashPanel > DataTable { height: auto; max-height: 14; }
    CrashPanel > #crash-fields { height: auto; }
    """

    @dataclass
    class JumpToCrash(Message):
        line: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: dict[int, CrashEntry] = {}
        self.selected: int | None = None
        self._redraw_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("Crashes", classes="section")
        yield OptionList(id="crash-list")
        yield Static(id="crash-fields")
        yield Label("Registers", classes="section")
        yield DataTable(id="crash-registers", show_cursor=False, zebra_stripes=True)
        yield Label("Call trace", classes="section")
        yield DataTable(id="crash-trace", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        registers = self.query_one("#crash-registers", DataTable)
        registers.add_columns("reg", "value")
        trace = self.query_one("#crash-trace", DataTable)
        trace.add_columns("", "function", "offset", "module")

    # -- updates ----------------------------------------------------------------------------
    def crash_started(self, crash_id: int, kind: str, header: str, line: int) -> None:
        self.entries[crash_id] = CrashEntry(crash_id, kind, header, line)
        self.selected = crash_id
        self._redraw_soon()

    def crash_completed(
        self, crash_id: int, report: CrashReport, incident: Path | None = None
    ) -> None:
        entry = self.entries.get(crash_id)
        if entry is None:
            entry = CrashEntry(crash_id, report.kind, report.message, report.start_line)
            self.entries[crash_id] = entry
        entry.report = report
        entry.kind = report.kind
        if incident is not None:
            entry.incident = incident
        if self.selected is None or self.selected == crash_id:
            self.selected = crash_id
        self._redraw_soon()

    def show_crash(self, crash_id: int, report: CrashReport) -> None:
        """Add a crash if new, and show it (a hit chosen in the logs pane)."""
        self.crash_completed(crash_id, report)
        self.selected = crash_id
        self._redraw_soon()

    def incident_written(self, report: CrashReport, incident: Path) -> None:
        for entry in self.entries.values():
            if entry.report is report:
                entry.incident = incident
        self._redraw_soon()

    def _redraw_soon(self) -> None:
        # A burst can start and finish dozens of crashes in a second; the tables are filled
        # once per REDRAW_DELAY, for the crash then selected, not once per event.
        if self._redraw_timer is None:
            self._redraw_timer = self.set_timer(REDRAW_DELAY, self._redraw)

    def _redraw(self) -> None:
        self._redraw_timer = None
        self._refresh_list()
        self._show()

    def _refresh_list(self) -> None:
        options = self.query_one("#crash-list", OptionList)
        options.clear_options()
        newest_first = sorted(self.entries.values(), key=lambda e: -e.crash_id)
        options.add_options(Option(e.label, id=str(e.crash_id)) for e in newest_first)
        if self.selected is not None:
            options.highlighted = next(
                i for i, e in enumerate(newest_first) if e.crash_id == self.selected
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.selected = int(event.option.id)
            self._show()
            entry = self.entries[self.selected]
            self.post_message(self.JumpToCrash(entry.line))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None and int(event.option.id) != self.selected:
            self.selected = int(event.option.id)
            self._show()

    def _show(self) -> None:
        entry = self.entries.get(self.selected) if self.selected is not None else None
        fields = self.query_one("#crash-fields", Static)
        registers = self.query_one("#crash-registers", DataTable)
        trace = self.query_one("#crash-trace", DataTable)
        registers.clear()
        trace.clear()
        if entry is None:
            fields.update("")
            return
        report = entry.report
        if report is None:
            fields.update(
                Text("\n").join(
                    [
                        _field("kind", entry.kind),
                        _field("header", entry.header),
                        Text("collecting…"),
                    ]
                )
            )
            return
        lines = [
            _field("kind", report.kind),
            _field("title", report.title),
            _field("function", report.function),
            _field("module", report.module),
            _field("panic", report.panic),
            _field("tainted", report.tainted),
        ]
        for flag in report.taint:
            lines.append(Text(f"  {flag.letter}  {clean(flag.meaning)}", style="yellow"))
        lines += [
            _field("kernel", report.kernel),
            _field("cpu", report.cpu),
            _field("pid", report.pid),
            _field("comm", report.comm),
            _field("hardware", report.hardware),
            _field("lines", f"{report.start_line}-{report.end_line}"),
        ]
        if entry.incident is not None:
            lines.append(_field("incident", entry.incident))
        fields.update(Text("\n").join(lines))
        for name, value in report.registers.items():
            registers.add_row(Text(clean(name), style="cyan"), clean(value)[:40])
        for frame in report.call_trace[:200]:
            mark = Text("?", style="dim") if not frame.reliable else Text(" ")
            name = Text(clean(frame.function), style="bold" if frame.reliable else "dim")
            module = Text(f"[{clean(frame.module)}]", style="yellow") if frame.module else ""
            trace.add_row(mark, name, clean(frame.offset or ""), module)

    @property
    def has_crashes(self) -> bool:
        return bool(self.entries)
