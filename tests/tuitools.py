"""Helpers for driving the crashcart app with Textual's Pilot."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from connectors import Connector, open_connector
from tui.app import CrashcartApp
from tui.widgets.console_pane import TOAST_GATHER_SECONDS

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "crashcart" / "data" / "demo" / "gpf_list_poison_panic.cast"
SIZE = (120, 40)


async def wait_until(
    pilot: Pilot[int], predicate: Callable[[], bool], timeout: float, what: str
) -> None:
    """Let the app run until `predicate()` holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def replay_app(record_dir: Path, *recordings: Path, speed: float = 0) -> CrashcartApp:
    connectors: list[Connector] = [open_connector(str(r), speed=speed) for r in recordings]
    return CrashcartApp(connectors, record_dir)


async def replay_finished(pilot: Pilot[int], app: CrashcartApp, timeout: float = 20) -> None:
    """Every console has played to its end and every crash has its incident folder."""

    def done() -> bool:
        return all(
            p.status.state == "ended"
            and len(p.incidents) == len(p.reports)
            and p.view.emulator.pending == 0
            for p in app.panes
        )

    await wait_until(pilot, done, timeout, "the replay to end and its incidents to be written")
    await pilot.pause(0.1)


def asyncio_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def runner(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return runner


# -- scenes: the screens the snapshot tests and screenshots/make_screenshots.py show ---------


@contextlib.contextmanager
def stable_names() -> Iterator[None]:
    """Incident and capture folders named without the clock, so pictures are repeatable."""
    import crashcart.incident as incident

    original = incident.incident_dir_name

    def fixed(console: str, report: Any, at: float) -> str:
        return f"20261126T101500-{console}-{report.kind}"

    incident.incident_dir_name = fixed
    try:
        yield
    finally:
        incident.incident_dir_name = original


def shared_qemu() -> Path:
    return Path(os.environ.get("CRASHCART_SHARED", REPO.parent / "shared")) / "corpus" / "qemu"


async def _quiet(pilot: Pilot[int]) -> None:
    """The replay is over, toasts are gone and nothing is still being drawn."""
    app = pilot.app
    assert isinstance(app, CrashcartApp)
    await replay_finished(pilot, app)
    await pilot.pause(TOAST_GATHER_SECONDS + 0.1)  # the incident toast has been shown
    app.clear_notifications()
    await pilot.pause(0.2)


async def scene_console(pilot: Pilot[int]) -> None:
    await _quiet(pilot)
    await pilot.press("k")  # the crash panel closed: the console alone
    await pilot.pause(0.1)


async def scene_crash_panel(pilot: Pilot[int]) -> None:
    await _quiet(pilot)


async def scene_help(pilot: Pilot[int]) -> None:
    await _quiet(pilot)
    await pilot.press("question_mark")
    await pilot.pause(0.2)


async def scene_scrollback(pilot: Pilot[int]) -> None:
    await _quiet(pilot)
    await pilot.press("c")  # scrollback at the crash header
    await pilot.pause(0.2)


async def scene_logs(pilot: Pilot[int]) -> None:
    """The logs pane on a root mounted from real captures, a crash hit chosen."""
    import gzip

    from test_logs_builders import kernel_lines, syslog_text, utc

    from tui.screens.logs import LogsScreen

    await _quiet(pilot)
    log = Path("mnt") / "var" / "log"
    log.mkdir(parents=True, exist_ok=True)
    corpus = shared_qemu()
    older = syslog_text(kernel_lines(corpus, "warning_continue"), utc(2026, 11, 25, 9))
    (log / "kern.log.1.gz").write_bytes(gzip.compress(older.encode(), mtime=0))
    newer = syslog_text(kernel_lines(corpus, "oops_null_panic"), utc(2026, 11, 26, 3))
    (log / "kern.log").write_text(newer)
    await pilot.press("l")
    screen = pilot.app.screen
    assert isinstance(screen, LogsScreen)
    screen.query_one("#logs-path").value = "mnt"  # type: ignore[attr-defined]
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.result is not None, 30, "the logs scan")
    assert screen.result is not None
    hits = screen.result.hits
    crash = next(i for i, h in enumerate(hits) if h.crash is not None and h.kind != "warning")
    screen.query_one("#logs-hits").highlighted = crash  # type: ignore[attr-defined]
    await pilot.pause(0.4)


async def scene_hardware(pilot: Pilot[int]) -> None:
    """The hardware pane as it opens for the crash's incident (before a run: the results
    depend on the machine)."""
    from textual.widgets import Input

    await _quiet(pilot)
    await pilot.press("h")
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture depend on time
    await pilot.pause(0.3)


async def scene_runbook(pilot: Pilot[int]) -> None:
    """The runbook for the demo's module crash, Debian chosen, on the blacklist step."""
    from textual.widgets import OptionList, Select

    await _quiet(pilot)
    await pilot.press("m")
    await pilot.pause(0.2)
    screen = pilot.app.screen
    screen.query_one("#rb-family", Select).value = "debian"
    await pilot.pause(0.2)
    steps = [step.id for step in screen.steps]  # type: ignore[attr-defined]
    screen.query_one("#rb-steps", OptionList).highlighted = steps.index("isolate_module")
    await pilot.pause(0.3)


SCENES: dict[str, tuple[Callable[[Path], CrashcartApp], Callable[[Pilot[int]], Any]]] = {
    "console": (lambda rec: replay_app(rec, DEMO), scene_console),
    "crash-panel": (lambda rec: replay_app(rec, DEMO), scene_crash_panel),
    "tabs": (
        lambda rec: replay_app(rec, shared_qemu() / "normal_boot_login.log", DEMO),
        scene_crash_panel,
    ),
    "help": (lambda rec: replay_app(rec, DEMO), scene_help),
    "scrollback": (lambda rec: replay_app(rec, DEMO), scene_scrollback),
    "logs": (lambda rec: replay_app(rec, DEMO), scene_logs),
    "hardware": (lambda rec: replay_app(rec, DEMO), scene_hardware),
    "runbook": (lambda rec: replay_app(rec, DEMO), scene_runbook),
}
