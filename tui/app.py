"""The crashcart console app: one pane per console, in tabs when there are several."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path

from textual.app import App, ComposeResult, SystemCommand
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from connectors import Connector
from crashcart.recording import InputError
from crashcart.safetext import clean
from tui.keymap import COMMANDS, app_bindings, command_for
from tui.keys import LEADER_LABEL
from tui.screens.confirm import ConfirmScreen
from tui.screens.hardware import HardwareScreen
from tui.screens.help import HelpScreen
from tui.screens.logs import LogsScreen
from tui.screens.runbook import RunbookScreen
from tui.widgets.console_pane import ConsolePane
from tui.widgets.console_view import ConsoleView

CRASH_BADGE = "● crashed"


class CrashcartApp(App[int]):
    TITLE = "crashcart"
    CSS = """
    Screen { layout: vertical; }
    TabbedContent { height: 1fr; }
    TabbedContent > ContentSwitcher { height: 1fr; }
    TabPane { padding: 0; height: 1fr; }
    Tab.-crashed { color: $error; text-style: bold; }
    Footer { height: 1; }
    """
    BINDINGS = app_bindings()

    def __init__(
        self,
        connectors: Sequence[Connector],
        record_dir: Path,
        *,
        logs_path: str = "/var/log",
        fallback: Path | None = None,
    ) -> None:
        super().__init__()
        self.connectors = list(connectors)
        self.record_dir = record_dir
        self.fallback = fallback
        self.logs_path = logs_path
        self.panes: list[ConsolePane] = []
        self._stopping = False

    def compose(self) -> ComposeResult:
        self.panes = [
            ConsolePane(conn, self.record_dir, fallback=self.fallback, id=f"console-{i}")
            for i, conn in enumerate(self.connectors)
        ]
        if len(self.panes) == 1:
            yield self.panes[0]
        else:
            with TabbedContent(id="tabs"):
                for i, pane in enumerate(self.panes):
                    with TabPane(clean(pane.connector.name), id=f"tab-{i}"):
                        yield pane
        yield Footer()

    def on_mount(self) -> None:
        self.panes[0].view.focus()
        hint = f"{LEADER_LABEL} ? for help" if any(not p.read_only for p in self.panes) else ""
        self.sub_title = hint

    # -- which console --------------------------------------------------------------------------
    @property
    def pane(self) -> ConsolePane:
        """The console on screen."""
        if len(self.panes) == 1:
            return self.panes[0]
        tabs = self.query_one("#tabs", TabbedContent)
        active = tabs.active or "tab-0"
        return self.panes[int(active.removeprefix("tab-"))]

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.pane.view.focus()

    def on_console_pane_crashed(self, message: ConsolePane.Crashed) -> None:
        if len(self.panes) == 1:
            return
        index = self.panes.index(message.pane)
        tabs = self.query_one("#tabs", TabbedContent)
        tab = tabs.get_tab(f"tab-{index}")
        tab.label = f"{clean(message.pane.connector.name)} {CRASH_BADGE}"
        tab.add_class("-crashed")

    def on_console_pane_ended(self, message: ConsolePane.Ended) -> None:
        if self._stopping:
            return
        if all(p.status.state == "failed" for p in self.panes):
            reasons = "; ".join(f"{p.connector.name}: {p.status.note}" for p in self.panes)
            self.exit(2, return_code=2, message=f"crashcart: error: {reasons}")

    # -- the leader key -------------------------------------------------------------------------
    async def on_console_view_leader(self, message: ConsoleView.Leader) -> None:
        command = command_for(message.key, message.character)
        if command is None:
            self.notify(f"{LEADER_LABEL} {message.key}: not a command (? lists them)", timeout=3)
            return
        await self.run_action(command.action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in COMMANDS:
            if command.action == "command_palette":
                continue
            yield SystemCommand(
                command.title,
                f"{command.help} ({LEADER_LABEL} {command.shown})",
                lambda action=command.action: self.call_later(self.run_action, action),
            )

    # -- actions ------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        unwritten = [p for p in self.panes if p.unwritten()]
        if unwritten and not self._stopping:
            self.run_worker(self._confirm_quit(unwritten), group="quit", exclusive=True)
            return
        self._stopping = True
        await asyncio.gather(*(pane.stop() for pane in self.panes), return_exceptions=True)
        self.exit(0, return_code=0)

    async def _confirm_quit(self, unwritten: list[ConsolePane]) -> None:
        """Memory is the only copy of what a failed disk did not take: quitting loses it."""
        held = "; ".join(f"{p.connector.name}: {p.unwritten()}" for p in unwritten)
        question = (
            f"Not on any disk yet ({held}).\n\nQuitting loses it. Save it elsewhere first "
            f"with {LEADER_LABEL} w. Quit anyway?"
        )
        if await self.push_screen_wait(ConfirmScreen(question, "Quit and lose it")):
            self._stopping = True
            await self.action_quit()

    def action_save_elsewhere(self) -> None:
        self.run_worker(self.pane.save_elsewhere(), group="save", exclusive=True)

    def action_sysrq(self) -> None:
        self.run_worker(self.pane.sysrq(), group="sysrq", exclusive=True, exit_on_error=False)

    def action_capture(self) -> None:
        try:
            self.pane.capture()
        except OSError as exc:
            self.notify(f"capture failed: {exc.strerror or exc}", severity="error", timeout=15)

    def action_logs(self) -> None:
        if not isinstance(self.screen, LogsScreen):
            entry = self.pane.selected_crash
            incident = entry.incident if entry is not None else None
            self.push_screen(LogsScreen(self.logs_path, incident))

    def action_hardware(self) -> None:
        if not isinstance(self.screen, HardwareScreen):
            entry = self.pane.selected_crash
            self.push_screen(HardwareScreen(entry.incident if entry is not None else None))

    def action_runbook(self) -> None:
        if isinstance(self.screen, RunbookScreen):
            return
        pane = self.pane
        entry = pane.selected_crash
        if entry is None or entry.incident is None:
            self.notify("no incident yet: the runbook starts from a captured crash", timeout=5)
            return
        writer = None if pane.read_only else pane.connector.write
        try:
            self.push_screen(RunbookScreen(entry.incident, writer))
        except (InputError, OSError) as exc:
            self.notify(f"runbook: {clean(str(exc))}", severity="error", timeout=10)

    def action_export_report(self) -> None:
        self.pane.export_report()

    def action_toggle_panel(self) -> None:
        self.pane.toggle_panel()

    def action_scrollback(self) -> None:
        self.pane.show_scrollback()

    def action_search(self) -> None:
        self.pane.start_search()

    def action_jump_crash(self) -> None:
        self.pane.jump_to_crash()

    def action_next_console(self) -> None:
        if len(self.panes) > 1:
            tabs = self.query_one("#tabs", TabbedContent)
            index = (self.panes.index(self.pane) + 1) % len(self.panes)
            tabs.active = f"tab-{index}"

    def _replay_only(self, done: bool) -> None:
        if not done:
            self.notify("replay controls work on recordings only", timeout=3)

    def action_pause(self) -> None:
        self._replay_only(self.pane.pause())

    def action_faster(self) -> None:
        self._replay_only(self.pane.change_speed(faster=True))

    def action_slower(self) -> None:
        self._replay_only(self.pane.change_speed(faster=False))

    def action_seek_crash(self) -> None:
        self._replay_only(self.pane.seek_crash())
