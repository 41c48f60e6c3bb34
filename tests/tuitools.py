"""Helpers for driving the crashcart app with Textual's Pilot."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from connectors import Connector, open_connector
from tui.app import CrashcartApp

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
