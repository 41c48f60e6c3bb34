"""The console app on live transports: typing reaches the box, the box's terminal queries are
answered, the leader key reaches crashcart, and SysRq goes over a real console server."""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

import pytest
from labtools import Processes, free_tcp_port, require_commands, wait_for, wait_for_path
from tuitools import SIZE, asyncio_test, wait_until

from connectors import open_connector
from tui.app import CrashcartApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.sysrq import SysrqScreen

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The "box": a program on a real pty that behaves like a shell that asks where the cursor is
# (busybox's line editor does) and reports every key it receives, byte for byte.
BOX = r"""
import os, sys, tty
tty.setraw(0)
out = sys.stdout
out.write("box ready\r\n\x1b[6n")
out.flush()
reply = b""
while not reply.endswith(b"R"):
    reply += os.read(0, 1)
out.write("cursor reply=%r\r\n" % reply)
out.flush()
while True:
    data = os.read(0, 64)
    if not data:
        break
    out.write("got %r\r\n" % data)
    out.flush()
"""


def _screen(app: CrashcartApp) -> str:
    return "\n".join(app.panes[0].view.screen_rows())


@asyncio_test
async def test_typing_reaches_the_box_and_terminal_queries_are_answered(tmp_path: Path) -> None:
    script = tmp_path / "box.py"
    script.write_text(BOX)
    connector = open_connector(f"cmd:{sys.executable} {script}")
    app = CrashcartApp([connector], tmp_path / "rec")
    async with app.run_test(size=SIZE) as pilot:
        # pyte answered the box's cursor position request, through the connector.
        await wait_until(pilot, lambda: "cursor reply=" in _screen(app), 10, "the CPR reply")
        assert "cursor reply=b'\\x1b[2;1R'" in _screen(app)

        await pilot.press("h", "i", "enter")
        await wait_until(pilot, lambda: "got b'\\r'" in _screen(app), 5, "Enter at the box")
        assert "got b'h'" in _screen(app) and "got b'i'" in _screen(app)

        # Keys a terminal app needs arrive as xterm sends them; Ctrl-C goes to the box.
        await pilot.press("up", "ctrl+c", "f5")
        await wait_until(pilot, lambda: "got b'\\x1b[15~'" in _screen(app), 5, "F5 at the box")
        screen = _screen(app)
        assert "got b'\\x1b[A'" in screen and "got b'\\x03'" in screen
        assert app.is_running  # Ctrl-C did not quit crashcart

        # The leader key makes the next key a crashcart command ...
        await pilot.press("ctrl+right_square_bracket", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        # ... and twice sends it to the box.
        await pilot.press("ctrl+right_square_bracket", "ctrl+right_square_bracket")
        await wait_until(pilot, lambda: "got b'\\x1d'" in _screen(app), 5, "Ctrl-] at the box")
        # A plain '?' without the leader is typed, not a command.
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: "got b'?'" in _screen(app), 5, "'?' at the box")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+right_square_bracket", "q")
    # Quitting closed the console and its recording holds what the box printed.
    (log,) = (tmp_path / "rec").glob("*/*.log")
    assert b"cursor reply=" in log.read_bytes()


# -- SysRq over a real console server --------------------------------------------------------

SER2NET_CONFIG = """\
%YAML 1.1
---
connection: &console
  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}
  connector: serialdev,{device},115200n81,local
"""


def _read_available(fd: int, wait: float) -> bytes:
    data = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            data += os.read(fd, 4096)
    return data


@pytest.mark.lab
@asyncio_test
async def test_sysrq_letters_reach_the_box_and_destructive_ones_ask_first(
    tmp_path: Path, processes: Processes
) -> None:
    commands = require_commands("socat", "ser2net")
    far, device = tmp_path / "a", tmp_path / "b"
    processes.start(
        [commands["socat"], f"pty,raw,echo=0,link={far}", f"pty,raw,echo=0,link={device}"]
    )
    assert wait_for_path(far, 5) and wait_for_path(device, 5)
    port = free_tcp_port()
    config = tmp_path / "ser2net.yaml"
    config.write_text(SER2NET_CONFIG.format(port=port, device=device))
    processes.start(
        [commands["ser2net"], "-n", "-u", "-c", str(config), "-P", str(tmp_path / "pid")]
    )
    from eventtap import open_raw, tcp_listening

    assert wait_for(lambda: tcp_listening(port), 10)
    box = open_raw(far)
    try:
        app = CrashcartApp([open_connector(f"rfc2217://127.0.0.1:{port}")], tmp_path / "rec")
        async with app.run_test(size=SIZE) as pilot:
            pane = app.panes[0]
            await wait_until(pilot, lambda: pane.status.state == "connected", 10, "connected")

            # A harmless letter goes straight out after the BREAK.
            await pilot.press("ctrl+right_square_bracket", "b")
            await wait_until(pilot, lambda: isinstance(app.screen, SysrqScreen), 5, "palette")
            await pilot.press("h")
            got = await _wait_bytes(pilot, box, b"h")
            assert got == b"h"

            # 'c' crashes the box: it asks, and "no" sends nothing.
            await pilot.press("ctrl+right_square_bracket", "b")
            await wait_until(pilot, lambda: isinstance(app.screen, SysrqScreen), 5, "palette")
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
            await pilot.press("n")
            await pilot.pause(1.0)
            assert _read_available(box, 0.3) == b""

            # ... and "yes" sends it.
            await pilot.press("ctrl+right_square_bracket", "b")
            await wait_until(pilot, lambda: isinstance(app.screen, SysrqScreen), 5, "palette")
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirm")
            await pilot.press("y")
            assert await _wait_bytes(pilot, box, b"c") == b"c"
            await pilot.press("ctrl+q")
    finally:
        os.close(box)


async def _wait_bytes(pilot, fd: int, expected: bytes, timeout: float = 5.0) -> bytes:  # type: ignore[no-untyped-def]
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < len(expected) and time.monotonic() < deadline:
        await pilot.pause(0.05)
        data += _read_available(fd, 0.01)
    return data
