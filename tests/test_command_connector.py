"""cmd: connector: real commands in a real pty (sh, stty, cat, sleep), started and stopped by us.

Every command here is started by the connector under test and must be gone when it is closed:
the tests check the PIDs they were given, never anything found by name.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from labtools import require_commands

from connectors import (
    Backoff,
    Chunk,
    ConnectorError,
    ConnectorEvent,
    Gap,
    StateChange,
    open_connector,
)
from connectors.base import Unsupported
from connectors.command import CommandConnector


@pytest.fixture(autouse=True)
def _peers() -> None:
    require_commands("sh", "stty", "sleep", "cat")


def run(coro: Awaitable[None]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, 20)

    asyncio.run(bounded())


def command(line: str, **options: object) -> CommandConnector:
    conn = open_connector(f"cmd:{line}", **options)
    assert isinstance(conn, CommandConnector)
    return conn


class Events:
    """A connector's events, collected in the background."""

    def __init__(self, conn: CommandConnector) -> None:
        self.events: list[ConnectorEvent] = []
        self.task = asyncio.create_task(self._collect(conn))

    async def _collect(self, conn: CommandConnector) -> None:
        async for event in conn:
            self.events.append(event)

    @property
    def data(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, Chunk))

    def states(self, state: str) -> list[StateChange]:
        return [e for e in self.events if isinstance(e, StateChange) and e.state == state]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            await asyncio.sleep(0.01)


def gone(pid: int) -> bool:
    """No such process, or only a zombie left for init to reap (not our child any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_reaped(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped by the connector: no zombie of ours
    assert not Path(f"/proc/{pid}").exists()


def test_output_window_size_and_exit_status() -> None:
    async def scenario() -> None:
        conn = command('/bin/sh -c \'printf "hello %s\\n" "$TERM"; stty size; exit 5\'', once=1)
        conn.set_window_size(132, 43)  # before open: the first run starts at this size
        await conn.open()
        pid = conn.pid
        assert pid is not None
        events = Events(conn)
        await events.task  # once=1: the stream ends when the command exits
        assert events.data == b"hello xterm\r\n43 132\r\n"  # a real tty: \n became \r\n
        assert events.states("disconnected")[0].detail == "exited with status 5"
        assert not [e for e in events.events if isinstance(e, Gap)]
        assert_reaped(pid)
        await conn.close()

    run(scenario())


def test_window_size_change_reaches_the_child_as_sigwinch() -> None:
    async def scenario() -> None:
        conn = command(
            'sh -c \'trap "echo WINCH; stty size" WINCH; echo ready; '
            "while :; do sleep 0.05; done'",
            once=True,
            grace=1,
        )
        await conn.open()
        events = Events(conn)
        await events.wait_for(lambda: b"ready" in events.data)
        conn.set_window_size(100, 40)
        await events.wait_for(lambda: b"WINCH\r\n40 100\r\n" in events.data)
        pid = conn.pid
        assert pid is not None
        await conn.close()
        assert_reaped(pid)

    run(scenario())


def test_cat_echoes_what_is_written() -> None:
    async def scenario() -> None:
        conn = command("cat", once=True)
        await conn.open()
        events = Events(conn)
        await conn.write(b"ping\n")
        # Once echoed by the terminal (cooked mode, as a terminal emulator starts it), once by cat.
        await events.wait_for(lambda: events.data.count(b"ping\r\n") == 2)
        with pytest.raises(Unsupported, match="~B"):
            await conn.send_break()
        pid = conn.pid
        assert pid is not None
        await conn.close()
        assert_reaped(pid)
        with pytest.raises(ConnectorError):
            await conn.write(b"too late\n")

    run(scenario())


def test_close_stops_the_whole_process_group() -> None:
    async def scenario() -> None:
        conn = command("sh -c 'sleep 30 & echo BG=$!; wait'", once=True, grace=2)
        await conn.open()
        events = Events(conn)
        await events.wait_for(lambda: b"BG=" in events.data)
        background = int(re.search(rb"BG=(\d+)", events.data)[1])  # type: ignore[index]
        pid = conn.pid
        assert pid is not None
        started = time.monotonic()
        await conn.close()
        assert time.monotonic() - started < 1.5  # SIGHUP was enough; no grace period spent
        assert_reaped(pid)
        await events.wait_for(lambda: gone(background))  # sh's child got the group's SIGHUP

    run(scenario())


def test_a_child_ignoring_hangups_is_killed_after_the_grace_period() -> None:
    async def scenario() -> None:
        conn = command("sh -c 'trap \"\" HUP TERM; echo ready; sleep 30'", once=True, grace=0.3)
        await conn.open()
        events = Events(conn)
        await events.wait_for(lambda: b"ready" in events.data)
        pid = conn.pid
        assert pid is not None
        started = time.monotonic()
        await conn.close()
        assert 0.25 <= time.monotonic() - started < 3
        assert_reaped(pid)

    run(scenario())


def test_an_exiting_command_is_rerun_with_growing_delays() -> None:
    async def scenario() -> None:
        conn = command("sh -c 'echo run; exit 3'", backoff=Backoff(first=0.05, ceiling=2))
        await conn.open()
        events = Events(conn)
        await events.wait_for(lambda: len(events.states("disconnected")) >= 4)
        await conn.close()
        assert all(d.detail == "exited with status 3" for d in events.states("disconnected"))
        gaps = [e for e in events.events if isinstance(e, Gap)]
        assert len(gaps) >= 3 and all(g.reason == "exited with status 3" for g in gaps)
        waits = [g.ended - g.started for g in gaps]
        # 0.05, then about 0.1, 0.2: each quick exit doubles the wait before the next run.
        assert waits[0] >= 0.04 and waits[2] > waits[0] * 2.5, waits
        assert events.data.startswith(b"run\r\n" * 4)
        assert conn.runs >= 4
        # Order per run: connected, output, disconnected, gap, connected, ...
        kinds = [type(e).__name__ + getattr(e, "state", "") for e in events.events[:7]]
        assert kinds == [
            "StateChangeconnected",
            "Chunk",
            "StateChangedisconnected",
            "Gap",
            "StateChangeconnected",
            "Chunk",
            "StateChangedisconnected",
        ]

    run(scenario())


def test_once_reports_the_exit_and_does_not_rerun() -> None:
    async def scenario() -> None:
        conn = command("sh -c 'kill -9 $$'", once="1", backoff=Backoff(first=0.01))
        await conn.open()
        events = Events(conn)
        await events.task
        await asyncio.sleep(0.1)
        assert [e.detail for e in events.states("disconnected")] == ["killed by signal 9 (SIGKILL)"]
        assert len(events.states("connected")) == 1 and conn.runs == 1
        await conn.close()

    run(scenario())


def test_a_missing_command_fails_open_with_one_line() -> None:
    async def scenario() -> None:
        conn = command("no-such-console-client-xyz --host web01", once=True)
        with pytest.raises(ConnectorError) as err:
            await conn.open()
        message = str(err.value)
        assert "command not found: no-such-console-client-xyz" in message and "\n" not in message
        with pytest.raises(ConnectorError, match="no such file"):
            await command("/nonexistent/virsh console vm1").open()

    run(scenario())


def test_the_command_line_is_split_not_given_to_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "expanded"

    async def scenario() -> None:
        # If a shell saw this, `$(touch ...)` would run; split with shlex it is one argument.
        conn = command(f"printf '%s\\n' '$(touch {marker})' \"a b\"", once=True)
        await conn.open()
        events = Events(conn)
        await events.task
        assert events.data == f"$(touch {marker})\r\na b\r\n".encode()
        assert not marker.exists()
        await conn.close()

    require_commands("printf")
    run(scenario())
    with pytest.raises(ConnectorError, match="cannot split"):
        command("sh -c 'unbalanced")
