"""The logs pane: what the box's logs said before it died.

Point it at a file, a folder or a mounted root (a rescue system's `/mnt`): the scan (in a
thread) finds kern.log, syslog, messages, journals, pstore and vmcore-dmesg, rotated ones too,
and lists the hits in time order. Choosing one shows its file at that line; a crash hit opens in
the same crash panel as the console's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, Log, OptionList
from textual.widgets.option_list import Option

from crashcart.kernel.report import CrashReport
from crashcart.logs import LogScan, TimelineLine, hit_timeline, scan
from crashcart.logs.hits import Hit
from crashcart.recorder import open_private
from crashcart.recording import InputError
from crashcart.safetext import clean
from tui.widgets.crash_panel import CrashPanel
from tui.widgets.log_view import LogView

HIT_TEXT_CHARS = 40
TIMELINE_WINDOW = 3600.0  # the hour before a crash, as the issue asks
_KIND_STYLES = {
    "panic": "bold white on red",
    "oops": "bold red",
    "bug": "bold red",
    "warning": "yellow",
    "mce": "bold magenta",
    "hardware": "bold magenta",
}


def hit_label(number: int, hit: Hit) -> Text:
    """`#3 12:04:51 panic  kern.log:2211  Kernel panic - not syncing: ...` for the list."""
    when = hit.to_dict()["time"] or "(no time)"
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{number:<3} ", style="dim")
    text.append(f"{when[11:19] if len(when) > 19 else when:<9} ", style="cyan")
    text.append(f"{hit.kind:<12} ", style=_KIND_STYLES.get(hit.kind, "bold"))
    text.append(f"{clean(hit.file).rsplit('/', 1)[-1]}:{hit.line}  ", style="dim")
    # The kernel's message without the syslog prefix, cut to one row of the list.
    text.append(clean(hit.message or hit.text)[:HIT_TEXT_CHARS])
    return text


class LogsScreen(Screen[None]):
    DEFAULT_CSS = """
    LogsScreen { layout: vertical; }
    LogsScreen #logs-path { dock: top; }
    LogsScreen #logs-status { height: 1; padding: 0 1; background: $panel; }
    LogsScreen Horizontal { height: 1fr; }
    LogsScreen #logs-hits { width: 2fr; height: 1fr; }
    LogsScreen #logs-right { width: 3fr; height: 1fr; }
    LogsScreen CrashPanel { width: 1fr; max-height: 50%; border-left: none;
                            border-top: thick $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back to the console"),
        Binding("slash", "focus_path", "logs path"),
        Binding("t", "timeline", "timeline of the hour before"),
    ]

    def __init__(self, path: str = "/var/log", incident: Path | None = None) -> None:
        super().__init__()
        self.path = path
        self.incident = incident  # where logs.json goes (the report reads it)
        self.result: LogScan | None = None
        self.timeline: list[TimelineLine] = []
        self.saved: Path | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            self.path,
            placeholder="a log file, a folder, or a mounted root such as /mnt (Enter scans)",
            id="logs-path",
        )
        yield Label("", id="logs-status")
        with Horizontal():
            yield OptionList(id="logs-hits")
            with Vertical(id="logs-right"):
                yield LogView(id="logs-view")
                panel = CrashPanel(id="logs-crash")
                panel.display = False
                yield panel
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#logs-path", Input).focus()

    def on_unmount(self) -> None:
        if self.result is not None:
            self.result.close()

    # -- scanning -----------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        paths = event.value.split()
        if paths:
            self._status(f"scanning {' '.join(paths)} …")
            self._scan(paths)

    @work(thread=True, exclusive=True, group="logs-scan", exit_on_error=False)
    def _scan(self, paths: list[str]) -> None:
        try:
            result = scan(paths)
        except (InputError, OSError) as exc:
            self.app.call_from_thread(self._status, f"error: {clean(str(exc))}")
            return
        self.app.call_from_thread(self._scanned, result)

    def _scanned(self, result: LogScan) -> None:
        if self.result is not None:
            self.result.close()
        self.result = result
        hits = self.query_one("#logs-hits", OptionList)
        hits.clear_options()
        hits.add_options(
            Option(hit_label(n, hit), id=str(n - 1)) for n, hit in enumerate(result.hits, 1)
        )
        warnings = f", {len(result.warnings)} warnings" if result.warnings else ""
        self._status(f"{len(result.files)} files, {len(result.hits)} hits{warnings}")
        self._save()
        if result.hits:
            hits.highlighted = 0
            hits.focus()

    def _status(self, text: str) -> None:
        self.query_one("#logs-status", Label).update(Text(text))

    # -- choosing a hit -----------------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "logs-hits" and event.option.id is not None:
            self.show_hit(int(event.option.id))

    def show_hit(self, index: int) -> None:
        assert self.result is not None
        hit = self.result.hits[index]
        log = next((tl.log for tl in self.result.files if tl.name == hit.file), None)
        if log is None:
            return
        context = [n for n, _ in hit.context] or [hit.line]
        self.query_one("#logs-view", LogView).show(
            log, hit.line - 1, range(min(context) - 1, max(context))
        )
        panel = self.query_one("#logs-crash", CrashPanel)
        panel.display = hit.crash is not None
        if hit.crash is not None:
            panel.show_crash(index + 1, CrashReport.from_dict(hit.crash))

    # -- the timeline --------------------------------------------------------------------------
    def action_timeline(self) -> None:
        hits = self.query_one("#logs-hits", OptionList)
        if self.result is None or hits.highlighted is None:
            return
        hit = self.result.hits[hits.highlighted]
        lines, note = hit_timeline(self.result, hit, TIMELINE_WINDOW)
        self.timeline = lines
        self._save()
        self.app.push_screen(TimelineScreen(hit, lines, note))

    def _save(self) -> None:
        """The scan (and the last timeline) as the incident's logs.json, for the report."""
        if self.incident is None or self.result is None:
            return
        doc = {**self.result.to_dict(), "timeline": [line.to_dict() for line in self.timeline]}
        path = self.incident / "logs.json"
        partial = self.incident / ".logs.json.partial"
        try:
            with open_private(partial, "w") as out:
                out.write(json.dumps(doc, indent=1) + "\n")
            partial.replace(path)
        except OSError as exc:
            self._status(f"logs.json not saved: {exc.strerror or exc}")
            return
        self.saved = path

    def action_close(self) -> None:
        self.dismiss(None)

    def action_focus_path(self) -> None:
        self.query_one("#logs-path", Input).focus()


class TimelineScreen(ModalScreen[None]):
    """Every log's lines in the hour before a hit, merged by time: the service that died, the
    disk that erred, the admin who logged in just before the crash."""

    DEFAULT_CSS = """
    TimelineScreen { align: center middle; }
    TimelineScreen > Vertical { width: 95%; height: 90%; border: thick $primary;
                                background: $surface; }
    TimelineScreen Log { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,t", "close", "close")]

    def __init__(self, hit: Hit, lines: list[TimelineLine], note: str | None) -> None:
        super().__init__()
        self.hit = hit
        self.lines = lines
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            title = (
                f"{len(self.lines)} lines in the {TIMELINE_WINDOW / 60:g} minutes before "
                f"{clean(self.hit.kind)} at {clean(self.hit.file)}:{self.hit.line}"
            )
            yield Label(title + (f" ({self.note})" if self.note else ""))
            yield Log(id="timeline", max_lines=len(self.lines) + 1)

    def on_mount(self) -> None:
        log = self.query_one("#timeline", Log)
        log.write_lines(_timeline_row(line) for line in self.lines)

    def action_close(self) -> None:
        self.dismiss(None)


def _timeline_row(line: TimelineLine) -> str:
    when = line.to_dict()["time"] or "(kernel clock)"
    name = clean(line.file).rsplit("/", 1)[-1]
    return f"{when}  {name}:{line.line}  {clean(line.text)}"
