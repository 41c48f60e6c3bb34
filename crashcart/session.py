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
from crashcart.recorder import DEFAULT_MAX_BYTES, Recorder, RecordingExtent, make_private_dir
from crashcart.terminal import ScreenSource, ScreenTail

# After this much silence, an open crash that has said its last word is completed: a box that
# hangs right after its oops must still get its incident folder.
IDLE_COMPLETE_SECONDS = 2.0
# While the recording disk has failed, how often the same folder is tried again: freeing space
# is what an operator does first, and the recording then catches up by itself.
RESUME_RETRY_SECONDS = 5.0


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
    """Bytes as they arrived (only with `stream=True`: a live view draws them), and where the
    recording holds them (`log` at `offset`), for a scrollback that reads them back; `log` is
    None while the disk has failed and the bytes are held in memory."""

    console: str
    data: bytes
    at: float
    log: Path | None
    offset: int


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    """The recording disk failed: from now on the console is held in memory (bounded). With a
    `fallback`, the session is moving the recording there now (RecordingResumed follows, or
    another RecordingFailed without one)."""

    console: str
    reason: str
    path: Path
    at: float
    fallback: Path | None = None


@dataclass(frozen=True, slots=True)
class RecordingResumed:
    """The recording goes on in `log`, which starts with the `spooled` bytes memory held."""

    console: str
    log: Path
    spooled: int
    dropped: int
    at: float
    moved: bool = False  # to another folder (a fallback, or the operator's choice)


@dataclass(frozen=True, slots=True)
class IncidentUnsaved:
    """A crash whose folder could not be written; it is kept and written once a disk takes it."""

    console: str
    report: CrashReport
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class CrashProgress:
    """A crash began, grew by a line or completed (only with `stream=True`: a live view)."""

    console: str
    event: ParserEvent


SessionEvent = (
    CrashDetected
    | ConsoleState
    | ConsoleOutput
    | CrashProgress
    | RecordingFailed
    | RecordingResumed
    | IncidentUnsaved
)
EventHandler = Callable[[SessionEvent], Awaitable[None] | None]
# What an incident shows as the screen: a live view passes its own picture of the console.
ScreenSnapshot = Callable[[], ScreenSource]
IncidentJob = tuple[CrashReport, float, ScreenSource, RecordingExtent]


def _end_of_line(data: bytes, lines: int) -> int:
    """The offset just after the `lines`-th newline of `data` (0 for none, len for too few)."""
    end = 0
    for _ in range(lines):
        nl = data.find(b"\n", end)
        if nl < 0:
            return len(data)
        end = nl + 1
    return end


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
        fallback: Path | None = None,
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
        self.unsaved: list[IncidentJob] = []  # crashes whose folders no disk has taken yet
        self.fallback = fallback  # where to record on when the disk first fails (used once)
        self._ended = False
        self._failure_told = False
        self._told_unsaved: set[int] = set()
        self._last_resume_try = time.monotonic()
        self._on_event = on_event
        self._stream = stream
        self._snapshot = snapshot
        self._last_data = time.monotonic()
        self._pending: asyncio.Queue[IncidentJob | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

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
                await self._check_recording()
        finally:
            idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle
            await self._shutdown()

    async def _on_chunk(self, chunk: Chunk) -> None:
        data = chunk.data
        self.recorder.write(data, chunk.at)
        log = self.recorder.current_log
        where = (log, self.recorder.bytes_written - len(data) if log is not None else -1)
        self._last_data = time.monotonic()
        lines_before = self.parser.line_count
        shown = 0
        for event in self.parser.feed(data):
            if isinstance(event, CrashCompleted):
                # The screen of an incident is the screen as the crash's last line left it, not
                # as the rest of a large chunk (the next boot, say) would leave it.
                cut = _end_of_line(data, event.report.end_line - lines_before)
                if cut > shown:
                    await self._show(data[shown:cut], where, shown, chunk.at)
                    shown = cut
            await self._parser_event(event, chunk.at)
        if shown < len(data):
            await self._show(data[shown:], where, shown, chunk.at)

    async def _show(
        self, data: bytes, where: tuple[Path | None, int], at_offset: int, at: float
    ) -> None:
        """Bytes reach the screens (and a live view) in stream order, split at crash ends."""
        self.screen.feed(data)
        if self._stream:
            log, chunk_offset = where
            offset = chunk_offset + at_offset if log is not None else -1
            await self._emit(ConsoleOutput(self.name, data, at, log, offset))

    # -- a failing disk ---------------------------------------------------------------------------
    async def _check_recording(self) -> None:
        """Say once that the recording failed; now and then, try its folder again (and the
        crash folders that could not be written)."""
        failure = self.recorder.failure
        if failure is not None and not self._failure_told:
            self._failure_told = True
            self._last_resume_try = time.monotonic()
            # Once: should the fallback fill up too, it is retried like any recording folder.
            fallback, self.fallback = self.fallback, None
            await self._say_failed(failure, self.recorder.directory, fallback)
            if fallback is not None:
                try:
                    await self.save_elsewhere(fallback)
                except OSError as exc:
                    await self._say_failed(exc, fallback, None)
            return
        if failure is None and not self.unsaved:
            return
        if time.monotonic() - self._last_resume_try < RESUME_RETRY_SECONDS:
            return
        self._last_resume_try = time.monotonic()
        if failure is None:
            self._retry_unsaved()
            return
        with contextlib.suppress(OSError):  # still failing: memory keeps holding the console
            await self._resume(None)

    async def _say_failed(self, exc: OSError, where: Path, fallback: Path | None) -> None:
        path = Path(exc.filename) if exc.filename else where
        reason = exc.strerror or str(exc)
        await self._emit(RecordingFailed(self.name, reason, path, time.time(), fallback))

    @property
    def unwritten_bytes(self) -> int:
        """Console bytes that are not on any disk (held in memory, or dropped from it)."""
        spool = self.recorder.spool
        return spool.size + spool.dropped if self.recorder.failure is not None else 0

    async def save_elsewhere(self, root: Path) -> Path:
        """Record on under `root` (the console, and every crash not yet written); returns the
        folder the recording now goes to. OSError if that disk fails too."""
        root = make_private_dir(root)
        if self.recorder.failure is not None:
            await self._resume(root / self.name)
        self.record_dir = root
        self._retry_unsaved()
        if self._ended:  # the console is gone: write it all now, and close what was opened
            await self._finish_incidents()
            self.recorder.close()
        return self.recorder.directory

    async def _resume(self, directory: Path | None) -> None:
        spooled, dropped = self.recorder.spool.size, self.recorder.spool.dropped
        files = self.recorder.resume(directory)
        self._failure_told = False
        self._retry_unsaved()
        moved = directory is not None
        await self._emit(
            RecordingResumed(self.name, files.log, spooled, dropped, time.time(), moved)
        )

    def _retry_unsaved(self) -> None:
        jobs, self.unsaved = self.unsaved, []
        for job in jobs:
            self._queue_incident(job)

    async def _parser_event(self, event: ParserEvent, at: float | None) -> None:
        if self._stream:
            await self._emit(CrashProgress(self.name, event))
        if isinstance(event, CrashCompleted):
            self._incident(event.report, time.time() if at is None else at)

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(IDLE_COMPLETE_SECONDS / 2)
            await self._check_recording()  # a quiet console must still get its retries
            if self.parser.in_crash and time.monotonic() - self._last_data >= IDLE_COMPLETE_SECONDS:
                for event in self.parser.flush_idle():
                    await self._parser_event(event, None)

    def _incident(self, report: CrashReport, at: float) -> None:
        """Take the screen and the recording's extent now; write the folder in the background.

        The writing (copying the recording's tail, fsync, rendering) takes tens of
        milliseconds; a burst of crashes must not hold up the console while it happens.
        """
        self.recorder.mark(f"crash: {report.title}", at, kind=report.kind)
        screen: ScreenSource
        if self._snapshot is not None:
            screen = self._snapshot()
        else:
            # A copy of the tail: chunks keep arriving while the writer works.
            tail = ScreenTail(self.screen.columns, self.screen.rows)
            tail.feed(self.screen.tail())
            screen = tail
        self._queue_incident((report, at, screen, self.recorder.extent()))

    def _queue_incident(self, job: IncidentJob) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(
                self._write_incidents(), name=f"incidents {self.name}"
            )
        self._pending.put_nowait(job)

    async def _write_incidents(self) -> None:
        """One folder at a time, in crash order; each announced once it is complete."""
        while True:
            job = await self._pending.get()
            if job is None:
                return
            report, at, screen, recording = job
            try:
                folder = await asyncio.to_thread(
                    write_incident,
                    self.record_dir / "incidents",
                    self.name,
                    report,
                    recording=recording,
                    screen=screen,
                    at=at,
                    source=self.connector.url,
                )
            except OSError as exc:
                self.unsaved.append(job)
                if id(report) not in self._told_unsaved:  # said once, however often retried
                    self._told_unsaved.add(id(report))
                    reason = exc.strerror or str(exc)
                    await self._emit(IncidentUnsaved(self.name, report, reason, at))
                continue
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
        for event in self.parser.close():
            await self._parser_event(event, None)
        # A last try at what a failing disk refused: space may have been freed meanwhile.
        if self.recorder.failure is not None:
            with contextlib.suppress(OSError):
                await self._resume(None)
        self._retry_unsaved()
        await self._finish_incidents()  # every incident is complete before the session ends
        self.recorder.mark("closed: recording ended", state="closed")
        self.recorder.close()
        self._ended = True

    async def _finish_incidents(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._pending.put_nowait(None)
            await self._writer
