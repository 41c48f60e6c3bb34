"""netconsole receiver: real UDP datagrams on 127.0.0.1 in the kernel's plain and extended formats.

The messages come from a real serial capture (a Debian 6.1 kernel's NULL-pointer oops under
QEMU): each `[    3.366884] text` line of it is one printk record, sent the way netconsole sends
it (Documentation/networking/netconsole.rst): as the console text (plain), or as
`<level>,<seq>,<timestamp_us>,<cont>;<escaped text>` plus dictionary lines (extended), split into
`ncfrag=<offset>/<total>` fragments when asked.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from labtools import free_udp_port

from connectors import Chunk, ConnectorError, ConnectorEvent, Gap, StateChange, open_connector
from connectors.base import Unsupported
from connectors.netconsole import (
    Lost,
    NetconsoleConsole,
    NetconsoleReceiver,
    SourceDecoder,
    parse_extended,
)
from crashcart.kernel import analyze_bytes

_KERNEL_LINE = re.compile(rb"^\[\s*(\d+)\.(\d{6})\] (.*)$")
_RNG = random.Random(6666)  # seeded: shuffles are the same on every run


@dataclass(frozen=True)
class Message:
    ts_us: int
    text: bytes
    line: bytes  # the console line as captured, without its line ending


def kernel_messages(log: bytes) -> list[Message]:
    """The printk records in a console capture (userspace output is not kernel text)."""
    out = []
    for raw in log.split(b"\n"):
        line = raw.rstrip(b"\r")
        match = _KERNEL_LINE.match(line)
        if match:
            ts_us = int(match[1]) * 1_000_000 + int(match[2])
            out.append(Message(ts_us, match[3], line))
    return out


def kernel_escape(text: bytes) -> bytes:
    """Escape like the kernel's extended console: control bytes, >= 0x7f and '\\' as \\xNN."""
    return b"".join(
        b"\\x%02x" % c if c < 0x20 or c >= 0x7F or c == 0x5C else bytes([c]) for c in text
    )


def ext_body(msg: Message, dictionary: Iterable[bytes] = ()) -> bytes:
    return kernel_escape(msg.text) + b"\n" + b"".join(b" " + d + b"\n" for d in dictionary)


def ext_datagram(seq: int, msg: Message, dictionary: Iterable[bytes] = (), level: int = 4) -> bytes:
    return b"%d,%d,%d,-;" % (level, seq, msg.ts_us) + ext_body(msg, dictionary)


def ext_fragments(
    seq: int, msg: Message, size: int, dictionary: Iterable[bytes] = ()
) -> list[bytes]:
    body = ext_body(msg, dictionary)
    return [
        b"%d,%d,%d,-,ncfrag=%d/%d;" % (4, seq, msg.ts_us, off, len(body)) + body[off : off + size]
        for off in range(0, len(body), size)
    ]


def console_text(messages: Iterable[Message]) -> bytes:
    return b"".join(m.line + b"\n" for m in messages)


@pytest.fixture(scope="module")
def oops_messages(qemu_corpus: Path) -> list[Message]:
    messages = kernel_messages((qemu_corpus / "oops_null_panic.log").read_bytes())
    assert len(messages) > 300  # a whole boot, then the oops and the panic
    return messages


# -- plumbing: a receiver, senders, a console's events -------------------------------------------


@contextmanager
def sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # its own source port: one console per sender
    try:
        yield sock
    finally:
        sock.close()


async def send_all(sock: socket.socket, port: int, datagrams: Iterable[bytes]) -> None:
    for i, datagram in enumerate(datagrams):
        sock.sendto(datagram, ("127.0.0.1", port))
        if i % 16 == 15:
            await asyncio.sleep(0.001)  # let the receiver drain: loopback drops a long burst


async def open_receiver(query: str = "") -> NetconsoleReceiver:
    receiver = open_connector(f"netconsole://127.0.0.1:{free_udp_port()}{query}")
    assert isinstance(receiver, NetconsoleReceiver)
    assert receiver.multi_console is True
    await receiver.open()
    return receiver


class Events:
    """Collects a console's events in the background."""

    def __init__(self, console: NetconsoleConsole) -> None:
        self.console = console
        self.events: list[ConnectorEvent] = []
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.console:
            self.events.append(event)

    @property
    def data(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, Chunk))

    @property
    def gaps(self) -> list[Gap]:
        return [e for e in self.events if isinstance(e, Gap)]

    async def wait_for(self, predicate: Callable[[Events], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {self.data[-300:]!r}, {self.gaps}")
            await asyncio.sleep(0.01)


def has_at_least(n: int) -> Callable[[Events], bool]:
    return lambda events: len(events.data) >= n


async def next_console(receiver: NetconsoleReceiver, timeout: float = 5.0) -> NetconsoleConsole:
    consoles = receiver.consoles()
    return await asyncio.wait_for(anext(consoles), timeout)


def run(coro: Awaitable[None]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, 20)

    asyncio.run(bounded())


def assert_null_deref(text: bytes) -> None:
    crashes = analyze_bytes(text)
    assert crashes, "the reconstructed console text must still hold the crash"
    assert crashes[0].kind == "null_deref"
    assert crashes[0].function == "crashme_null_deref"


# -- the tests --------------------------------------------------------------------------------


def test_plain_datagrams_pass_through_byte_for_byte(oops_messages: list[Message]) -> None:
    # Plain netconsole sends the console text itself, printk timestamps included.
    datagrams = [m.line + b"\n" for m in oops_messages]

    async def scenario() -> None:
        receiver = await open_receiver()
        with sender() as sock:
            await send_all(sock, receiver.port, datagrams)
            console = await next_console(receiver)
            events = Events(console)
            expected = b"".join(datagrams)
            await events.wait_for(has_at_least(len(expected)))
            assert console.name == f"127.0.0.1-{sock.getsockname()[1]}"
            first = events.events[0]
            assert isinstance(first, StateChange)
            assert (first.state, first.detail) == ("connected", console.url)
            assert events.data == expected
            assert not events.gaps
            assert_null_deref(events.data)
        await receiver.close()
        await events.task
        last = events.events[-1]
        assert isinstance(last, StateChange) and last.state == "disconnected"
        assert last.detail == "netconsole listener closed"

    run(scenario())


def test_extended_records_become_console_lines(oops_messages: list[Message]) -> None:
    # Dictionary lines (device info) ride along on some records; a console never shows them.
    datagrams = [
        ext_datagram(
            500 + i, m, dictionary=[b"SUBSYSTEM=pci", b"DEVICE=+pci:0000:00:03.0"] * (i % 7 == 0)
        )
        for i, m in enumerate(oops_messages)
    ]

    async def scenario() -> None:
        receiver = await open_receiver()
        with sender() as sock:
            await send_all(sock, receiver.port, datagrams)
            events = Events(await next_console(receiver))
            expected = console_text(oops_messages)
            await events.wait_for(has_at_least(len(expected)))
        assert events.data == expected  # "[    3.366884] text\n", exactly as the serial port had it
        assert not events.gaps
        assert_null_deref(events.data)
        await receiver.close()

    run(scenario())


def test_fragments_are_reassembled_in_any_order(oops_messages: list[Message]) -> None:
    cpu_line = next(m for m in oops_messages if m.text.startswith(b"CPU: 1 PID: 110"))
    rip_line = next(m for m in oops_messages if m.text.startswith(b"RIP: 0010:crashme_null_deref"))
    before, after = oops_messages[0], oops_messages[1]
    in_order = ext_fragments(11, cpu_line, size=16, dictionary=[b"SUBSYSTEM=cpu"])
    reversed_ = ext_fragments(12, rip_line, size=10)[::-1]
    shuffled = ext_fragments(13, after, size=7)
    _RNG.shuffle(shuffled)
    assert len(in_order) > 4 and len(reversed_) > 4 and len(shuffled) > 4
    datagrams = [ext_datagram(10, before), *in_order, *reversed_, *shuffled]

    async def scenario() -> None:
        receiver = await open_receiver()
        with sender() as sock:
            await send_all(sock, receiver.port, datagrams)
            events = Events(await next_console(receiver))
            expected = console_text([before, cpu_line, rip_line, after])
            await events.wait_for(has_at_least(len(expected)))
        assert events.data == expected
        assert not events.gaps
        await receiver.close()

    run(scenario())


def test_lost_records_are_reported_as_gaps_where_they_happened(
    oops_messages: list[Message],
) -> None:
    sent = [(seq, m) for seq, m in enumerate(oops_messages[:20], start=1) if seq not in (7, 12, 13)]

    async def scenario() -> None:
        receiver = await open_receiver("?reorder=0.05")
        assert receiver.reorder == 0.05
        with sender() as sock:
            await send_all(sock, receiver.port, [ext_datagram(seq, m) for seq, m in sent])
            console = await next_console(receiver)
            events = Events(console)
            await events.wait_for(
                lambda e: len(e.gaps) == 2 and e.data.endswith(sent[-1][1].line + b"\n")
            )
        assert [g.reason for g in events.gaps] == [
            "netconsole: 1 message lost (seq 7)",
            "netconsole: 2 messages lost (seq 12..13)",
        ]
        assert console.messages_lost == 3
        # Each gap sits in the stream right after the last line received before it.
        text_before_first_gap = b"".join(
            e.data
            for e in events.events[: events.events.index(events.gaps[0])]
            if isinstance(e, Chunk)
        )
        assert text_before_first_gap == console_text(m for seq, m in sent if seq < 7)
        assert events.data == console_text(m for _, m in sent)
        await receiver.close()

    run(scenario())


def test_reordered_and_duplicated_datagrams_come_out_once_in_order(
    oops_messages: list[Message],
) -> None:
    messages = oops_messages[100:108]
    order = [1, 2, 4, 3, 5, 5, 2, 7, 6, 8, 8]  # swaps and repeats, nothing lost

    async def scenario() -> None:
        receiver = await open_receiver()
        with sender() as sock:
            await send_all(sock, receiver.port, [ext_datagram(s, messages[s - 1]) for s in order])
            events = Events(await next_console(receiver))
            expected = console_text(messages)
            await events.wait_for(has_at_least(len(expected)))
            await asyncio.sleep(0.3)  # past the reorder window: nothing more may come
        assert events.data == expected
        assert not events.gaps
        await receiver.close()

    run(scenario())


def test_each_sender_is_its_own_console(oops_messages: list[Message]) -> None:
    web01 = oops_messages[0::2][:60]
    web02 = oops_messages[1::2][:60]

    async def scenario() -> None:
        receiver = await open_receiver()
        with sender() as a, sender() as b:
            # Interleaved, as two hosts logging at once would be; each has its own numbering.
            for i in range(60):
                a.sendto(ext_datagram(1000 + i, web01[i]), ("127.0.0.1", receiver.port))
                b.sendto(web02[i].line + b"\n", ("127.0.0.1", receiver.port))  # this one is plain
                await asyncio.sleep(0)
            consoles = receiver.consoles()
            first = await asyncio.wait_for(anext(consoles), 5)
            second = await asyncio.wait_for(anext(consoles), 5)
            by_name = {c.name: Events(c) for c in (first, second)}
            a_name = f"127.0.0.1-{a.getsockname()[1]}"
            b_name = f"127.0.0.1-{b.getsockname()[1]}"
            assert set(by_name) == {a_name, b_name}
            for name, messages in ((a_name, web01), (b_name, web02)):
                expected = console_text(messages)
                await by_name[name].wait_for(has_at_least(len(expected)))
                assert by_name[name].data == expected
        assert [c.name for c in receiver.known_consoles] == [a_name, b_name]
        await receiver.close()

    run(scenario())


def test_receiver_binds_where_told_and_consoles_are_receive_only(
    oops_messages: list[Message],
) -> None:
    async def scenario() -> None:
        receiver = await open_receiver()
        assert receiver.local_address == ("127.0.0.1", receiver.port)
        busy = open_connector(f"netconsole://127.0.0.1:{receiver.port}")
        with pytest.raises(ConnectorError) as err:
            await busy.open()
        assert "cannot listen" in str(err.value) and "\n" not in str(err.value)
        with sender() as sock:
            sock.sendto(oops_messages[0].line + b"\n", ("127.0.0.1", receiver.port))
            console = await next_console(receiver)
            await console.open()  # already open: harmless
            with pytest.raises(Unsupported):
                await console.write(b"root\r")
            with pytest.raises(Unsupported):
                await console.send_break()
            await console.close()  # a console closed by its user ignores its host from now on
            sock.sendto(oops_messages[1].line + b"\n", ("127.0.0.1", receiver.port))
            await asyncio.sleep(0.05)
        assert len(receiver.known_consoles) == 1
        await receiver.close()
        assert [c async for c in receiver.consoles()] == []

    run(scenario())


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ConnectorError, match="unknown option"):
        open_connector("netconsole://127.0.0.1:6666?reoder=1")
    with pytest.raises(ConnectorError, match="reorder must be"):
        open_connector("netconsole://127.0.0.1:6666?reorder=soon")


# -- the decoder alone (no sockets): corner cases of the format ---------------------------------


def feed(decoder: SourceDecoder, *datagrams: bytes, now: float = 0.0) -> list[bytes | Lost]:
    out: list[bytes | Lost] = []
    for datagram in datagrams:
        out += decoder.feed(datagram, now)
    return out


def test_header_variants_caller_id_release_and_escapes() -> None:
    record = parse_extended(b"6.13.0-rc1,4,7,3366884,-,caller=T110;a\\x5cb\\x09c\\xc3\\xa9\n K=v\n")
    assert record is not None
    assert (record.release, record.level, record.seq, record.caller) == ("6.13.0-rc1", 4, 7, "T110")
    assert record.text == "a\\b\tcé".encode()
    assert record.dictionary == {"K": "v"}
    assert parse_extended(b"[    3.366884] BUG: kernel NULL pointer dereference\n") is None
    out = feed(SourceDecoder(), b"4,7,3366884,-,caller=T110;BUG: x\\x0aline two")
    assert out == [b"[    3.366884][  T110] BUG: x\n[    3.366884][  T110] line two\n"]


def test_old_kernel_continuation_records_join_into_one_line() -> None:
    decoder = SourceDecoder()
    out = feed(
        decoder,
        b"6,1,1000000,c;Call Trace:",
        b"6,2,1000001,+; <TASK>",
        b"6,3,1000002,-;next",
    )
    assert b"".join(o for o in out if isinstance(o, bytes)) == (
        b"[    1.000000] Call Trace: <TASK>\n[    1.000002] next\n"
    )


def test_late_record_after_a_declared_loss_is_delivered_and_reboot_starts_over() -> None:
    decoder = SourceDecoder(reorder=0.1)
    assert feed(decoder, b"4,1,1,-;one", b"4,3,3,-;three") == [b"[    0.000001] one\n"]
    assert decoder.due() == pytest.approx(0.1)
    assert decoder.expire(0.2) == [Lost(2, 2), b"[    0.000003] three\n"]
    assert feed(decoder, b"4,2,2,-;two (late)", now=0.3) == [b"[    0.000002] two (late)\n"]
    assert feed(decoder, b"4,2,2,-;two (late)", b"4,3,3,-;three", now=0.3) == []  # duplicates
    # The sender rebooted: numbering starts over, and that is not a loss.
    assert feed(decoder, b"4,0,5,-;Linux version", now=0.4) == [b"[    0.000005] Linux version\n"]
