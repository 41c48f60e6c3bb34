"""The hardware pane: the real checks run on this machine (memtester on a small size), live
output and a verdict per check, the result saved to the crash's incident; a run can be
cancelled; a hostile ssh destination is refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labtools import require_commands
from textual.widgets import DataTable, Input, Log
from tuitools import DEMO, SIZE, asyncio_test, replay_app, replay_finished, wait_until

from tui.screens.hardware import HardwareScreen

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def _open(pilot, app) -> HardwareScreen:  # type: ignore[no-untyped-def]
    await replay_finished(pilot, app)
    await pilot.press("h")
    assert isinstance(app.screen, HardwareScreen)
    return app.screen


async def _run(pilot, screen: HardwareScreen, target: str, memtester: str = "") -> None:  # type: ignore[no-untyped-def]
    """Fill in the pane's two fields and press Enter, as an operator would."""
    screen.query_one("#hw-target", Input).value = target
    screen.query_one("#hw-memtester", Input).value = memtester
    screen.query_one("#hw-target", Input).focus()
    await pilot.press("enter")


@asyncio_test
async def test_checks_run_with_memtester_and_land_in_the_incident(tmp_path: Path) -> None:
    require_commands("memtester")
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, app)
        (incident,) = app.panes[0].incidents
        assert screen.incident == incident
        await _run(pilot, screen, "local", "4M,1")
        await wait_until(pilot, lambda: screen.result is not None, 240, "the checks")
        assert screen.result is not None
        names = [check.name for check in screen.result.checks]
        assert {"machine-check", "edac", "kernel-log", "temperatures", "fans"} <= set(names)
        memtester = next(c for c in screen.result.checks if c.name == "memtester")
        assert memtester.verdict.value == "pass", memtester.evidence
        table = screen.query_one("#hw-checks", DataTable)
        assert table.row_count == len(screen.result.checks)
        # memtester's own output streamed into the pane as it ran.
        assert any("memtester" in line for line in screen.query_one("#hw-output", Log).lines)
        saved = json.loads((incident / "hardware.json").read_text())
        assert [c["name"] for c in saved["checks"]] == names
        assert screen.saved == incident / "hardware.json"


@asyncio_test
async def test_a_long_memory_test_can_be_cancelled(tmp_path: Path) -> None:
    require_commands("memtester")
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, app)
        await _run(pilot, screen, "local", "512M,50")
        output = screen.query_one("#hw-output", Log)
        await wait_until(
            pilot, lambda: any("memtester" in line for line in output.lines), 120, "memtester"
        )
        await pilot.pause(1.0)
        await pilot.press("ctrl+x")
        await wait_until(pilot, lambda: screen.result is not None, 30, "the cancelled run")
        assert screen.result is not None
        memtester = next(c for c in screen.result.checks if c.name == "memtester")
        assert memtester.verdict.value != "pass"
        assert any("cancel" in line.lower() for line in memtester.evidence), memtester.evidence


@asyncio_test
async def test_a_hostile_ssh_destination_is_refused(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(pilot, app)
        for hostile in ("-oProxyCommand=touch /tmp/pwned", "web01;reboot", "a b"):
            await _run(pilot, screen, hostile)
            await pilot.pause(0.1)
            status = str(screen.query_one("#hw-status").render())
            assert status.startswith("error:"), (hostile, status)
            assert screen.result is None
