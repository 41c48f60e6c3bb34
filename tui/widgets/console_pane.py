"""One attached console: the live screen or its scrollback, the crash panel, the status line.

The pane owns the console's Session (recorder, parser, incidents), run in a Textual worker on
the app's event loop. Every chunk is recorded before it is drawn; the screen is only a view.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input
from textual.worker import Worker

from connectors import Connector, ConnectorError, Unsupported
from crashcart.incident import write_capture
from crashcart.kernel import CrashCompleted, CrashGrew, CrashReport, CrashStarted
from crashcart.recording import InputError
from crashcart.report_render import export
from crashcart.safetext import clean
from crashcart.session import (
    ConsoleOutput,
    ConsoleState,
    CrashDetected,
    CrashProgress,
    IncidentUnsaved,
    RecordingFailed,
    RecordingResumed,
    Session,
    SessionEvent,
)
from tui.highlight import Highlights
from tui.keys import LEADER_LABEL
from tui.linestore import LineStore
from tui.screens.ask_path import AskPathScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.sysrq import BREAK_ONLY, DESTRUCTIVE, SYSRQ_COMMANDS, SysrqScreen
from tui.widgets.console_view import ConsoleView
from tui.widgets.crash_panel import CrashEntry, CrashPanel
from tui.widgets.scrollback import Scrollback
from tui.widgets.status_bar import ConsoleStatus, StatusBar, human_bytes

# How soon after BREAK the letter follows: well inside the kernel's 5 s window, and after the
# console server has had time to put the BREAK on the wire.
SYSRQ_LETTER_DELAY = 0.3
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)
# Incidents completed within this long of each other share one toast.
TOAST_GATHER_SECONDS = 0.3
# Where "save elsewhere" suggests to write when no --fallback was given: memory-backed, so it
# works when every disk is full, and gone at the jump host's next reboot (the prompt says so).
RESCUE_DIRS = (Path("/dev/shm"), Path("/tmp"))


def _transport(connector: Connector) -> str:
    return type(connector).__name__.removesuffix("Connector").lower() or "console"


class ConsolePane(Widget):
    DEFAULT_CSS = """
    ConsolePane { height: 1fr; width: 1fr; layout: vertical; }
    ConsolePane > Horizontal { height: 1fr; }
    ConsolePane #screen-column { width: 1fr; height: 1fr; }
    ConsolePane ContentSwitcher { height: 1fr; }
    ConsolePane #search { dock: bottom; display: none; }
    ConsolePane #search.-visible { display: block; }
    """

    @dataclass
    class Crashed(Message):
        """A crash started on this console (the app badges its tab)."""

        pane: ConsolePane

    @dataclass
    class Ended(Message):
        pane: ConsolePane

    def __init__(
        self,
        connector: Connector,
        record_dir: Path,
        *,
        fallback: Path | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.connector = connector
        self.record_dir = record_dir
        self.fallback = fallback
        self.highlights = Highlights()
        self.store = LineStore()
        self.session: Session | None = None
        self.status = ConsoleStatus(_transport(connector), connector.url)
        self.read_only = not _can_type(connector)
        # The connector's 30 ms batching after small reads saves CPU across a fleet (`watch`);
        # an operator watching a handful of consoles wants every echo and line at once, and
        # the view batches its redraws itself.
        connector.coalesce_seconds = 0
        self.captures: list[Path] = []
        self.reports: list[CrashReport] = []
        self._worker: Worker[None] | None = None
        self._seeking_from: float | None = None
        self._unannounced: list[CrashDetected] = []
        self.exports: list[Path] = []
        self._status_dirty = False

    @property
    def selected_crash(self) -> CrashEntry | None:
        """The crash chosen in the panel (the newest, unless the operator chose another)."""
        panel = self.panel
        return panel.entries.get(panel.selected) if panel.selected is not None else None

    @property
    def incidents(self) -> list[Path]:
        """The incident folders written so far (the session's own list)."""
        return self.session.incidents if self.session is not None else []

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="screen-column"):
                with ContentSwitcher(initial="live"):
                    yield ConsoleView(self.highlights, read_only=self.read_only, id="live")
                    yield Scrollback(self.store, self.highlights, id="scrollback")
                yield Input(placeholder="search the scrollback (Enter; Esc cancels)", id="search")
            panel = CrashPanel(id="crash-panel")
            panel.add_class("-hidden")
            yield panel
        yield StatusBar(id="status")

    @property
    def view(self) -> ConsoleView:
        return self.query_one("#live", ConsoleView)

    @property
    def scrollback(self) -> Scrollback:
        return self.query_one("#scrollback", Scrollback)

    @property
    def panel(self) -> CrashPanel:
        return self.query_one("#crash-panel", CrashPanel)

    def on_mount(self) -> None:
        self._show_status()
        self.set_interval(0.5, self._tick_status)
        self._worker = self._run()

    # -- the session --------------------------------------------------------------------------
    @work(exit_on_error=False, group="sessions")
    async def _run(self) -> None:
        if not await self._open():
            return
        view = self.view
        self.session = Session(
            self.connector,
            self.record_dir,
            on_event=self._on_event,
            columns=view.emulator.columns,
            rows=view.emulator.rows,
            stream=True,
            snapshot=view.snapshot,
            fallback=self.fallback,
        )
        try:
            await self.session.run()
        except OSError as exc:  # the recording disk: say so, the screen keeps what it has
            self.status.state = "failed"
            self.status.note = f"recording failed: {exc.strerror or exc}"
            self.notify(self.status.note, severity="error", timeout=30)
        finally:
            self._show_status()
            self.post_message(self.Ended(self))

    async def _open(self) -> bool:
        try:
            await self.connector.open()
            return True
        except ConnectorError as exc:
            if type(exc).__name__ == "SolSessionBusy" and hasattr(self.connector, "take_over"):
                take = await self.app.push_screen_wait(
                    ConfirmScreen(
                        f"{clean(str(exc))}\n\nDeactivate the other SOL session and take over?",
                        "Take over",
                    )
                )
                if take:
                    try:
                        await self.connector.take_over()
                        return True
                    except ConnectorError as again:
                        exc = again
            self.status.state = "failed"
            self.status.note = clean(str(exc))
            self._show_status()
            self.notify(f"{self.connector.name}: {clean(str(exc))}", severity="error", timeout=30)
            return False

    async def stop(self) -> None:
        """Close the console and flush its recording (awaited before the app exits)."""
        if self._worker is not None and not self._worker.is_finished:
            self._worker.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._worker.wait(), 5)
        self.store.close()

    async def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConsoleOutput):
            self._on_output(event)
        elif isinstance(event, CrashProgress):
            self._on_crash_progress(event.event)
        elif isinstance(event, CrashDetected):
            self.panel.incident_written(event.report, event.incident)
            self._unannounced.append(event)
            if len(self._unannounced) == 1:
                self.set_timer(TOAST_GATHER_SECONDS, self._announce_incidents)
        elif isinstance(event, ConsoleState):
            self._on_state(event.state, event.detail)
        elif isinstance(event, RecordingFailed | RecordingResumed | IncidentUnsaved):
            await self._on_disk_event(event)
        self._status_dirty = True

    # -- a failing recording disk ---------------------------------------------------------------
    async def _on_disk_event(
        self, event: RecordingFailed | RecordingResumed | IncidentUnsaved
    ) -> None:
        name = self.connector.name
        if isinstance(event, RecordingFailed) and event.fallback is not None:
            self.status.recording_failed = event.reason
            self.notify(
                f"{name}: recording failed: {clean(event.reason)} ({clean(str(event.path))}); "
                f"moving it to {clean(str(event.fallback))}",
                title="recording disk",
                severity="warning",
                timeout=15,
            )
        elif isinstance(event, RecordingFailed):
            self.status.recording_failed = event.reason
            self.notify(
                f"{name}: recording failed: {clean(event.reason)} ({clean(str(event.path))}).\n"
                "The console is held in memory and the folder retried every few seconds; "
                f"{LEADER_LABEL} w saves it elsewhere.",
                title="recording disk",
                severity="error",
                timeout=60,
            )
        elif isinstance(event, RecordingResumed):
            self.status.recording_failed = ""
            self._scrollback_catch_up(event.log, event.spooled)
            lost = f"; {event.dropped} bytes lost (memory was full)" if event.dropped else ""
            where = f"now goes to {event.log.parent}" if event.moved else f"resumed in {event.log}"
            self.notify(
                f"{name}: recording {where}{lost}",
                title="recording disk",
                severity="warning" if event.dropped else "information",
                timeout=15,
            )
        else:
            self.notify(
                f"{name}: {clean(event.report.title)[:80]}\nthe incident folder could not be "
                f"written ({clean(event.reason)}): kept in memory; {LEADER_LABEL} w saves it "
                "elsewhere",
                title="crash not saved",
                severity="error",
                timeout=60,
            )

    def _scrollback_catch_up(self, log: Path, spooled: int) -> None:
        """What memory held is now at the start of `log`: the scrollback reads it from there."""
        if not spooled:
            return
        try:
            with log.open("rb") as f:
                held = f.read(spooled)
        except OSError:
            return
        self.store.append(held, log, 0)

    def unwritten(self) -> str:
        """What of this console is on no disk, for a person ("" when nothing)."""
        session = self.session
        if session is None or not (session.unwritten_bytes or session.unsaved):
            return ""
        crashes = f" and {len(session.unsaved)} crash(es)" if session.unsaved else ""
        return f"{human_bytes(session.unwritten_bytes)}{crashes}"

    async def save_elsewhere(self) -> None:
        """Ask where, then write there what memory holds and record on there."""
        if self.session is None:
            self.notify("nothing is being recorded here", timeout=4)
            return
        suggestion = self.fallback or next(
            (d / "crashcart-rescue" for d in RESCUE_DIRS if d.is_dir()), Path("crashcart-rescue")
        )
        held = self.unwritten() or "nothing"
        where = await self.app.push_screen_wait(
            AskPathScreen(
                f"Record {self.connector.name} from now on in which folder?\n"
                f"Held in memory only: {held}. (/dev/shm is memory: gone at reboot.)",
                suggestion,
            )
        )
        if where is not None:
            await self._save_to(where)

    async def _save_to(self, root: Path) -> None:
        assert self.session is not None
        recording_moves = self.session.recorder.failure is not None
        try:
            await self.session.save_elsewhere(root)
        except OSError as exc:
            self.notify(
                f"cannot save to {root}: {exc.strerror or exc}", severity="error", timeout=30
            )
            return
        if not recording_moves:  # else RecordingResumed says where the recording went
            self.notify(f"{self.connector.name}: crash folders now go to {root}", timeout=15)

    def _announce_incidents(self) -> None:
        """One toast for the incidents written since the last: a crash loop or a flushed
        buffer can complete dozens in a second, and a toast each would bury the screen."""
        written, self._unannounced = self._unannounced, []
        if not written:
            return
        last = written[-1]
        if len(written) == 1:
            message = f"{self.connector.name}: {clean(last.report.title)[:80]}"
        else:
            message = f"{self.connector.name}: {len(written)} crashes"
        self.notify(
            f"{message}\nincident saved to {last.incident}",
            title="crash captured",
            severity="error",
            timeout=15,
        )

    def _on_output(self, output: ConsoleOutput) -> None:
        if output.log is not None:  # else held in memory: the scrollback gets it on resume
            self.store.append(output.data, output.log, output.offset)
        self.status.bytes_in += len(output.data)
        self.view.feed(output.data)
        if self.query_one(ContentSwitcher).current == "scrollback":
            self.scrollback.grow()

    def _on_crash_progress(self, event: CrashStarted | CrashGrew | CrashCompleted) -> None:
        if isinstance(event, CrashStarted):
            self.highlights.started(event.crash_id, event.line, event.text)
            self.status.crashes += 1
            self.panel.crash_started(event.crash_id, event.kind, event.header, event.line)
            self.panel.remove_class("-hidden")
            self.view.rehighlight()
            self.post_message(self.Crashed(self))
            if self._seeking_from is not None:
                self._stop_seeking()
        elif isinstance(event, CrashGrew):
            self.highlights.grew(event.crash_id, event.line, event.text)
            self.view.rehighlight()
        else:
            self.reports.append(event.report)
            self.panel.crash_completed(event.crash_id, event.report)

    def _on_state(self, state: str, detail: str) -> None:
        if state == "reconnecting":  # a retry failed: why, e.g. another SOL session holds it
            self.status.state = "reconnecting"
            self.status.note = detail
        elif state == "disconnected":
            if not self.connector.reconnects:
                self.status.state = "ended"
            else:
                self.status.state = "reconnecting"
            self.status.note = detail
        elif state == "connected":
            self.status.state = "connected"
            self.status.note = ""
        elif state == "closed":
            self.status.state = "ended" if not self.connector.reconnects else "closed"
        elif state == "gap":
            self.status.gaps += 1

    def _tick_status(self) -> None:
        if self._status_dirty:
            self._status_dirty = False
            self._show_status()

    def _show_status(self) -> None:
        if self.session is not None:
            recorder = self.session.recorder
            self.status.recording = str(recorder.directory)
            self.status.recording_size = recorder.total_bytes
            self.status.held = recorder.spool.size if recorder.failure is not None else 0
        self.status.replay = self._replay_status()
        with contextlib.suppress(NoMatches):  # not mounted yet, or already torn down
            self.query_one("#status", StatusBar).show(self.status)

    # -- typing -------------------------------------------------------------------------------
    def on_console_view_typed(self, message: ConsoleView.Typed) -> None:
        message.stop()
        if self.read_only:
            return
        self._send(message.data)

    def on_console_view_resized(self, message: ConsoleView.Resized) -> None:
        set_size = getattr(self.connector, "set_window_size", None)
        if set_size is not None:
            with contextlib.suppress(Exception):
                set_size(message.columns, message.rows)

    @work(exit_on_error=False, group="typing")
    async def _send(self, data: bytes) -> None:
        try:
            await self.connector.write(data)
        except (ConnectorError, OSError) as exc:
            self.notify(f"not sent: {clean(str(exc))}", severity="warning", timeout=4)

    # -- commands -----------------------------------------------------------------------------
    def capture(self) -> None:
        """Write the screen (and the recording so far) to a capture folder now."""
        session = self.session
        recording = session.recorder.extent() if session is not None else None
        # The session's folder: a failing disk may have moved it (a fallback, or `w`).
        record_dir = session.record_dir if session is not None else self.record_dir
        folder = write_capture(
            record_dir / "captures",
            self.connector.name,
            recording=recording,
            screen=self.view.snapshot(),
            source=self.connector.url,
        )
        self.captures.append(folder)
        self.notify(f"screen captured to {folder}", title="capture", timeout=10)

    async def sysrq(self) -> None:
        can_break, reason = _can_break(self.connector)
        choice = await self.app.push_screen_wait(
            SysrqScreen(self.connector.name, can_break, reason)
        )
        if choice is None:
            return
        if choice in DESTRUCTIVE:
            name = next(c.name for c in SYSRQ_COMMANDS if c.letter == choice)
            if not await self.app.push_screen_wait(
                ConfirmScreen(
                    f"Send SysRq '{choice}' to {self.connector.name}?\n\n{name}", f"Send '{choice}'"
                )
            ):
                self.notify("SysRq not sent", timeout=3)
                return
        try:
            await self.connector.send_break()
            if choice != BREAK_ONLY:
                await asyncio.sleep(SYSRQ_LETTER_DELAY)
                await self.connector.write(choice.encode())
        except Unsupported as exc:
            self.notify(clean(str(exc)), severity="warning", timeout=8)
            return
        except (ConnectorError, OSError) as exc:
            self.notify(f"BREAK failed: {clean(str(exc))}", severity="error", timeout=8)
            return
        sent = "BREAK" if choice == BREAK_ONLY else f"BREAK + SysRq '{choice}'"
        self.notify(f"{sent} sent to {self.connector.name}", timeout=4)

    def export_report(self) -> None:
        """The selected crash's incident, with whatever logs, hardware and runbook files it
        has gathered since, as a ticket-ready Markdown and HTML file in its folder."""
        entry = self.selected_crash
        if entry is None or entry.incident is None:
            self.notify("no incident to export yet (a crash writes one when it completes)")
            return
        self._export(entry.incident)

    @work(exit_on_error=False, group="export", thread=True)
    def _export(self, incident: Path) -> None:
        try:
            written = export(incident)
        except (InputError, OSError) as exc:
            self.app.call_from_thread(
                self.notify, f"export failed: {clean(str(exc))}", severity="error", timeout=10
            )
            return
        self.exports.extend(written)
        names = " and ".join(p.name for p in written)
        self.app.call_from_thread(
            self.notify, f"{names} written to {incident}", title="report", timeout=10
        )

    def toggle_panel(self) -> None:
        self.panel.toggle_class("-hidden")

    def show_scrollback(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "scrollback"
        self.scrollback.grow()
        self.scrollback.focus()

    def show_live(self) -> None:
        self.query_one(ContentSwitcher).current = "live"
        self.query_one("#search", Input).remove_class("-visible")
        self.view.focus()

    def on_scrollback_closed(self, message: Scrollback.Closed) -> None:
        self.show_live()

    def on_scrollback_search_requested(self, message: Scrollback.SearchRequested) -> None:
        self.start_search()

    def start_search(self) -> None:
        if self.query_one(ContentSwitcher).current != "scrollback":
            self.show_scrollback()
        search = self.query_one("#search", Input)
        search.add_class("-visible")
        search.focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        search = self.query_one("#search", Input)
        search.remove_class("-visible")
        self.scrollback.focus()
        if not self.scrollback.search(message.value):
            self.notify(f"not found: {message.value}", timeout=3)

    def jump_to_crash(self) -> None:
        entry = self.selected_crash
        if entry is None:
            self.notify("no crash yet", timeout=3)
            return
        self.show_scrollback()
        self.scrollback.jump_to_crash(entry.line)

    def on_crash_panel_jump_to_crash(self, message: CrashPanel.JumpToCrash) -> None:
        self.show_scrollback()
        self.scrollback.jump_to_crash(message.line)

    # -- replay controls ----------------------------------------------------------------------
    def _replay(self):  # type: ignore[no-untyped-def]
        return self.connector if hasattr(self.connector, "set_speed") else None

    def _replay_status(self) -> str:
        replay = self._replay()
        if replay is None:
            return ""
        if self._seeking_from is not None:
            return "⏩ to next crash"
        if replay.paused:
            return "⏸ paused"
        return "▶ max speed" if replay.fast else f"▶ {replay.speed:g}x"

    def pause(self) -> bool:
        replay = self._replay()
        if replay is None:
            return False
        if replay.paused:
            replay.resume()
        else:
            replay.pause()
        self._show_status()
        return True

    def change_speed(self, faster: bool) -> bool:
        replay = self._replay()
        if replay is None:
            return False
        current = 1.0 if replay.fast else replay.speed
        if faster:
            speed = next((s for s in SPEEDS if s > current), SPEEDS[-1])
        else:
            speed = next((s for s in reversed(SPEEDS) if s < current), SPEEDS[0])
        replay.set_speed(speed)
        self._show_status()
        return True

    def seek_crash(self) -> bool:
        replay = self._replay()
        if replay is None:
            return False
        if self._seeking_from is None:
            self._seeking_from = replay.speed
            replay.set_speed(0)
            if replay.paused:
                replay.resume()
        self._show_status()
        return True

    def _stop_seeking(self) -> None:
        replay = self._replay()
        if replay is not None and self._seeking_from is not None:
            replay.set_speed(self._seeking_from)
        self._seeking_from = None
        self._show_status()


def _can_type(connector: Connector) -> bool:
    return not hasattr(connector, "set_speed")  # a replay cannot be typed into


def _can_break(connector: Connector) -> tuple[bool, str]:
    """Whether BREAK can reach this console, judged before trying (the palette says why not)."""
    if hasattr(connector, "set_speed"):
        return False, "a recording cannot be sent a BREAK"
    own = type(connector)._send_break
    base = Connector._send_break
    if own is base:
        return False, f"{_transport(connector)} consoles cannot carry a BREAK"
    return True, ""
