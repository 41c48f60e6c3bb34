"""The runbook pane on a module-caused crash seen live on a console: the plan names the
module, the commands are exact for the chosen distribution, a command reaches the console only
after confirmation, and progress survives reopening the pane."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from textual.widgets import OptionList, Select
from tuitools import DEMO, SIZE, asyncio_test, replay_app, replay_finished, wait_until

from connectors import open_connector
from crashcart.recording import load_console_bytes
from tui.app import CrashcartApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.runbook import RunbookScreen

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The "box": prints a real panic (the out-of-tree crashme module), then, like the rescue shell
# that follows, reports every line typed into it.
BOX = r"""
import os, sys, tty
tty.setraw(0)
sys.stdout.buffer.write(open(sys.argv[1], "rb").read())
sys.stdout.flush()
line = b""
while True:
    data = os.read(0, 256)
    if not data:
        break
    line += data
    while b"\n" in line or b"\r" in line:
        cut = min(i for i in (line.find(b"\n"), line.find(b"\r")) if i >= 0)
        sys.stdout.write("typed: %r\r\n" % line[:cut]); sys.stdout.flush()
        line = line[cut + 1 :]
"""

BLACKLIST = (
    "printf 'blacklist %s\\ninstall %s /bin/false\\n' crashme crashme"
    " > /etc/modprobe.d/crashcart-blacklist-crashme.conf"
)


def _screen_text(app: CrashcartApp) -> str:
    return "\n".join(app.panes[0].view.screen_rows())


@asyncio_test
async def test_walk_the_runbook_for_a_module_crash_on_a_live_console(tmp_path: Path) -> None:
    panic = tmp_path / "panic.log"
    panic.write_bytes(load_console_bytes(DEMO))
    box = tmp_path / "box.py"
    box.write_text(BOX)
    connector = open_connector(f"cmd:{sys.executable} {box} {panic}")
    app = CrashcartApp([connector], tmp_path / "rec")
    async with app.run_test(size=SIZE) as pilot:
        pane = app.panes[0]
        await wait_until(pilot, lambda: bool(pane.incidents), 20, "the incident")
        (incident,) = pane.incidents
        await pilot.press("ctrl+right_square_bracket", "m")
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        ids = [step.id for step in screen.steps]
        assert ids[0] == "secure_evidence" and "isolate_module" in ids
        isolate = ids.index("isolate_module")
        assert screen.steps[isolate].applicable
        assert "culprit module crashme" in " ".join(screen.steps[isolate].findings)

        # Debian: the exact blacklist commands for the module the console showed.
        screen.query_one("#rb-family", Select).value = "debian"
        await pilot.pause(0.2)
        screen.query_one("#rb-steps", OptionList).highlighted = isolate
        await pilot.pause(0.2)
        shells = [c.shell for c in screen.steps[isolate].commands]
        assert shells[0] == BLACKLIST
        assert "update-initramfs -u -k all" in shells

        # Typing asks first; "no" sends nothing to the box.
        screen.query_one("#rb-commands", OptionList).highlighted = 0
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
        await pilot.press("n")
        await pilot.pause(0.5)
        assert "typed:" not in _screen_text(app)
        # "yes" types exactly that line.
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.typed == [BLACKLIST], 5, "the typed command")
        await wait_until(pilot, lambda: 'typed: b"printf' in _screen_text(app), 5, "the echo")

        # RHEL: the same step rebuilds its initramfs with dracut.
        screen.query_one("#rb-family", Select).value = "rhel"
        await pilot.pause(0.2)
        assert "dracut -f --regenerate-all" in [c.shell for c in screen.steps[isolate].commands]

        await pilot.press("ctrl+d")  # the step is done
        saved = json.loads((incident / "runbook.json").read_text())
        progress = saved["steps"]["isolate_module"]
        assert progress["status"] == "done"
        assert progress["runs"][0]["how"] == "console"
        assert progress["runs"][0]["command"] == BLACKLIST
        assert saved["settings"]["family"] == "rhel"

        # Reopened (as after a restart), the pane shows the saved progress and choices.
        await pilot.press("escape")
        await pilot.press("ctrl+right_square_bracket", "m")
        again = app.screen
        assert isinstance(again, RunbookScreen) and again is not screen
        assert again.state.status_of(again.steps[isolate]) == "done"
        assert again.query_one("#rb-family", Select).value == "rhel"
        await pilot.press("escape")
        await pilot.press("ctrl+q")


@asyncio_test
async def test_a_hostile_module_name_from_the_console_never_enters_a_command(
    tmp_path: Path,
) -> None:
    # The kernel prints whatever a module calls itself; "[-rf]" parses as a module name.
    recording = tmp_path / "hostile.log"
    recording.write_bytes(load_console_bytes(DEMO).replace(b"[crashme]", b"[-rf]"))
    app = replay_app(tmp_path / "rec", recording)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        assert app.panes[0].reports[0].module == "-rf"
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        screen.query_one("#rb-family", Select).value = "debian"
        await pilot.pause(0.2)
        for step in screen.steps:
            assert not any("-rf" in command.shell for command in step.commands), step.id
        isolate = next(step for step in screen.steps if step.id == "isolate_module")
        assert isolate.refused and "-rf" in " ".join(isolate.refused)
