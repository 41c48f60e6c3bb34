"""A sender that outruns the consumer is held back, not buffered without bound, and nothing is
lost: a replay at full speed and a TCP peer flooding a socket:// console."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from eventtap import run

from connectors import Chunk, open_connector

BOUND = 64 * 1024
BIG = 4 << 20


def _queued(conn) -> int:  # type: ignore[no-untyped-def]
    """Bytes sitting in the connector's queue, not yet taken (measured from the outside)."""
    return sum(len(e.data) for e in list(conn._queue._queue) if isinstance(e, Chunk))


async def _drain_slowly(conn) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    received = bytearray()
    most = 0
    async for event in conn:
        if isinstance(event, Chunk):
            received += event.data
            if len(received) < BIG // 2:
                await asyncio.sleep(0.005)  # a slow consumer for the first half
            most = max(most, _queued(conn))
    return bytes(received), most


def test_replay_at_full_speed_waits_for_a_slow_consumer(tmp_path: Path, qemu_corpus: Path) -> None:
    sample = (qemu_corpus / "oops_null_panic.log").read_bytes()
    data = (sample * (BIG // len(sample) + 1))[:BIG]
    log = tmp_path / "big.log"
    log.write_bytes(data)

    async def scenario() -> tuple[bytes, int]:
        conn = open_connector(str(log), speed=0)
        conn.max_buffered = BOUND
        await conn.open()
        return await _drain_slowly(conn)

    received, most = run(scenario(), timeout=120)
    assert received == data
    # Held to the bound plus the read in flight, where unbounded it ran megabytes ahead.
    assert most <= BOUND + 256 * 1024, most


def test_tcp_flood_is_held_back_by_the_socket_not_by_memory(tmp_path: Path) -> None:
    data = bytes(range(256)) * (BIG // 256)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send() -> None:
        peer, _ = server.accept()
        with peer:
            peer.sendall(data)
        server.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    async def scenario() -> tuple[bytes, int]:
        conn = open_connector(f"socket://127.0.0.1:{port}")
        conn.max_buffered = BOUND
        conn.reconnects = False
        await conn.open()
        return await _drain_slowly(conn)

    received, most = run(scenario(), timeout=120)
    sender.join(10)
    assert received == data
    assert most <= BOUND + 256 * 1024, most
