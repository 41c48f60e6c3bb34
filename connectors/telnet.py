"""telnet://host:port: console servers that speak Telnet (ser2net, Digi, Opengear, conserver).

The console bytes are separated from the Telnet protocol by `TelnetCodec`, a sans-I/O state
machine: IAC IAC is a data byte 0xFF, negotiations are answered, subnegotiations and other
commands are dropped, and any of them may be split across reads. As a console client it agrees
only to what a console needs:

    server WILL ECHO     -> DO    (the far side echoes; we never echo locally anyway)
    server WILL SGA/BINARY, DO SGA/BINARY -> agree (character at a time, 8-bit clean)
    server DO ECHO       -> WONT  (echoing the console's output back into it would feed the
                                   kernel's own messages to the login prompt or shell)
    anything else        -> DONT / WONT

Negotiation follows RFC 1143's rule that only a change of state is answered, so two peers
cannot loop. A BREAK is IAC BRK; most console servers turn it into a real serial break.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from connectors import ConsoleURL, console_name
from connectors.base import Backoff, Connector, ConnectorError

__all__ = ["TelnetCodec", "TelnetConnector", "connect_telnet"]

# Telnet commands (RFC 854) and the options we know by name.
IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
BRK, NOP = 243, 241
BINARY, ECHO, SGA = 0, 1, 3

#: Options the far side may perform (its WILL is answered DO).
ACCEPT_REMOTE = frozenset({BINARY, ECHO, SGA})
#: Options we perform when asked (DO is answered WILL). Not ECHO: see the module doc.
ACCEPT_LOCAL = frozenset({BINARY, SGA})
#: What we ask for on connect: character-at-a-time and 8-bit clean both ways.
INITIAL_REQUESTS = ((DO, SGA), (DO, BINARY), (WILL, BINARY))

_MAX_SUBNEGOTIATION = 4096  # a hostile or broken server must not grow memory without bound
_LONE_CR = re.compile(rb"\r(?!\n)")
CONNECT_TIMEOUT = 10.0


class _State(Enum):
    DATA = auto()
    IAC = auto()  # saw IAC
    OPTION = auto()  # saw IAC WILL/WONT/DO/DONT, the option byte comes next
    SB = auto()  # inside IAC SB ... IAC SE
    SB_IAC = auto()  # saw IAC inside a subnegotiation


@dataclass
class TelnetCodec:
    """Telnet's protocol layer, without I/O: `receive` raw bytes, `encode` console input."""

    local: set[int] = field(default_factory=set)  # options we perform
    remote: set[int] = field(default_factory=set)  # options the far side performs
    _asked: set[tuple[int, int]] = field(default_factory=set)  # (DO|WILL, option) in flight
    _state: _State = _State.DATA
    _verb: int = 0
    _sb: bytearray = field(default_factory=bytearray)
    _cr: bool = False  # the last data byte was CR (NVT: a NUL after it is padding)
    subnegotiations: list[bytes] = field(default_factory=list)  # seen, for diagnostics

    def start(self) -> bytes:
        """Our opening requests; send once after connecting."""
        out = bytearray()
        for verb, option in INITIAL_REQUESTS:
            self._asked.add((verb, option))
            out += bytes((IAC, verb, option))
        return bytes(out)

    def encode(self, data: bytes) -> bytes:
        """Console input as Telnet: 0xFF doubled; a lone CR is CR NUL unless we are BINARY."""
        data = data.replace(b"\xff", b"\xff\xff")
        if BINARY not in self.local:
            data = _LONE_CR.sub(b"\r\x00", data)
        return data

    def receive(self, raw: bytes) -> tuple[bytes, bytes]:
        """(console bytes, replies to send) for some bytes from the server."""
        data = bytearray()
        replies = bytearray()
        i = 0
        while i < len(raw):
            if self._state is _State.DATA:
                end = raw.find(b"\xff", i)
                end = len(raw) if end < 0 else end
                self._emit(raw[i:end], data)
                i = end
                if i < len(raw):
                    self._state = _State.IAC
                    i += 1
                continue
            self._step(raw[i], data, replies)
            i += 1
        return bytes(data), bytes(replies)

    # -- the state machine, one protocol byte at a time ----------------------------------------
    def _step(self, byte: int, data: bytearray, replies: bytearray) -> None:
        state = self._state
        if state is _State.IAC:
            self._command(byte, data)
        elif state is _State.OPTION:
            replies += self._negotiate(self._verb, byte)
            self._state = _State.DATA
        elif state is _State.SB:
            if byte == IAC:
                self._state = _State.SB_IAC
            elif len(self._sb) < _MAX_SUBNEGOTIATION:
                self._sb.append(byte)
        elif state is _State.SB_IAC:
            if byte == SE:
                self.subnegotiations.append(bytes(self._sb))
                self._sb.clear()
                self._state = _State.DATA
            else:  # IAC IAC is a literal 0xFF inside the subnegotiation
                if byte == IAC and len(self._sb) < _MAX_SUBNEGOTIATION:
                    self._sb.append(IAC)
                self._state = _State.SB

    def _command(self, byte: int, data: bytearray) -> None:
        if byte == IAC:
            self._emit(b"\xff", data)
            self._state = _State.DATA
        elif byte in (WILL, WONT, DO, DONT):
            self._verb = byte
            self._state = _State.OPTION
        elif byte == SB:
            self._sb.clear()
            self._state = _State.SB
        else:  # NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE: nothing for a console
            self._state = _State.DATA

    def _emit(self, segment: bytes, data: bytearray) -> None:
        if not segment:
            return
        if BINARY not in self.remote:
            # NVT: CR NUL means a bare CR; drop the NUL, also when it starts the next read.
            if self._cr and segment[:1] == b"\x00":
                segment = segment[1:]
            segment = segment.replace(b"\r\x00", b"\r")
            if not segment:
                return
        self._cr = segment.endswith(b"\r")
        data += segment

    def _negotiate(self, verb: int, option: int) -> bytes:
        """RFC 1143, without the queue bits: answer only what changes our state."""
        if verb in (WILL, WONT):
            return self._side(verb == WILL, option, self.remote, ACCEPT_REMOTE, DO, DONT)
        return self._side(verb == DO, option, self.local, ACCEPT_LOCAL, WILL, WONT)

    def _side(
        self,
        enable: bool,
        option: int,
        enabled: set[int],
        acceptable: frozenset[int],
        yes: int,
        no: int,
    ) -> bytes:
        asked = (yes, option) in self._asked
        self._asked.discard((yes, option))
        if enable:
            if option in enabled:
                return b""
            if option in acceptable:
                enabled.add(option)
                return b"" if asked else bytes((IAC, yes, option))
            return bytes((IAC, no, option))
        if option not in enabled:
            return b""  # already off (or the answer refusing our request): nothing to say
        enabled.discard(option)
        return bytes((IAC, no, option))


class TelnetConnector(Connector):
    """A Telnet console on asyncio streams; reconnects when the server drops us."""

    def __init__(self, url: ConsoleURL, backoff: Backoff | None = None) -> None:
        super().__init__(url.display, console_name(url), backoff)
        self.host = url.host or ""
        self.port = int(url.port or 23)
        self.codec = TelnetCodec()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT
            )
        except TimeoutError as exc:
            raise ConnectorError(f"{self.url}: timed out") from exc
        except OSError as exc:
            raise ConnectorError(f"{self.url}: {_os_reason(exc)}") from exc
        _keepalive(writer)
        self.codec = TelnetCodec()  # a new connection negotiates from scratch
        try:
            writer.write(self.codec.start())
            await writer.drain()
        except OSError as exc:
            writer.close()
            raise ConnectorError(f"{self.url}: {_os_reason(exc)}") from exc
        self._reader, self._writer = reader, writer

    async def _read(self) -> bytes:
        reader, writer = self._streams()
        while True:
            raw = await reader.read(65536)
            if not raw:
                raise ConnectorError(f"{self.url}: connection closed by the server")
            data, replies = self.codec.receive(raw)
            if replies:
                writer.write(replies)
                await writer.drain()
            if data:  # a read that was all protocol is not the end of the stream
                return data

    async def _write(self, data: bytes) -> None:
        await self._send(self.codec.encode(data))

    async def _send_break(self) -> None:
        await self._send(bytes((IAC, BRK)))

    async def _send(self, wire: bytes) -> None:
        _, writer = self._streams()
        try:
            writer.write(wire)
            await writer.drain()
        except OSError as exc:
            raise ConnectorError(f"{self.url}: write failed: {_os_reason(exc)}") from exc

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            raise ConnectorError(f"{self.url}: not connected")
        return self._reader, self._writer


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if exc.errno:  # asyncio's strerror is "Connect call failed (...)": use the errno's words
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive (idle 15 s, 3 probes 5 s apart): a console server that lost power, or a
    cable pulled, is noticed in half a minute instead of never on a quiet console."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def connect_telnet(url: ConsoleURL, **options: Any) -> Connector:
    """The connector for telnet://host:port (not yet opened).

    The URL takes no query options; of the keyword options only `backoff` (a Backoff) is used,
    the others are meant for other transports and ignored.
    """
    backoff = options.get("backoff")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConnectorError(f"{url.display}: backoff must be a Backoff")
    if url.options:
        raise ConnectorError(f"{url.display}: telnet:// takes no option {sorted(url.options)[0]!r}")
    return TelnetConnector(url, backoff)
