"""telnet:// against a tiny real Telnet server on 127.0.0.1, and the protocol codec on its own.

The server speaks first the way console servers do (WILL ECHO, WILL SGA, DO TTYPE, DO NAWS...),
sends data with IAC IAC, subnegotiations and commands split across TCP segments, and records
every byte the client answers, so the test can assert the exact conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from eventtap import EventTap, run

from connectors import open_connector
from connectors.base import Backoff, ConnectorError, StateChange
from connectors.telnet import (
    BINARY,
    BRK,
    DO,
    DONT,
    ECHO,
    IAC,
    SB,
    SE,
    SGA,
    WILL,
    WONT,
    TelnetCodec,
    TelnetConnector,
)

FAST = Backoff(first=0.05, ceiling=0.2)
TTYPE, NAWS, GA, NOP, DM = 24, 31, 249, 241, 242


def cmd(*values: int) -> bytes:
    return bytes((IAC, *values))


# What the server sends, in separate writes so they arrive as separate reads; a few sequences
# are cut in the middle on purpose.
SCRIPT: list[bytes] = [
    cmd(WILL, ECHO) + cmd(WILL, SGA) + cmd(DO, TTYPE) + cmd(DO, NAWS) + cmd(WILL, 200),
    cmd(DO, ECHO) + cmd(WILL, BINARY) + cmd(DO, BINARY),
    b"hello \xff\xff world\r\n",
    cmd(SB, TTYPE)[:2],
    bytes((TTYPE, 1, IAC)),
    bytes((SE,)) + b"after ttype\r\n",
    cmd(SB, 99) + b"a" + cmd(IAC) + b"b" + cmd(SE) + b"after sb\r\n",
    cmd(NOP) + cmd(GA) + cmd(DM) + b"x\xff",
    b"\xffy\r\n",
    cmd(WILL, ECHO) + b"[   42.000000] Kernel panic - not syncing: Fatal exception\r\n",
]
CONSOLE = (
    b"hello \xff world\r\nafter ttype\r\nafter sb\r\nx\xffy\r\n"
    b"[   42.000000] Kernel panic - not syncing: Fatal exception\r\n"
)
# The client: its opening requests, then one answer per request that changed its state.
OPENING = cmd(DO, SGA) + cmd(DO, BINARY) + cmd(WILL, BINARY)
ANSWERS = cmd(DO, ECHO) + cmd(WONT, TTYPE) + cmd(WONT, NAWS) + cmd(DONT, 200) + cmd(WONT, ECHO)


class TelnetServer:
    """One scripted Telnet server; `received[i]` is what client connection i sent."""

    def __init__(self, scripts: Sequence[Sequence[bytes]], hang_up: bool = False) -> None:
        self.scripts = scripts
        self.hang_up = hang_up
        self.received: list[bytearray] = []
        self.changed = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.handlers: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.received)
        got = bytearray()
        self.received.append(got)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        self.handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        for n, piece in enumerate(script):
            if n:
                await asyncio.sleep(0.02)  # separate segments, separate reads
            writer.write(piece)
            await writer.drain()
        if not (self.hang_up and index == 0):  # else the console server drops the first client
            await self._record(reader, got)  # until the client hangs up
        writer.close()

    async def _record(self, reader: asyncio.StreamReader, got: bytearray) -> None:
        while data := await reader.read(4096):
            got += data
            self.changed.set()

    async def wait_received(self, index: int, expected: bytes, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) <= index or len(self.received[index]) < len(expected):
                self.changed.clear()
                await self.changed.wait()
        assert bytes(self.received[index]) == expected

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*self.handlers), 5)


@pytest.mark.lab
def test_negotiation_data_write_and_break() -> None:
    async def scenario() -> None:
        server = TelnetServer([SCRIPT])
        port = await server.start()
        conn = open_connector(f"telnet://127.0.0.1:{port}")
        assert isinstance(conn, TelnetConnector)
        await conn.open()
        tap = EventTap(conn)
        try:
            assert await tap.wait_bytes(len(CONSOLE), 5) == CONSOLE
            await server.wait_received(0, OPENING + ANSWERS)
            await conn.write(b"root\r\xffb")  # BINARY both ways now: CR is sent as it is
            await conn.send_break()
            await server.wait_received(0, OPENING + ANSWERS + b"root\r\xff\xffb" + cmd(BRK))
            assert conn.codec.local == {BINARY} and conn.codec.remote == {BINARY, ECHO, SGA}
            assert conn.codec.subnegotiations == [bytes((TTYPE, 1)), b"ca\xffb"]
        finally:
            await tap.close()
            await server.stop()
        assert tap.kinds() == ["connected", "closed"]

    run(scenario())


@pytest.mark.lab
def test_server_drop_reconnects_and_negotiates_afresh() -> None:
    async def scenario() -> None:
        server = TelnetServer([[b"first boot\r\n"], [b"second boot\r\n"]], hang_up=True)
        port = await server.start()
        conn = open_connector(f"telnet://127.0.0.1:{port}", backoff=FAST)
        await conn.open()
        tap = EventTap(conn)
        try:
            await tap.wait(lambda: "gap" in tap.kinds(), 5, "a gap")
            await tap.wait(lambda: tap.data().endswith(b"second boot\r\n"), 5, "second boot")
            await server.wait_received(1, OPENING)  # a new connection starts from scratch
        finally:
            await tap.close()
            await server.stop()
        assert tap.kinds() == ["connected", "disconnected", "gap", "connected", "closed"]
        assert tap.data() == b"first boot\r\nsecond boot\r\n"
        lost = [e for e in tap.events if isinstance(e, StateChange) and e.state == "disconnected"]
        assert lost[0].detail == f"telnet://127.0.0.1:{port}: connection closed by the server"

    run(scenario())


@pytest.mark.lab
def test_unreachable_telnet_is_one_clear_line() -> None:
    async def scenario() -> str:
        with pytest.raises(ConnectorError) as err:
            await open_connector("telnet://127.0.0.1:1").open()
        return str(err.value)

    assert run(scenario()) == "telnet://127.0.0.1:1: connection refused"


def test_telnet_takes_no_options() -> None:
    with pytest.raises(ConnectorError, match="telnet:// takes no option 'baud'"):
        open_connector("telnet://127.0.0.1:23?baud=9600")


# -- the codec alone ---------------------------------------------------------------------------
def feed(codec: TelnetCodec, pieces: Sequence[bytes]) -> tuple[bytes, bytes]:
    data, replies = bytearray(), bytearray()
    for piece in pieces:
        d, r = codec.receive(piece)
        data += d
        replies += r
    return bytes(data), bytes(replies)


def test_codec_is_independent_of_how_bytes_are_split() -> None:
    whole = b"".join(SCRIPT)
    codec = TelnetCodec()
    codec.start()
    expected = feed(codec, [whole])
    assert expected == (CONSOLE, ANSWERS)
    for size in (1, 2, 3, 7):
        codec = TelnetCodec()
        codec.start()
        pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
        assert feed(codec, pieces) == expected, size


def test_codec_nvt_carriage_returns_without_binary() -> None:
    codec = TelnetCodec()  # nothing negotiated: NVT rules
    assert feed(codec, [b"a\r\x00b\r", b"\x00c\r\n"]) == (b"a\rb\rc\r\n", b"")
    assert codec.encode(b"ls\r") == b"ls\r\x00"
    assert codec.encode(b"ls\r\n\xff") == b"ls\r\n\xff\xff"


def test_codec_answers_only_changes_of_state() -> None:
    codec = TelnetCodec()
    assert codec.start() == OPENING
    # Answers to our own requests are not answered again; a refusal is accepted silently.
    assert feed(codec, [cmd(WILL, SGA) + cmd(WONT, BINARY) + cmd(DO, BINARY)]) == (b"", b"")
    assert codec.remote == {SGA} and codec.local == {BINARY}
    # Switching an enabled option off is acknowledged once; repeating it gets no reply.
    assert feed(codec, [cmd(DONT, BINARY)]) == (b"", cmd(WONT, BINARY))
    assert feed(codec, [cmd(DONT, BINARY) + cmd(WONT, ECHO)]) == (b"", b"")
    # Unknown options are refused every time they are offered or asked for.
    assert feed(codec, [cmd(WILL, 77) + cmd(DO, 77)]) == (b"", cmd(DONT, 77) + cmd(WONT, 77))


def test_codec_bounds_a_runaway_subnegotiation() -> None:
    codec = TelnetCodec()
    data, _ = feed(codec, [cmd(SB, TTYPE) + b"x" * 100_000 + cmd(SE) + b"ok"])
    assert data == b"ok"
    assert len(codec.subnegotiations[0]) == 4096
