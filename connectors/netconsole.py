"""netconsole receiver: kernel messages over UDP, from one or many hosts, as consoles.

The kernel's netconsole (Documentation/networking/netconsole.rst) sends printk output as UDP
datagrams in one of two formats, told apart here per datagram:

plain (``netconsole=6665@src/eth0,6666@dst/``)
    each datagram is console text exactly as a serial console would show it (``[    3.36]``
    timestamps included when printk.time=1). It is passed through byte for byte.

extended (``netconsole=+...``, or the ``extended`` configfs attribute)
    each datagram is one /dev/kmsg record::

        [<release>,]<level>,<seq>,<timestamp_us>,<cont>[,caller=T1][,ncfrag=<off>/<total>];<text>
        \\n KEY=value          (optional dictionary / userdata lines, each starting with a space)

    ``<text>`` has non-printable bytes and backslashes escaped as ``\\xNN``. A record too long
    for one datagram (1000 bytes) is split into fragments that share the header and carry
    ``ncfrag=<byte offset>/<total bytes>`` of the body.

What an extended record becomes
    The rest of crashcart (recorder, crash parser, screen) wants a console byte stream, so each
    record is rendered the way the kernel's own console would print it::

        [%5d.%06d] <text>\\n          e.g. "[    3.366884] BUG: kernel NULL pointer ..."
        [%5d.%06d][%6s] <text>\\n     when the record has a caller id: "[    3.36][  T110] ..."

    with the timestamp taken from the µs field, ``\\xNN`` escapes undone, an embedded newline
    starting a new prefixed line, and dictionary/userdata lines dropped (a console never shows
    them). Old kernels mark continuation records (``pr_cont``) with ``c`` (first piece) and
    ``+`` (later pieces): those are joined onto one line, which is closed when the next
    non-continuation record (or a loss) arrives.

Fragments, loss, duplicates, reordering (extended only; plain text has no sequence numbers)
    Fragments are reassembled by offset in whatever order they arrive. Records are released in
    sequence-number order: a record that arrives ahead of a missing one is held for at most
    ``reorder`` seconds (default 0.25; URL option ``?reorder=0.1``) waiting for the missing one.
    When the wait runs out the missing records are declared lost, reported as
    ``Gap(t, t, "netconsole: 3 messages lost (seq 41..43)")``, and the held records follow. A
    duplicate (already delivered or already held) is dropped; a declared-lost record that turns
    up late is delivered late rather than thrown away (its timestamp says where it belonged). A
    sequence number going backwards to one never seen means the sender rebooted: numbering starts
    over without a loss report. The first record heard from a host sets its numbering, so
    attaching mid-stream reports no loss.

One listener, many hosts
    A single UDP port usually collects netconsole from a whole rack, and each sender is a console
    of its own (its own recording, its own crash reports). So ``connect_netconsole`` returns a
    `NetconsoleReceiver`, not a Connector, and marks it with ``multi_console = True``::

        receiver = open_connector("netconsole://0.0.0.0:6666")
        await receiver.open()                       # binds; ConnectorError if it cannot
        async for console in receiver.consoles():   # one per source (ip, port), as first heard
            start_a_tab(console)                    # a Connector: async for event in console
        await receiver.close()

    Each `NetconsoleConsole` is a receive-only Connector named like ``192.0.2.5-6665``, already
    open when yielded (calling ``open()`` again is harmless), with ``reconnects = False``;
    ``write`` and ``send_break`` raise Unsupported. A console closed by its user stops receiving
    (its host's datagrams are then ignored, not turned into a new console). Closing the receiver
    ends every console with ``StateChange("disconnected", "netconsole listener closed")``.

Only the address in the URL is bound (``netconsole://127.0.0.1:6666`` listens on loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from connectors import ConsoleURL
from connectors.base import Connector, ConnectorError, Gap, Unsupported

__all__ = [
    "DEFAULT_REORDER_SECONDS",
    "ExtRecord",
    "Lost",
    "NetconsoleConsole",
    "NetconsoleReceiver",
    "SourceDecoder",
    "connect_netconsole",
    "parse_extended",
]

DEFAULT_REORDER_SECONDS = 0.25
# A panic prints hundreds of lines in milliseconds; with the default ~200 KB receive buffer (and
# ~1 KB of kernel overhead per queued datagram) a burst overflows before the loop drains it.
RECEIVE_BUFFER_BYTES = 4 << 20
# Held-back records beyond this are flushed at once (declaring the gap) rather than buffered.
MAX_HELD_RECORDS = 512
# How many delivered / declared-lost sequence numbers are remembered per host.
SEQUENCE_MEMORY = 4096
# Incomplete fragmented records kept per host; the oldest is dropped past this.
MAX_PARTIAL_RECORDS = 32

_EXT_HEADER = re.compile(
    # The optional release (netconsole "r" flag) must contain a non-digit, which keeps it apart
    # from the level field.
    rb"(?:(?P<release>[^,;\n]*[^,;\n\d][^,;\n]*),)?"
    rb"(?P<level>\d+),(?P<seq>\d+),(?P<ts>\d+),(?P<cont>[-+c])"
    rb"(?P<fields>(?:,[^;\n]*)?);"
)
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


# -- the extended format --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtRecord:
    """One extended-format record (or one fragment of one, when `frag` is set)."""

    level: int
    seq: int
    ts_us: int
    cont: str  # "-" a whole line; "c" starts a continued line; "+" continues one
    body: bytes  # escaped text, then "\n" and dictionary lines, as sent
    caller: str | None = None
    release: str | None = None
    frag: tuple[int, int] | None = None  # (byte offset, total bytes) of `body`

    @property
    def text(self) -> bytes:
        """The message text with `\\xNN` escapes undone."""
        escaped = self.body.split(b"\n", 1)[0]
        return _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), escaped)

    @property
    def dictionary(self) -> dict[str, str]:
        """The `KEY=value` lines that follow the text (device info, netconsole userdata)."""
        entries: dict[str, str] = {}
        for line in self.body.split(b"\n")[1:]:
            key, sep, value = line.strip().partition(b"=")
            if sep:
                entries[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        return entries


def parse_extended(datagram: bytes) -> ExtRecord | None:
    """The record in an extended-format datagram, or None if it is plain console text."""
    match = _EXT_HEADER.match(datagram)
    if match is None:
        return None
    caller: str | None = None
    frag: tuple[int, int] | None = None
    for field in match["fields"].split(b",")[1:]:
        key, _, value = field.partition(b"=")
        if key == b"caller":
            caller = value.decode("ascii", "replace")
        elif key == b"ncfrag":
            frag = _parse_ncfrag(value)
            if frag is None:
                return None
    release = match["release"]
    return ExtRecord(
        level=int(match["level"]),
        seq=int(match["seq"]),
        ts_us=int(match["ts"]),
        cont=match["cont"].decode(),
        body=datagram[match.end() :],
        caller=caller,
        release=release.decode("utf-8", "replace") if release else None,
        frag=frag,
    )


def _parse_ncfrag(value: bytes) -> tuple[int, int] | None:
    offset, sep, total = value.partition(b"/")
    if not (sep and offset.isdigit() and total.isdigit()):
        return None
    return int(offset), int(total)


class _Fragments:
    """Reassembles `ncfrag` fragments of a host's records, in any arrival order."""

    def __init__(self, limit: int = MAX_PARTIAL_RECORDS) -> None:
        self._limit = limit
        # seq -> (first fragment seen, {offset: piece})
        self._partial: OrderedDict[int, tuple[ExtRecord, dict[int, bytes]]] = OrderedDict()

    def add(self, fragment: ExtRecord) -> ExtRecord | None:
        """The whole record once its last missing fragment arrives, else None."""
        assert fragment.frag is not None
        offset, total = fragment.frag
        first, pieces = self._partial.setdefault(fragment.seq, (fragment, {}))
        pieces[offset] = fragment.body
        body = _join_pieces(pieces, total)
        if body is None:
            while len(self._partial) > self._limit:
                self._partial.popitem(last=False)  # lost fragments never complete: forget them
            return None
        del self._partial[fragment.seq]
        return ExtRecord(
            first.level, first.seq, first.ts_us, first.cont, body, first.caller, first.release
        )


def _join_pieces(pieces: dict[int, bytes], total: int) -> bytes | None:
    covered = 0
    for offset in sorted(pieces):
        if offset > covered:
            return None  # a hole: some fragment has not arrived (yet)
        covered = max(covered, offset + len(pieces[offset]))
    if covered < total:
        return None
    body = bytearray(total)
    for offset, piece in sorted(pieces.items()):
        piece = piece[: total - offset]
        body[offset : offset + len(piece)] = piece
    return bytes(body)


@dataclass(frozen=True, slots=True)
class Lost:
    """Records `first`..`last` (sequence numbers, inclusive) never arrived."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        if self.count == 1:
            return f"netconsole: 1 message lost (seq {self.first})"
        return f"netconsole: {self.count} messages lost (seq {self.first}..{self.last})"


class _Sequencer:
    """Puts one host's records back in sequence order; reports what never came (see module doc).

    Pure bookkeeping: time is passed in, so it is tested without sockets or sleeps.
    """

    def __init__(self, hold: float, max_held: int = MAX_HELD_RECORDS) -> None:
        self._hold = hold
        self._max_held = max_held
        self._next: int | None = None
        self._held: dict[int, tuple[ExtRecord, float]] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()  # delivered, for duplicates
        self._missing: set[int] = set()  # declared lost, still welcome if they turn up

    def offer(self, record: ExtRecord, now: float) -> list[ExtRecord | Lost]:
        seq = record.seq
        if self._next is None:
            self._next = seq  # first heard from this host: nothing before it counts as lost
        if seq == self._next:
            return [self._deliver(record), *self._release_consecutive()]
        if seq > self._next:
            if seq not in self._held:
                self._held[seq] = (record, now)
            if self._hold <= 0 or len(self._held) > self._max_held:
                return self.flush()
            return []
        if seq in self._missing:
            self._missing.discard(seq)
            self._remember_delivered(seq)
            return [record]  # late, but real kernel text: keep it
        if seq in self._recent:
            return []  # a duplicate
        # A number never seen below the expected one: the sender rebooted and counts from 0.
        out = self.flush()
        self._next = seq
        self._recent.clear()
        self._missing.clear()
        return [*out, self._deliver(record)]

    def due(self) -> float | None:
        """When `expire` will have something to release (None: nothing is held)."""
        if not self._held:
            return None
        return min(since for _, since in self._held.values()) + self._hold

    def expire(self, now: float) -> list[ExtRecord | Lost]:
        due = self.due()
        if due is None or now < due:
            return []
        return self.flush()

    def flush(self) -> list[ExtRecord | Lost]:
        """Stop waiting: declare every hole before a held record lost and release them all."""
        out: list[ExtRecord | Lost] = []
        for seq in sorted(self._held):
            record, _ = self._held.pop(seq)
            assert self._next is not None
            if seq > self._next:
                lost = Lost(self._next, seq - 1)
                self._remember_missing(lost)
                out.append(lost)
            out.append(self._deliver(record))
        return out

    def _deliver(self, record: ExtRecord) -> ExtRecord:
        self._next = record.seq + 1
        self._remember_delivered(record.seq)
        return record

    def _remember_delivered(self, seq: int) -> None:
        self._recent[seq] = None
        while len(self._recent) > SEQUENCE_MEMORY:
            self._recent.popitem(last=False)

    def _release_consecutive(self) -> list[ExtRecord]:
        out: list[ExtRecord] = []
        while self._next in self._held:
            record, _ = self._held.pop(self._next)
            out.append(self._deliver(record))
        return out

    def _remember_missing(self, lost: Lost) -> None:
        first = max(lost.first, lost.last - SEQUENCE_MEMORY + 1)
        self._missing.update(range(first, lost.last + 1))
        if len(self._missing) > SEQUENCE_MEMORY:
            self._missing = set(sorted(self._missing)[-SEQUENCE_MEMORY:])


class _LineRenderer:
    """Renders records as kernel console lines, joining old kernels' continuation records."""

    def __init__(self) -> None:
        self._open = False  # the last line was a "c"/"+" piece, not yet ended

    def render(self, record: ExtRecord) -> bytes:
        prefix = _console_prefix(record)
        continuing = self._open and record.cont == "+"
        out = bytearray()
        if self._open and not continuing:
            out += b"\n"
        for i, line in enumerate(record.text.split(b"\n")):
            if i:
                out += b"\n"
            if i or not continuing:
                out += prefix
            out += line
        self._open = record.cont in ("c", "+")
        if not self._open:
            out += b"\n"
        return bytes(out)

    def end_line(self) -> bytes:
        """Close a continued line (before a loss marker or plain text)."""
        if not self._open:
            return b""
        self._open = False
        return b"\n"


def _console_prefix(record: ExtRecord) -> bytes:
    seconds, micros = divmod(record.ts_us, 1_000_000)
    prefix = b"[%5d.%06d]" % (seconds, micros)
    if record.caller:
        prefix += b"[%6s]" % record.caller.encode("ascii", "replace")
    return prefix + b" "


Output = bytes | Lost


class SourceDecoder:
    """One host's datagrams -> console bytes and `Lost` markers, in order. No I/O."""

    def __init__(self, reorder: float = DEFAULT_REORDER_SECONDS) -> None:
        self._fragments = _Fragments()
        self._sequencer = _Sequencer(reorder)
        self._renderer = _LineRenderer()

    def feed(self, datagram: bytes, now: float) -> list[Output]:
        record = parse_extended(datagram)
        if record is None:
            return _merge([self._renderer.end_line(), datagram])
        if record.frag is not None:
            record = self._fragments.add(record)
            if record is None:
                return []
        return self._render(self._sequencer.offer(record, now))

    def due(self) -> float | None:
        return self._sequencer.due()

    def expire(self, now: float) -> list[Output]:
        return self._render(self._sequencer.expire(now))

    def flush(self) -> list[Output]:
        """Everything still held, for the end of the stream; closes an open line."""
        return _merge([*self._render(self._sequencer.flush()), self._renderer.end_line()])

    def _render(self, items: list[ExtRecord | Lost]) -> list[Output]:
        out: list[Output] = []
        for item in items:
            if isinstance(item, Lost):
                out += [self._renderer.end_line(), item]
            else:
                out.append(self._renderer.render(item))
        return _merge(out)


def _merge(items: list[Output]) -> list[Output]:
    """Join adjacent byte strings and drop empty ones."""
    out: list[Output] = []
    for item in items:
        if isinstance(item, bytes):
            if not item:
                continue
            if out and isinstance(out[-1], bytes):
                out[-1] += item
                continue
        out.append(item)
    return out


# -- one console per source -------------------------------------------------------------------


class NetconsoleConsole(Connector):
    """The console of one netconsole sender: receive-only, fed by a `NetconsoleReceiver`."""

    reconnects = False

    def __init__(self, url: str, name: str, source: tuple[str, int], reorder: float) -> None:
        super().__init__(url, name)
        self.source = source
        self.messages_lost = 0
        self._decoder = SourceDecoder(reorder)
        self._inbox: deque[bytes | Gap | None] = deque()  # None: the listener closed
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        # The receiver opens a console before handing it out; a second open() is a no-op.
        if self._pump_task is None:
            await super().open()

    # -- fed by the receiver (synchronously, from the datagram callback) --------------------
    def feed(self, datagram: bytes) -> None:
        self._push(self._decoder.feed(datagram, time.monotonic()))
        self._arm_timer()

    def end(self) -> None:
        """The listener closed: release what is held, then end the stream."""
        self._cancel_timer()
        self._push(self._decoder.flush())
        self._inbox.append(None)  # the end marker
        self._wake.set()

    async def finished(self) -> None:
        """Wait until everything fed so far has been handed to the event stream."""
        if self._pump_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task

    def _push(self, outputs: list[Output]) -> None:
        now = time.time()
        for item in outputs:
            if isinstance(item, Lost):
                self.messages_lost += item.count
                self._inbox.append(Gap(now, now, item.describe()))
            else:
                self._inbox.append(item)
        if outputs:
            self._wake.set()

    def _arm_timer(self) -> None:
        due = self._decoder.due()
        if due is None or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, due - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._push(self._decoder.expire(time.monotonic()))
        self._arm_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the Connector side -----------------------------------------------------------------
    async def _connect(self) -> None:
        pass  # the receiver owns the socket; this console exists because its host was heard

    async def _read(self) -> bytes:
        while True:
            data = self._take_bytes()
            if data:
                return data
            if not self._inbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._inbox.popleft()
            if item is None:
                raise ConnectorError("netconsole listener closed")
            if isinstance(item, Gap):
                # A loss inside a live stream: the base class only makes gaps on reconnects, so
                # it goes straight into the event queue, after the bytes that preceded it.
                await self._queue.put(item)

    def _take_bytes(self) -> bytes:
        data = bytearray()
        while self._inbox:
            item = self._inbox[0]
            if not isinstance(item, bytes):
                break
            data += item
            self._inbox.popleft()
        return bytes(data)

    async def _write(self, data: bytes) -> None:
        raise Unsupported(f"{self.url}: netconsole is receive-only (UDP from the kernel)")

    async def _send_break(self) -> None:
        raise Unsupported(
            f"{self.url}: netconsole is receive-only and cannot send a BREAK; "
            "use the host's serial or IPMI console"
        )

    async def _disconnect(self) -> None:
        self._cancel_timer()


# -- the listener ---------------------------------------------------------------------------


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors concern sending; a receive-only socket has nothing to do about them


class NetconsoleReceiver:
    """A UDP listener that hands out one `NetconsoleConsole` per sender (see module doc)."""

    multi_console = True
    reconnects = False

    def __init__(self, url: ConsoleURL, reorder: float = DEFAULT_REORDER_SECONDS) -> None:
        assert url.host is not None and url.port is not None
        self.url = url.display
        self.name = f"netconsole-{url.port}"
        self.host = url.host
        self.port = url.port
        self.reorder = reorder
        self._transport: asyncio.DatagramTransport | None = None
        self._consoles: dict[tuple[str, int], NetconsoleConsole] = {}
        self._announced: asyncio.Queue[NetconsoleConsole | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound (host, port); useful when the URL asked for port 0."""
        if self._transport is None:
            return (self.host, self.port)
        sockname = self._transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    async def open(self) -> None:
        """Bind the listening socket; ConnectorError (one line) if it cannot be bound."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self._datagram), local_addr=(self.host, self.port)
            )
        except OSError as exc:
            raise ConnectorError(f"{self.url}: cannot listen: {exc.strerror or exc}") from exc
        self._transport = transport
        if self.port == 0:  # the system picked the port: show the real one
            self.port = self.local_address[1]
            self.url = f"netconsole://{_format_address(self.host, self.port)}"
            self.name = f"netconsole-{self.port}"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)

    async def consoles(self) -> AsyncIterator[NetconsoleConsole]:
        """Each sender's console, already open, the first time it is heard; ends on close()."""
        while True:
            console = await self._announced.get()
            if console is None:
                return
            yield console

    @property
    def known_consoles(self) -> list[NetconsoleConsole]:
        return list(self._consoles.values())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for console in self._consoles.values():
            if not console.closed:
                console.end()
                await console.finished()
            await console.close()
        self._announced.put_nowait(None)

    def _datagram(self, data: bytes, source: tuple[str, int]) -> None:
        if self._closed:
            return
        console = self._consoles.get(source)
        if console is None:
            console = self._new_console(source)
        if not console.closed:
            console.feed(data)

    def _new_console(self, source: tuple[str, int]) -> NetconsoleConsole:
        host, port = source
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}-{port}").strip("._")
        url = f"{self.url} from {_format_address(host, port)}"
        console = NetconsoleConsole(url, name, source, self.reorder)
        self._consoles[source] = console
        task = asyncio.get_running_loop().create_task(self._announce(console))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return console

    async def _announce(self, console: NetconsoleConsole) -> None:
        await console.open()
        self._announced.put_nowait(console)


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_netconsole(url: ConsoleURL, **options: Any) -> NetconsoleReceiver:
    """The receiver for `netconsole://HOST:PORT[?reorder=SECONDS]` (not yet opened).

    URL query options are checked (an operator's typo should not pass silently); keyword
    options from the program override them, and ones meant for other transports are ignored.
    """
    unknown = set(url.options) - {"reorder"}
    if unknown:
        raise ConnectorError(f"{url.display}: unknown option(s): {', '.join(sorted(unknown))}")
    raw = options.get("reorder", url.options.get("reorder", DEFAULT_REORDER_SECONDS))
    try:
        reorder = float(raw)
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"{url.display}: reorder must be seconds, not {raw!r}") from exc
    if not reorder >= 0:
        raise ConnectorError(f"{url.display}: reorder must be >= 0 seconds")
    return NetconsoleReceiver(url, reorder=reorder)
