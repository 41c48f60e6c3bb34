"""One console, headless: connector -> recorder -> parser -> incident folders.

The same Session serves `crashcart watch` and (later) the TUI. It never blocks on the screen
emulator: every chunk is recorded first (nothing that arrived may be lost), then handed to the
crash parser; the emulated screen is rendered only when an incident is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from connectors import Chunk, Connector, Gap, StateChange
from crashcart.incident import write_incident
from crashcart.kernel import CrashCompleted, CrashParser, CrashReport
from crashcart.kernel.parser import ParserEvent
from crashcart.recorder import DEFAULT_MAX_BYTES, Recorder, make_private_dir
from crashcart.terminal import ScreenSource, ScreenTail

# After this much silence, an open crash that has said its last word is completed: a box that
# hangs right after its oops must still get its incident folder.
IDLE_COMPLETE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class CrashDetected:
    console: str
    report: CrashReport
    incident: Path
    at: float


@dataclass(frozen=True, slots=True)
class ConsoleState:
    console: str
    state: str
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class ConsoleOutput:
    """Bytes as they arrived (only with `stream=True`: a live view draws them)."""

    console: str
    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class CrashProgress:
    """A crash began, grew by a line or completed (only with `stream=True`: a live view)."""

    console: str
    event: ParserEvent


SessionEvent = CrashDetected | ConsoleState | ConsoleOutput | CrashProgress
EventHandler = Callable[[SessionEvent], Awaitable[None] | None]
# What an incident shows as the screen: a live view passes its own picture of the console.
ScreenSnapshot = Callable[[str], ScreenSource]


class Session:
    """Records one console and writes an incident folder for each crash it shows."""

    def __init__(
        self,
        connector: Connector,
        record_dir: Path,
        *,
        on_event: EventHandler | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        columns: int = 80,
        rows: int = 25,
        stream: bool = False,
        snapshot: ScreenSnapshot | None = None,
    ) -> None:
        self.connector = connector
        self.name = connector.name
        self.record_dir = make_private_dir(record_dir)
        self.recorder = Recorder(
            self.record_dir / self.name,
            self.name,
            width=columns,
            height=rows,
            max_bytes=max_bytes,
            title=connector.url,
        )
        self.screen = ScreenTail(columns, rows)
        self.parser = CrashParser()
        self.incidents: list[Path] = []
        self._on_event = on_event
        self._stream = stream
        self._snapshot = snapshot
        self._last_data = time.monotonic()

    async def run(self) -> None:
        """Consume the connector until it ends or the task is cancelled; always closes cleanly."""
        idle = asyncio.create_task(self._idle_watch(), name=f"idle {self.name}")
        try:
            async for event in self.connector:
                if isinstance(event, Chunk):
                    await self._on_chunk(event)
                elif isinstance(event, Gap):
                    self.recorder.mark(
                        f"gap: {event.reason}",
                        event.ended,
                        started=event.started,
                        ended=event.ended,
                        reason=event.reason,
                    )
                    await self._emit(ConsoleState(self.name, "gap", event.reason, event.ended))
                elif isinstance(event, StateChange):
                    self.recorder.mark(
                        f"{event.state}: {event.detail}", event.at, state=event.state
                    )
                    await self._emit(ConsoleState(self.name, event.state, event.detail, event.at))
        finally:
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle
            await self._shutdown()

    async def _on_chunk(self, chunk: Chunk) -> None:
        self.recorder.write(chunk.data, chunk.at)
        self.screen.feed(chunk.data)
        self._last_data = time.monotonic()
        events = self.parser.feed(chunk.data)
        if self._stream:
            await self._emit(ConsoleOutput(self.name, chunk.data, chunk.at))
        await self._parser_events(events, chunk.at)

    async def _parser_events(self, events: list[ParserEvent], at: float | None) -> None:
        for event in events:
            if self._stream:
                await self._emit(CrashProgress(self.name, event))
            if isinstance(event, CrashCompleted):
                await self._incident(event.report, time.time() if at is None else at)

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(IDLE_COMPLETE_SECONDS / 2)
            if self.parser.in_crash and time.monotonic() - self._last_data >= IDLE_COMPLETE_SECONDS:
                await self._parser_events(self.parser.flush_idle(), None)

    async def _incident(self, report: CrashReport, at: float) -> None:
        self.recorder.mark(f"crash: {report.title}", at, kind=report.kind)
        screen: ScreenSource
        if self._snapshot is not None:
            screen = self._snapshot(f"{self.name}: {report.title}")
        else:
            # The screen as it is now, copied here: chunks may keep arriving while the thread
            # works.
            tail = ScreenTail(self.screen.columns, self.screen.rows)
            tail.feed(self.screen.tail())
            screen = tail
        # In a thread: copying the recording so far must not stall the other consoles.
        folder = await asyncio.to_thread(
            write_incident,
            self.record_dir / "incidents",
            self.name,
            report,
            recorder=self.recorder,
            screen=screen,
            at=at,
            source=self.connector.url,
        )
        self.incidents.append(folder)
        await self._emit(CrashDetected(self.name, report, folder, at))

    async def _emit(self, event: SessionEvent) -> None:
        if self._on_event is None:
            return
        result = self._on_event(event)
        if result is not None:
            await result

    async def _shutdown(self) -> None:
        """Close the line, then report a crash the stream ended inside of, then flush."""
        with contextlib.suppress(Exception):
            await self.connector.close()
        await self._parser_events(self.parser.close(), None)
        self.recorder.mark("closed: recording ended", state="closed")
        self.recorder.close()
