"""The runbook pane: guided mitigation for one incident.

The steps come from `crashcart.runbook` (the plan follows the evidence: a module culprit, a
hardware failure, a kernel regression). Every command is shown exactly as it would run; it can
be copied, typed into the attached console (the rescue shell) or run over ssh, each only after
a confirmation that shows it again. Progress is saved to the incident's runbook.json at every
change, so it survives a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from crashcart.recording import InputError
from crashcart.runbook import (
    Command,
    Distro,
    ExecuteError,
    RunbookState,
    Settings,
    Step,
    build_runbook,
    run_over_ssh,
    type_into_console_async,
)
from crashcart.runbook.state import read_json
from crashcart.safetext import clean
from tui.screens.confirm import ConfirmScreen

_STATUS_MARKS = {"done": ("✔", "green"), "skipped": ("-", "dim"), "pending": ("·", "yellow")}
ConsoleWriter = Callable[[bytes], Awaitable[None]]


class RunbookScreen(Screen[None]):
    DEFAULT_CSS = """
    RunbookScreen { layout: vertical; }
    RunbookScreen #rb-controls { height: 3; }
    RunbookScreen #rb-family { width: 30; }
    RunbookScreen #rb-host { width: 1fr; }
    RunbookScreen Horizontal#rb-body { height: 1fr; }
    RunbookScreen #rb-steps { width: 40; height: 1fr; }
    RunbookScreen #rb-right { width: 1fr; height: 1fr; }
    RunbookScreen #rb-detail { height: 1fr; padding: 0 1; }
    RunbookScreen #rb-commands { height: auto; max-height: 12; }
    RunbookScreen #rb-status { height: 1; padding: 0 1; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back"),
        Binding("ctrl+d", "mark('done')", "step done", priority=True),
        Binding("ctrl+s", "mark('skipped')", "skip step", priority=True),
        Binding("ctrl+u", "mark('pending')", "step pending", priority=True),
        Binding("ctrl+t", "type_command", "type into console", priority=True),
        Binding("ctrl+r", "ssh_command", "run over ssh", priority=True),
        Binding("ctrl+y", "copy_command", "copy", priority=True),
    ]

    def __init__(self, incident: Path, writer: ConsoleWriter | None) -> None:
        super().__init__()
        self.incident = incident
        self.writer = writer  # the attached console, when it can be typed into
        self.state = RunbookState.load(incident)
        self.crash, self.hardware = _evidence(incident)
        self.steps: list[Step] = []
        self.current = 0
        self.typed: list[str] = []  # command lines typed into the console, for the status line

    def compose(self) -> ComposeResult:
        settings = self.state.settings
        with Horizontal(id="rb-controls"):
            families = [("Debian / Ubuntu", "debian"), ("RHEL / Fedora", "rhel")]
            if settings.family:
                yield Select(families, prompt="distribution", value=settings.family, id="rb-family")
            else:
                yield Select(families, prompt="distribution", id="rb-family")
            yield Input(placeholder="ssh target for 'run over ssh': [user@]host", id="rb-host")
        with Horizontal(id="rb-body"):
            yield OptionList(id="rb-steps")
            with Vertical(id="rb-right"):
                with VerticalScroll(id="rb-detail"):
                    yield Static(id="rb-text")
                yield OptionList(id="rb-commands")
        yield Label("", id="rb-status")
        yield Footer()

    def on_mount(self) -> None:
        self._rebuild()
        self.query_one("#rb-steps", OptionList).focus()

    # -- the plan -----------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.steps = build_runbook(self.crash, hardware=self.hardware, settings=self.state.settings)
        steps = self.query_one("#rb-steps", OptionList)
        highlighted = self.current
        steps.clear_options()
        for number, step in enumerate(self.steps, 1):
            mark, style = _STATUS_MARKS[self.state.status_of(step)]
            label = Text.assemble((f"{mark} ", style), f"{number}. {step.title}")
            steps.add_option(Option(label, id=step.id))
        steps.highlighted = min(highlighted, len(self.steps) - 1)
        self._show(self.current)

    def _show(self, index: int) -> None:
        self.current = index
        step = self.steps[index]
        status = self.state.status_of(step)
        text = Text()
        text.append(f"{step.title}", style="bold")
        text.append(f"  ({step.phase}; {status})\n\n", style="dim")
        text.append("Why  ", style="bold cyan")
        text.append(clean(step.spec.why) + "\n")
        text.append("Here ", style="bold cyan")
        text.append(clean(step.reason) + "\n")
        for finding in step.findings:
            text.append(f"  • {clean(finding)}\n")
        if step.spec.look_for:
            text.append("Look for\n", style="bold cyan")
            for item in step.spec.look_for:
                text.append(f"  • {clean(item)}\n")
        for refused in step.refused:
            text.append(f"Refused: {clean(refused)}\n", style="bold red")
        notes = self.state.progress(step.id).notes
        if notes:
            text.append(f"Notes: {clean(notes)}\n", style="italic")
        self.query_one("#rb-text", Static).update(text)
        commands = self.query_one("#rb-commands", OptionList)
        commands.clear_options()
        for k, command in enumerate(step.commands):
            label = Text.assemble(
                (f"[{command.where}] ", "dim"), (clean(command.shell), "bold"), "\n",
                (f"    {clean(command.purpose)}", "dim"),
            )  # fmt: skip
            commands.add_option(Option(label, id=str(k)))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "rb-steps" and event.option_index != self.current:
            self._show(event.option_index)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value in ("debian", "rhel") and event.value != self.state.settings.family:
            settings = self.state.settings.with_distro(Distro(event.value, ""))  # type: ignore[arg-type]
            self._save_settings(settings)

    def _save_settings(self, settings: Settings) -> None:
        self.state.settings = settings
        self._save()
        self._rebuild()

    def _save(self) -> None:
        try:
            self.state.save(self.incident)
        except OSError as exc:
            self._status(f"runbook.json not saved: {exc.strerror or exc}")

    def _status(self, text: str) -> None:
        self.query_one("#rb-status", Label).update(Text(text))

    # -- progress -----------------------------------------------------------------------------
    def action_mark(self, status: str) -> None:
        step = self.steps[self.current]
        self.state.mark(step.id, status)
        self._save()
        self._rebuild()
        self._status(f"{step.title}: {status}")

    # -- commands -----------------------------------------------------------------------------
    def _command(self) -> Command | None:
        step = self.steps[self.current]
        commands = self.query_one("#rb-commands", OptionList)
        if not step.commands:
            self._status("this step has no commands (choose the distribution for more)")
            return None
        index = commands.highlighted if commands.highlighted is not None else 0
        return step.commands[index]

    def action_copy_command(self) -> None:
        command = self._command()
        if command is not None:
            self.app.copy_to_clipboard(command.shell)
            self._status(f"copied: {clean(command.shell)[:90]}")

    def action_type_command(self) -> None:
        command = self._command()
        if command is None:
            return
        if self.writer is None:
            self._status("this console cannot be typed into (a recording): copy it instead")
            return
        self._type(command, self.steps[self.current].id)

    @work(exclusive=True, group="runbook-command", exit_on_error=False)
    async def _type(self, command: Command, step_id: str) -> None:
        assert self.writer is not None
        try:
            typed = await type_into_console_async(command, self.writer, self._confirm)
        except (ExecuteError, OSError) as exc:
            self._status(f"not typed: {clean(str(exc))}")
            return
        if not typed:
            self._status("not typed")
            return
        self.typed.append(command.shell)
        self.state.record_run(step_id, command, "console")
        self._save()
        self._status(f"typed into the console: {clean(command.shell)[:80]}")

    def action_ssh_command(self) -> None:
        command = self._command()
        if command is None:
            return
        host = self.query_one("#rb-host", Input).value.strip()
        if not host:
            self._status("enter the ssh target first")
            return
        self._ssh(command, host, self.steps[self.current].id)

    @work(exclusive=True, group="runbook-command", exit_on_error=False)
    async def _ssh(self, command: Command, host: str, step_id: str) -> None:
        if not await self._confirm(command, f"run over ssh on {host}"):
            self._status("not run")
            return
        try:
            # Already confirmed above, on the loop; the thread only runs it.
            result = await self.app.run_in_thread(  # type: ignore[attr-defined]
                run_over_ssh, command, host, lambda *_: True
            )
        except (ExecuteError, OSError) as exc:
            self._status(f"not run: {clean(str(exc))}")
            return
        if result is None:
            return
        self.state.record_run(
            step_id, command, "ssh", destination=host, exit_status=result.exit_status
        )
        self._save()
        self._status(f"ssh {clean(host)}: exit {result.exit_status}")

    async def _confirm(self, command: Command, how: str) -> bool:
        question = f"{how.capitalize()}?\n\n    {command.shell}\n\n({command.purpose})"
        return bool(await self.app.push_screen_wait(ConfirmScreen(question, how.split()[0])))

    def action_close(self) -> None:
        self.dismiss(None)


def _evidence(incident: Path) -> tuple[dict, dict | None]:  # type: ignore[type-arg]
    report = read_json(incident / "report.json")
    if not isinstance(report, dict) or not isinstance(report.get("crash"), dict):
        raise InputError(f"{incident}: no report.json with a crash (not an incident folder)")
    hardware = read_json(incident / "hardware.json")
    return report["crash"], hardware if isinstance(hardware, dict) else None
