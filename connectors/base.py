"""The connector contract: how crashcart holds on to one console, whatever carries it.

A connector is an async object:

    conn = open_connector("rfc2217://127.0.0.1:7000")
    await conn.open()                 # first connection; ConnectorError if it cannot be made
    async for event in conn:          # Chunk (bytes + arrival time), StateChange, Gap
        ...
    await conn.write(b"root\\r")
    await conn.send_break()           # Unsupported where the transport cannot carry a BREAK
    await conn.close()

When the line drops (a USB adapter re-enumerates, a console server closes the TCP connection,
the BMC ends the SOL session) a reconnecting connector reports `StateChange("disconnected")`,
retries with back-off, and on success reports a `Gap` (when the console was not heard) and
`StateChange("connected")`. A failed attempt reports `StateChange("reconnecting", reason)` when
its reason differs from the last one reported in this outage: the operator learns why the
console stays dark ("in use by another session", "no answer from the BMC") without one event per
attempt. Bytes received before the drop were already delivered: nothing is lost that arrived.
Connectors import nothing else of crashcart's, so the dependency direction stays
`tui -> crashcart -> connectors`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass


class ConnectorError(Exception):
    """The console cannot be reached: a one-line reason fit for an operator."""


class Unsupported(ConnectorError):
    """The transport cannot do this (a BREAK over a raw TCP socket, say)."""


class Fatal(ConnectorError):
    """Retrying cannot help and may harm: a rejected password (BMCs lock an account after a
    few bad logins), an unknown user. The reconnect loop gives up at once on these."""


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes
    at: float  # time.time() when the bytes arrived


@dataclass(frozen=True, slots=True)
class StateChange:
    state: str  # "connected", "disconnected", "reconnecting" (an attempt failed), "closed"
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class Gap:
    """The console could not be heard from `started` to `ended` (seconds since the epoch)."""

    started: float
    ended: float
    reason: str


ConnectorEvent = Chunk | StateChange | Gap


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: first, doubling, up to a ceiling; `attempts` 0 means forever."""

    first: float = 0.2
    ceiling: float = 5.0
    attempts: int = 0

    def delays(self) -> AsyncIterator[float]:
        return _delays(self)


async def _delays(backoff: Backoff) -> AsyncIterator[float]:
    delay = backoff.first
    n = 0
    while backoff.attempts == 0 or n < backoff.attempts:
        yield delay
        n += 1
        delay = min(delay * 2, backoff.ceiling)


class Connector(abc.ABC):
    """Base of every transport. Subclasses implement the `_` methods; the loop lives here."""

    #: Whether a dropped connection is retried (files and one-shot commands are not).
    reconnects: bool = True
    #: After a small read, wait this long before the next one, so that a console trickling at
    #: line rate is delivered in a few larger chunks a second rather than fifty small ones:
    #: every chunk costs task switches, and a jump host watches dozens of consoles. 30 ms is
    #: below what an operator notices in an echo; a flood is read without pause.
    coalesce_seconds: float = 0.03
    coalesce_below: int = 4096
    #: How many received bytes may wait for the consumer before reading stops: a sender that
    #: outruns the session (a replay at full speed, a console server flushing hours of buffer)
    #: is held back by the transport's own flow control instead of filling memory.
    max_buffered: int = 4 << 20

    def __init__(self, url: str, name: str, backoff: Backoff | None = None) -> None:
        self.url = url  # as shown to people: never contains a password
        self.name = name  # a short console name, safe as a file name
        self.backoff = backoff or Backoff()
        self.connected = False
        self._closed = False
        self._queue: asyncio.Queue[ConnectorEvent | None] = asyncio.Queue()
        self._pump_task: asyncio.Task[None] | None = None
        self._buffered = 0  # bytes of Chunks queued and not yet taken by the consumer
        self._drained = asyncio.Event()

    # -- transport-specific -----------------------------------------------------------------
    @abc.abstractmethod
    async def _connect(self) -> None:
        """Make one connection; raise ConnectorError (or OSError) if it cannot be made."""

    @abc.abstractmethod
    async def _read(self) -> bytes:
        """Some bytes; b"" when the far side closed. May raise OSError when the line drops."""

    @abc.abstractmethod
    async def _write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Release the connection; must not raise."""

    async def _send_break(self) -> None:
        raise Unsupported(f"{self.url}: this transport cannot send a BREAK")

    def _failure_reason(self, exc: OSError | ConnectorError) -> str:
        """One line for an operator: ConnectorErrors are worded so already; an OSError gets
        the console's URL, so that a line among many consoles says which one."""
        if isinstance(exc, ConnectorError):
            return str(exc) or type(exc).__name__
        return f"{self.url}: {exc.strerror or exc}"

    # -- public API --------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect once; a failure here is the operator's to see (exit 2), not retried."""
        try:
            await self._connect()
        except ConnectorError:
            raise
        except OSError as exc:
            raise ConnectorError(self._failure_reason(exc)) from exc
        self.connected = True
        await self._queue.put(StateChange("connected", self.url, time.time()))
        self._pump_task = asyncio.create_task(self._pump(), name=f"connector {self.name}")

    async def write(self, data: bytes) -> None:
        if not self.connected:
            raise ConnectorError(f"{self.url}: not connected")
        await self._write(data)

    async def send_break(self) -> None:
        if not self.connected:
            raise ConnectorError(f"{self.url}: not connected")
        await self._send_break()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        if self.connected:
            self.connected = False
            await self._disconnect()
        await self._queue.put(StateChange("closed", self.url, time.time()))
        await self._queue.put(None)

    def __aiter__(self) -> AsyncIterator[ConnectorEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ConnectorEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            if isinstance(event, Chunk):
                self._buffered -= len(event.data)
                self._drained.set()
            yield event

    # -- the loop ----------------------------------------------------------------------------
    async def _pump(self) -> None:
        """Read until the line drops, then reconnect with back-off (if this transport can)."""
        while not self._closed:
            reason = "end of stream"
            try:
                while True:
                    data = await self._read()
                    if not data:
                        break
                    while self._buffered >= self.max_buffered:
                        self._drained.clear()
                        await self._drained.wait()
                    self._buffered += len(data)
                    await self._queue.put(Chunk(data, time.time()))
                    if self.coalesce_seconds and len(data) < self.coalesce_below:
                        await asyncio.sleep(self.coalesce_seconds)
            except (OSError, ConnectorError) as exc:
                reason = str(exc) or type(exc).__name__
            lost_at = time.time()
            self.connected = False
            await self._disconnect()
            await self._queue.put(StateChange("disconnected", reason, lost_at))
            if not self.reconnects or self._closed:
                await self._queue.put(None)
                return
            if not await self._reconnect(lost_at, reason):
                await self._queue.put(None)
                return

    async def _reconnect(self, lost_at: float, reason: str) -> bool:
        told: str | None = None  # the last failure reported in this outage
        async for delay in self.backoff.delays():
            await asyncio.sleep(delay)
            if self._closed:
                return False
            try:
                await self._connect()
            except Fatal as exc:
                await self._queue.put(StateChange("disconnected", str(exc), time.time()))
                return False
            except (OSError, ConnectorError) as exc:
                # Say why the console stays dark, but only when the reason changes: attempts
                # repeat every few seconds for as long as the outage lasts.
                why = self._failure_reason(exc)
                if why != told:
                    told = why
                    await self._queue.put(StateChange("reconnecting", why, time.time()))
                continue
            now = time.time()
            self.connected = True
            await self._queue.put(Gap(lost_at, now, reason))
            await self._queue.put(StateChange("connected", self.url, now))
            return True
        return False
