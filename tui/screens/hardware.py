"""The hardware pane: is the box sound? The checks of `crashcart hwcheck`, run here or on the
target over ssh, with their output streaming live, a verdict per check, and memtester's
progress; the result goes to the incident's hardware.json, where the runbook and the report
read it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Log, ProgressBar

from crashcart.hardware.checks import default_checks, parse_memtester_spec
from crashcart.hardware.runner import (
    CheckFinished,
    CheckProgress,
    CheckStarted,
    Event,
    HardwareResult,
    LocalTarget,
    OutputLine,
    SshTarget,
    Target,
    TargetError,
    run_checks,
    save_hardware_json,
)
from crashcart.recording import InputError
from crashcart.safetext import clean

VERDICT_STYLES = {
    "pass": "bold green",
    "warn": "bold yellow",
    "fail": "bold white on red",
    "unavailable": "dim",
}
LOCAL = "local"


def make_target(text: str) -> Target:
    """`local` (or nothing) is this machine; anything else is an ssh destination, checked."""
    text = text.strip()
    if text in ("", LOCAL):
        return LocalTarget()
    return SshTarget(text)


class HardwareScreen(Screen[None]):
    DEFAULT_CSS = """
    HardwareScreen { layout: vertical; }
    HardwareScreen Horizontal#hw-inputs { height: 3; }
    HardwareScreen #hw-target { width: 2fr; }
    HardwareScreen #hw-memtester { width: 1fr; }
    HardwareScreen #hw-status { height: 1; padding: 0 1; background: $panel; }
    HardwareScreen DataTable { height: 1fr; }
    HardwareScreen Log { height: 1fr; border-top: solid $panel-lighten-2; }
    HardwareScreen ProgressBar { height: 1; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back to the console"),
        # Priority: the path inputs would take Ctrl-X as "cut".
        Binding("ctrl+x", "cancel", "cancel the run", priority=True),
    ]

    def __init__(self, incident: Path | None, target: str = LOCAL) -> None:
        super().__init__()
        self.incident = incident
        self.initial_target = target
        self.result: HardwareResult | None = None
        self.saved: Path | None = None
        self._cancel = threading.Event()
        self._checks_running = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="hw-inputs"):
            yield Input(
                self.initial_target,
                placeholder="local, or [user@]host[:port] over ssh (Enter runs the checks)",
                id="hw-target",
            )
            yield Input(placeholder="memtester SIZE[,PASSES], e.g. 256M,1", id="hw-memtester")
        where = f"saved to {self.incident}/hardware.json" if self.incident else "not saved"
        yield Label(f"Enter runs the checks; results {where}", id="hw-status")
        table = DataTable(id="hw-checks", cursor_type="row", zebra_stripes=True)
        table.add_columns("check", "verdict", "evidence", "seconds")
        yield table
        progress = ProgressBar(id="hw-progress", show_eta=False)
        progress.display = False  # until a check reports progress (memtester)
        yield progress
        yield Log(id="hw-output", max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#hw-target", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._checks_running:
            self.notify("a run is in progress (Ctrl-X cancels it)", timeout=3)
            return
        target_text = self.query_one("#hw-target", Input).value
        memtester_text = self.query_one("#hw-memtester", Input).value.strip()
        try:
            target = make_target(target_text)
            memtester = parse_memtester_spec(memtester_text) if memtester_text else None
            checks = default_checks(memtester=memtester)
        except (TargetError, InputError, ValueError) as exc:
            self._status(f"error: {clean(str(exc))}")
            return
        self.query_one("#hw-checks", DataTable).clear()
        self.query_one("#hw-output", Log).clear()
        self._cancel.clear()
        self._checks_running = True
        self._status(f"running {len(checks)} checks on {clean(target.host)} ({target.via}) …")
        self._run(checks, target)

    @work(thread=True, exclusive=True, group="hwcheck", exit_on_error=False)
    def _run(self, checks: list, target: Target) -> None:  # type: ignore[type-arg]
        try:
            result = run_checks(
                checks,
                target,
                on_event=lambda event: self.app.call_from_thread(self._on_event, event),
                cancel=self._cancel,
            )
        except (TargetError, InputError, OSError) as exc:
            self.app.call_from_thread(self._failed, clean(str(exc)))
            return
        saved = None
        if self.incident is not None:
            try:
                saved = save_hardware_json(self.incident, result)
            except OSError as exc:
                self.app.call_from_thread(self._failed, f"hardware.json: {exc.strerror or exc}")
        self.app.call_from_thread(self._done, result, saved)

    def _on_event(self, event: Event) -> None:
        if not self.is_attached:  # closed while the checks ran (they were cancelled)
            return
        output = self.query_one("#hw-output", Log)
        if isinstance(event, CheckStarted):
            output.write_line(f"$ {clean(event.command)}")
        elif isinstance(event, OutputLine):
            output.write_line(clean(event.text))
        elif isinstance(event, CheckProgress):
            progress = self.query_one("#hw-progress", ProgressBar)
            progress.display = True
            progress.update(total=event.total, progress=event.done)
        elif isinstance(event, CheckFinished):
            check = event.result
            evidence = "; ".join(check.evidence)[:120]
            if check.install_hint is not None and check.verdict == "unavailable":
                hint = check.install_hint.to_dict()
                evidence = f"install: apt {hint.get('apt')} / dnf {hint.get('dnf')}. {evidence}"
            self.query_one("#hw-checks", DataTable).add_row(
                clean(check.name),
                Text(check.verdict.value, style=VERDICT_STYLES.get(check.verdict.value, "")),
                clean(evidence),
                f"{check.seconds:.1f}",
            )

    def _done(self, result: HardwareResult, saved: Path | None) -> None:
        if not self.is_attached:  # closed while the checks ran (they were cancelled)
            return
        self._checks_running = False
        self.result = result
        self.saved = saved
        where = f"; saved to {saved}" if saved else ""
        self._status(f"overall: {result.verdict.value} ({len(result.checks)} checks){where}")

    def _failed(self, message: str) -> None:
        if not self.is_attached:  # closed while the checks ran (they were cancelled)
            return
        self._checks_running = False
        self._status(f"error: {message}")

    def _status(self, text: str) -> None:
        self.query_one("#hw-status", Label).update(Text(text))

    def action_cancel(self) -> None:
        if self._checks_running:
            self._cancel.set()
            self._status("cancelling …")

    def action_close(self) -> None:
        self._cancel.set()  # a check still running is stopped, not left behind
        self.dismiss(None)
