"""Recording a console losslessly: the raw bytes (`.log`) and their timing (`.cast`).

The `.log` is exactly the bytes the console sent, nothing added, so its sha256 can be compared
with the source. The `.cast` is an asciicast v2 file (the format asciinema plays) with each
chunk's arrival time; it also carries the markers a `.log` cannot: where the console went
unheard (`"m"` marker events, "gap: ..."). Connection changes and gaps are also appended to a
small `events.jsonl` beside them, for tools. Files are created 0600 in folders 0700: a console
shows passwords typed at login prompts.

Recordings rotate by size: `NAME-20261126T140501.log` becomes the next
`NAME-20261126T150312.log` once `max_bytes` is reached, at a chunk boundary.

When the disk fails (full, quota, I/O error), nothing already written is damaged and nothing
received is dropped: the chunk that failed is cut back out of both files (each holds whole
chunks and whole lines only), the recorder says so through `failure`, and from then on it
keeps the console in memory (a `Spool`, bounded: the oldest bytes go first, counted). The
caller decides where the recording continues: `resume()` in the same folder once space is
free, or another folder; the spool is written there first, with its original times.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

DEFAULT_MAX_BYTES = 256 << 20
# How often written data is forced to the disk at the latest; a crash forces it at once.
FSYNC_INTERVAL = 2.0
# How much console a recorder keeps in memory while it cannot write: at 115200 baud, hours.
SPOOL_LIMIT = 64 << 20


def make_private_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:  # a file stands where the folder goes: say that, not "File exists"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
    os.chmod(path, 0o700)
    return path


def _private_fd(path: Path, flags: int) -> int:
    """A file readable by its owner only (created 0600, whatever the umask), for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def open_private(path: Path, mode: str) -> IO[Any]:
    """Open a new file readable by its owner only (created 0600, whatever the umask)."""
    return os.fdopen(_private_fd(path, os.O_TRUNC), mode)


@dataclass(frozen=True, slots=True)
class RecordingFiles:
    log: Path
    cast: Path


@dataclass(frozen=True, slots=True)
class Spooled:
    """One event kept in memory while the disk failed: output bytes, or a marker."""

    at: float
    data: bytes = b""
    label: str | None = None  # a marker ("gap: ...", "crash: ...") when set
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordingExtent:
    """Where a recording stood at one moment: each `.log` with its length then, the `.cast`,
    and what was held in memory because the disk had failed.

    Taken on the event loop, then handed to a thread that copies exactly that much while the
    recorder keeps writing: nothing in a thread touches the recorder's open files.
    """

    logs: tuple[tuple[Path, int], ...]
    cast: Path | None
    cast_size: int
    cast_header: str  # the header line of the .cast, for a copy made without one on disk
    cast_started: float  # what the .cast's event times count from
    spooled: tuple[Spooled, ...] = ()


def cast_line(event: Spooled, text: str, started: float) -> str:
    """One asciicast v2 event line: output (`text`) or a marker."""
    offset = round(max(event.at - started, 0.0), 6)
    if event.label is not None:
        return json.dumps([offset, "m", event.label]) + "\n"
    return json.dumps([offset, "o", text]) + "\n"


class _Appender:
    """A file written with plain os.write: `size` counts only what was written whole, so a
    failed write can be cut back out (ftruncate needs no free space)."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self.fd = _private_fd(path, os.O_APPEND if append else os.O_TRUNC)
        self.size = os.fstat(self.fd).st_size

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)

    def cut_back(self, size: int) -> None:
        """Drop everything after `size` (a write that failed half-way)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, size)
        self.size = size

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class Spool:
    """The console while the disk cannot take it: bounded, the oldest output dropped first."""

    def __init__(self, limit: int = SPOOL_LIMIT) -> None:
        self.limit = limit
        self.events: deque[Spooled] = deque()
        self.size = 0  # output bytes held
        self.dropped = 0  # output bytes let go to stay within the limit

    def add(self, event: Spooled) -> None:
        self.events.append(event)
        self.size += len(event.data)
        while self.size > self.limit and self.events:
            old = self.events.popleft()
            self.size -= len(old.data)
            self.dropped += len(old.data)

    def clear(self) -> None:
        self.events.clear()
        self.size = self.dropped = 0


class Recorder:
    """Writes one console's bytes to `.log` + `.cast` in `directory`, rotating by size."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        width: int = 80,
        height: int = 25,
        max_bytes: int = DEFAULT_MAX_BYTES,
        title: str | None = None,
        spool_limit: int = SPOOL_LIMIT,
    ) -> None:
        self.directory = make_private_dir(directory)
        self.name = name
        self.width = width
        self.height = height
        self.max_bytes = max_bytes
        self.title = title or name
        self.files: list[RecordingFiles] = []
        self.bytes_written = 0  # in the current file
        self.total_bytes = 0  # received, whether on disk or still in memory
        self.failure: OSError | None = None  # why the recorder is holding the console in memory
        self.spool = Spool(spool_limit)
        self._log: _Appender | None = None
        self._cast: _Appender | None = None
        self._events: _Appender | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._started = 0.0
        self._last_at = 0.0  # when the last output was written (the .cast's last event)
        self._last_sync = time.monotonic()
        try:
            self._open_events()
            self._open_new(time.time())
        except OSError as exc:  # a full disk must not keep the operator off the console
            self._fail(exc)

    @property
    def current(self) -> RecordingFiles:
        return self.files[-1]

    @property
    def current_log(self) -> Path | None:
        """The `.log` the next bytes go to, None while they are held in memory."""
        return self.current.log if self._log is not None else None

    def _header(self, now: float) -> str:
        header = {
            "version": 2,
            "width": self.width,
            "height": self.height,
            "timestamp": int(now),
            "title": self.title,
        }
        return json.dumps(header) + "\n"

    def _open_events(self) -> None:
        # Appended to, never truncated: a restart in the same folder keeps the earlier story.
        self._events = _Appender(self.directory / f"{self.name}.events.jsonl", append=True)

    def _open_new(self, now: float) -> None:
        self.close_files()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        stem = f"{self.name}-{stamp}"
        n = 1
        while (self.directory / f"{stem}.log").exists():
            # "_02" sorts after the plain name ("-2" would sort before it: "-" < "."), so
            # `ls` lists a console's recordings in the order they were written.
            n += 1
            stem = f"{self.name}-{stamp}_{n:02d}"
        files = RecordingFiles(self.directory / f"{stem}.log", self.directory / f"{stem}.cast")
        try:
            self._log = _Appender(files.log)
            self._cast = _Appender(files.cast)
            # Whole or not at all: `started` is what the header says, a second at most earlier.
            self._cast.append(self._header(now).encode())
        except OSError:  # a pair that could not even get its header is not left behind
            self._close_pair()
            _remove(files)
            raise
        self._started = self._last_at = float(int(now))
        self.bytes_written = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.files.append(files)

    def _close_pair(self) -> None:
        """Close the .log and .cast as they stand (no fsync: a failure path)."""
        for appender in (self._log, self._cast):
            if appender is not None:
                appender.close()
        self._log = self._cast = None

    def _close_all(self) -> None:
        self._close_pair()
        if self._events is not None:
            self._events.close()
            self._events = None

    # -- writing --------------------------------------------------------------------------------
    def write(self, data: bytes, at: float | None = None) -> None:
        """Record a chunk that arrived at `at` (time.time()); to memory if the disk failed."""
        if not data:
            return
        now = time.time() if at is None else at
        self.total_bytes += len(data)
        if self.failure is None:
            try:
                self._write_output(data, now)
            except OSError as exc:
                self._fail(exc)
            else:
                try:
                    self._maybe_sync()
                except OSError as exc:  # written, but the disk will not keep more: stop here
                    self._fail(exc)
                return
        self.spool.add(Spooled(now, data))

    def _write_output(self, data: bytes, now: float) -> None:
        if self.bytes_written >= self.max_bytes:
            self._open_new(now)
        assert self._log is not None and self._cast is not None
        log_size, cast_size = self._log.size, self._cast.size
        decoder_state = self._decoder.getstate()
        try:
            self._log.append(data)
            text = self._decoder.decode(data)
            if text:
                self._cast.append(cast_line(Spooled(now), text, self._started).encode())
        except OSError:
            # Both files go back to the chunk before: each holds whole chunks only.
            self._log.cut_back(log_size)
            self._cast.cut_back(cast_size)
            self._decoder.setstate(decoder_state)
            raise
        self.bytes_written += len(data)
        self._last_at = now

    def mark(self, label: str, at: float | None = None, **fields: Any) -> None:
        """A marker in the `.cast` and a line in events.jsonl (gaps, reconnects, crashes)."""
        now = time.time() if at is None else at
        if self.failure is None:
            try:
                self._write_mark(label, now, fields)
                return
            except OSError as exc:
                self._fail(exc)
        self.spool.add(Spooled(now, label=label, fields=fields))

    def _write_mark(self, label: str, now: float, fields: dict[str, Any]) -> None:
        assert self._cast is not None and self._events is not None
        cast_size, events_size = self._cast.size, self._events.size
        record = {"time": now, "event": label, **fields}
        try:
            self._cast.append(cast_line(Spooled(now, label=label), "", self._started).encode())
            self._events.append((json.dumps(record, default=str) + "\n").encode())
        except OSError:
            self._cast.cut_back(cast_size)
            self._events.cut_back(events_size)
            raise

    def _fail(self, exc: OSError) -> None:
        """Stop writing to the disk; what is there stays whole (see the module docstring)."""
        self.failure = exc
        self._close_all()

    def resume(self, directory: Path | None = None) -> RecordingFiles:
        """Write what memory holds, then record on, to new files in `directory` (by default
        where the recording was). On OSError the recorder stays as it was: failed, spooling."""
        if self.failure is None:
            raise RuntimeError("the recording has not failed")
        before = (self.directory, len(self.files))
        spooled = list(self.spool.events)
        events_size = 0
        try:
            self.directory = make_private_dir(directory or self.directory)
            self._open_events()
            assert self._events is not None
            events_size = self._events.size
            self._open_new(spooled[0].at if spooled else time.time())
            if self.spool.dropped:
                self._write_mark(
                    f"gap: {self.spool.dropped} bytes lost: the disk failed and memory was full",
                    spooled[0].at if spooled else time.time(),
                    {"dropped": self.spool.dropped},
                )
            for event in spooled:
                if event.label is not None:
                    self._write_mark(event.label, event.at, event.fields)
                else:
                    self._write_output(event.data, event.at)
            self.flush(sync=True)
        except OSError:
            self._undo_resume(*before, events_size)
            raise
        self.failure = None
        self.spool.clear()
        return self.current

    def _undo_resume(self, directory: Path, file_count: int, events_size: int) -> None:
        new_files = self.files[file_count:]
        if self._events is not None:
            self._events.cut_back(events_size)
        self._close_all()
        for files in new_files:
            _remove(files)
        del self.files[file_count:]
        self.directory = directory

    # -- reading back ---------------------------------------------------------------------------
    def extent(self) -> RecordingExtent:
        """The recording so far, on disk and in memory, for a copy made elsewhere."""
        # Every write goes straight to the kernel, so a file's size on disk is what it holds.
        logs = tuple((files.log, _size(files.log)) for files in self.files)
        cast = self.files[-1].cast if self.files else None
        cast_size = _size(cast) if cast is not None else 0
        started = self._started if self.files else time.time()
        spooled = tuple(self.spool.events)
        return RecordingExtent(logs, cast, cast_size, self._header(started), started, spooled)

    def flush(self, sync: bool = False) -> None:
        """Everything is written through already; `sync` also waits for the disk."""
        if sync:
            for appender in (self._log, self._cast, self._events):
                if appender is not None:
                    os.fsync(appender.fd)
        self._last_sync = time.monotonic()

    def _maybe_sync(self) -> None:
        # Every chunk reaches the kernel at once (if crashcart itself dies, nothing received
        # is lost); fsync, which waits for the disk, only every FSYNC_INTERVAL.
        if time.monotonic() - self._last_sync >= FSYNC_INTERVAL:
            self.flush(sync=True)

    def close_files(self) -> None:
        """Close the current pair, the decoder's last bytes (a cut UTF-8 character) going to the
        .cast first. OSError if the disk refuses them; the pair is closed all the same."""
        if self._log is None or self._cast is None:
            return
        log, cast = self._log, self._cast
        self._log = self._cast = None
        try:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                size = cast.size
                try:
                    cast.append(cast_line(Spooled(self._last_at), tail, self._started).encode())
                except OSError:
                    cast.cut_back(size)
                    raise
            os.fsync(log.fd)
            os.fsync(cast.fd)
        finally:
            log.close()
            cast.close()

    def close(self) -> None:
        try:
            self.close_files()
        except OSError as exc:
            self._fail(exc)
        if self._events is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._events.fd)
            self._events.close()
            self._events = None


def _remove(files: RecordingFiles) -> None:
    for path in (files.log, files.cast):
        with contextlib.suppress(OSError):
            path.unlink()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
