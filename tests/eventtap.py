"""Test helpers for connectors: collect a connector's events, wait for conditions, run peers.

`EventTap` drains `async for event in conn` in a background task, so a test can wait for "the
bytes so far hash to X" or "a Gap came" with a deadline, without cancelling the connector's
event iterator (a timed-out `anext()` would close the async generator for good).
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from connectors.base import Chunk, Connector, ConnectorEvent, Gap, StateChange

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run one test coroutine with a hard deadline (pytest-timeout is the backstop)."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


class EventTap:
    def __init__(self, conn: Connector) -> None:
        self.conn = conn
        self.events: list[ConnectorEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        async for event in self.conn:
            self.events.append(event)
            self._changed.set()
        self._changed.set()

    def data(self, since: int = 0) -> bytes:
        return b"".join(e.data for e in self.events[since:] if isinstance(e, Chunk))

    def states(self) -> list[str]:
        return [e.state for e in self.events if isinstance(e, StateChange)]

    def kinds(self) -> list[str]:
        """The event sequence without the chunks: "connected", "disconnected", "gap", ..."""
        return [
            e.state if isinstance(e, StateChange) else "gap"
            for e in self.events
            if isinstance(e, StateChange | Gap)
        ]

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    if self._task.done():
                        raise AssertionError(f"event stream ended while waiting for {what}")
                    # No await between the check and clear(): nothing can slip in between.
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; events: {self.kinds()}, "
                f"{len(self.data())} bytes"
            ) from None

    async def wait_bytes(self, n: int, timeout: float, since: int = 0) -> bytes:
        await self.wait(lambda: len(self.data(since)) >= n, timeout, f"{n} bytes")
        return self.data(since)

    async def wait_kind(self, kind: str, timeout: float) -> None:
        await self.wait(lambda: kind in self.kinds(), timeout, repr(kind))

    async def close(self) -> None:
        await self.conn.close()
        await asyncio.wait_for(self._task, 5)


def pace(fd: int, data: bytes, bytes_per_second: float, chunk: int = 64) -> float:
    """Write `data` at a serial line's rate (deadline-based, so sleeps do not add up)."""
    start = time.monotonic()
    for offset in range(0, len(data), chunk):
        due = start + offset / bytes_per_second
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        view = memoryview(data)[offset : offset + chunk]
        while view:
            view = view[os.write(fd, view) :]
    return time.monotonic() - start


def pace_in_thread(fd: int, data: bytes, bytes_per_second: float) -> threading.Thread:
    thread = threading.Thread(target=pace, args=(fd, data, bytes_per_second), daemon=True)
    thread.start()
    return thread


def open_raw(path: Path | str) -> int:
    """Open a tty (the far end of a pty pair) raw, blocking, not as controlling terminal."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def read_exactly(fd: int, n: int, timeout: float) -> bytes:
    """Read n bytes from a blocking fd, failing after `timeout` seconds."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(
                f"got {len(out)} of {n} bytes in {timeout} s: {bytes(out)[-80:]!r}"
            )
        out += os.read(fd, n - len(out))
    return bytes(out)


def tcp_listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, without connecting to it (a test
    connection would itself be a session to ser2net or socat)."""
    with open("/proc/net/tcp") as table:
        return any(f"0100007F:{port:04X} 00000000:0000 0A" in line for line in table)
