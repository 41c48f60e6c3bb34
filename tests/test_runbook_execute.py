"""Running a runbook command happens only after an explicit yes.

Typing into a console is tested on a real console: the `cmd:` connector running `cat` in a real
pty, started by the test and closed (its PID reaped) at the end. ssh is a stand-in program that
records its argv, so nothing is ever run on a machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from labtools import require_commands

from connectors import Chunk, open_connector
from connectors.command import CommandConnector
from crashcart.kernel import analyze_bytes
from crashcart.runbook import (
    Command,
    ExecuteError,
    Settings,
    build_runbook,
    run_over_ssh,
    type_into_console,
    type_into_console_async,
)
from crashcart.runbook.execute import console_line

CAPTURE = "gpf_list_poison_panic"
BLACKLIST = (
    r"printf 'blacklist %s\ninstall %s /bin/false\n' crashme crashme"
    " > /etc/modprobe.d/crashcart-blacklist-crashme.conf"
)


@pytest.fixture
def blacklist(qemu_corpus: Path) -> Command:
    """The first command of the real plan for the crashme capture (Debian)."""
    crash = analyze_bytes((qemu_corpus / f"{CAPTURE}.log").read_bytes())[0].to_dict()
    steps = build_runbook(crash, settings=Settings(family="debian"))
    command = next(s for s in steps if s.id == "isolate_module").commands[0]
    assert command.shell == BLACKLIST
    return command


class Asker:
    """A confirm callback that answers `answer` and remembers what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def __call__(self, command: Command, action: str) -> Any:
        self.asked.append((command.shell, action))
        return self.answer


# -- typing into a console -----------------------------------------------------------------------


@pytest.mark.parametrize("answer", [False, None, "yes", 1])
def test_nothing_is_typed_without_an_explicit_yes(blacklist: Command, answer: Any) -> None:
    written: list[bytes] = []
    confirm = Asker(answer)
    assert type_into_console(blacklist, written.append, confirm) is False
    assert confirm.asked == [(BLACKLIST, "type into the console")]
    assert written == []


def test_confirmed_command_is_typed_with_a_newline(blacklist: Command) -> None:
    written: list[bytes] = []
    assert type_into_console(blacklist, written.append, Asker(True)) is True
    assert written == [BLACKLIST.encode() + b"\n"]


@pytest.mark.parametrize(
    "line", ["echo a\nreboot", "echo a\rreboot", "echo\ta", "echo \x1b[A", "", "   "]
)
def test_only_one_printable_line_is_ever_typed(line: str) -> None:
    written: list[bytes] = []
    confirm = Asker(True)
    with pytest.raises(ExecuteError, match="refused to type"):
        type_into_console(Command(line, "target", "test"), written.append, confirm)
    assert confirm.asked == [] and written == []


def test_an_async_writer_needs_the_async_variant(blacklist: Command) -> None:
    async def writer(data: bytes) -> None:
        raise AssertionError("must not run")

    with pytest.raises(TypeError, match="type_into_console_async"):
        type_into_console(blacklist, writer, Asker(True))


def _run(coro: Awaitable[None]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, 20)

    asyncio.run(bounded())


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_typed_into_a_real_console_only_after_confirmation(blacklist: Command) -> None:
    require_commands("cat")

    async def scenario() -> None:
        conn = open_connector("cmd:cat", once=True)
        assert isinstance(conn, CommandConnector)
        await conn.open()
        received = bytearray()

        async def collect() -> None:
            async for event in conn:
                if isinstance(event, Chunk):
                    received.extend(event.data)

        reader = asyncio.create_task(collect())
        try:
            declined = Asker(False)
            assert await type_into_console_async(blacklist, conn.write, declined) is False
            assert declined.asked == [(BLACKLIST, "type into the console")]
            await asyncio.sleep(0.5)  # anything written would have been echoed by now
            assert bytes(received) == b""

            async def yes(command: Command, action: str) -> bool:
                return True  # a TUI dialog answers asynchronously

            assert await type_into_console_async(blacklist, conn.write, yes) is True
            # Once echoed by the terminal (cooked mode), once printed back by cat.
            expected = BLACKLIST.encode() + b"\r\n"
            deadline = time.monotonic() + 5
            while received.count(expected) < 2:
                assert time.monotonic() < deadline, f"got {bytes(received)!r}"
                await asyncio.sleep(0.02)
        finally:
            pid = conn.pid
            await conn.close()
            reader.cancel()
        assert pid is not None and _gone(pid)

    _run(scenario())


# -- ssh -----------------------------------------------------------------------------------------


@pytest.fixture
def fake_ssh(tmp_path: Path) -> tuple[Path, Path]:
    """A program standing in for ssh: records its argv, prints, exits 7. Runs nothing."""
    record = tmp_path / "argv.json"
    program = tmp_path / "ssh"
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('remote output')\n"
        "print('remote warning', file=sys.stderr)\n"
        "sys.exit(7)\n"
    )
    os.chmod(program, 0o700)
    return program, record


def test_ssh_runs_nothing_when_declined(blacklist: Command, fake_ssh: tuple[Path, Path]) -> None:
    program, record = fake_ssh
    confirm = Asker(False)
    assert run_over_ssh(blacklist, "root@web01", confirm, ssh=(str(program),)) is None
    assert confirm.asked == [(BLACKLIST, "run over ssh on root@web01")]
    assert not record.exists()


def test_ssh_runs_the_exact_command_once_confirmed(
    blacklist: Command, fake_ssh: tuple[Path, Path]
) -> None:
    program, record = fake_ssh
    result = run_over_ssh(blacklist, "root@web01", Asker(True), ssh=(str(program),))
    assert result is not None
    # Options, then `--` so the host can never be an option, then the line as ONE argument.
    assert json.loads(record.read_text()) == [
        "-o",
        "BatchMode=yes",
        "--",
        "root@web01",
        BLACKLIST,
    ]
    assert result.exit_status == 7
    assert result.stdout == "remote output\n"
    assert result.stderr == "remote warning\n"
    assert result.host == "root@web01" and result.command == BLACKLIST


def test_ssh_refuses_a_multi_line_command(fake_ssh: tuple[Path, Path]) -> None:
    program, record = fake_ssh
    confirm = Asker(True)
    with pytest.raises(ExecuteError, match="multi-line"):
        run_over_ssh(Command("true\nreboot", "target", "t"), "web01", confirm, ssh=(str(program),))
    assert confirm.asked == [] and not record.exists()


def test_missing_ssh_is_one_clear_error(blacklist: Command, tmp_path: Path) -> None:
    with pytest.raises(ExecuteError, match="not found"):
        run_over_ssh(blacklist, "web01", Asker(True), ssh=(str(tmp_path / "no-ssh"),))


def test_console_line_is_exact(blacklist: Command) -> None:
    assert console_line(blacklist) == BLACKLIST.encode("utf-8") + b"\n"
