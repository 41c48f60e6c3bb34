"""Recording a console losslessly: the raw bytes (`.log`) and their timing (`.cast`).

The `.log` is exactly the bytes the console sent, nothing added, so its sha256 can be compared
with the source. The `.cast` is an asciicast v2 file (the format asciinema plays) with each
chunk's arrival time; it also carries the markers a `.log` cannot: where the console went
unheard (`"m"` marker events, "gap: ..."). Connection changes and gaps are also appended to a
small `events.jsonl` beside them, for tools. Files are created 0600 in folders 0700: a console
shows passwords typed at login prompts.

Recordings rotate by size: `NAME-20261126T140501.log` becomes the next
`NAME-20261126T150312.log` once `max_bytes` is reached, at a chunk boundary.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEFAULT_MAX_BYTES = 256 << 20
# How often buffered data is pushed to disk at the latest; a crash forces it at once.
FSYNC_INTERVAL = 2.0


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def open_private(path: Path, mode: str) -> IO[Any]:
    """Open a new file readable by its owner only (created 0600, whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode)


@dataclass(frozen=True, slots=True)
class RecordingFiles:
    log: Path
    cast: Path


@dataclass(frozen=True, slots=True)
class RecordingExtent:
    """Where a recording stood at one moment: each `.log` with its length then, and the `.cast`.

    Taken on the event loop (it flushes Python's buffers), then handed to a thread that copies
    exactly that much while the recorder keeps writing: nothing in a thread touches the
    recorder's open files.
    """

    logs: tuple[tuple[Path, int], ...]
    cast: Path
    cast_size: int


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
    ) -> None:
        self.directory = make_private_dir(directory)
        self.name = name
        self.width = width
        self.height = height
        self.max_bytes = max_bytes
        self.title = title or name
        self.files: list[RecordingFiles] = []
        self.bytes_written = 0  # in the current file
        self.total_bytes = 0
        self._log: IO[bytes] | None = None
        self._cast: IO[str] | None = None
        self._events: IO[str] = open_private(self.directory / f"{name}.events.jsonl", "w")
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._started = 0.0
        self._last_sync = time.monotonic()
        self._open_new(time.time())

    @property
    def current(self) -> RecordingFiles:
        return self.files[-1]

    def _open_new(self, now: float) -> None:
        self.close_files()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        stem = f"{self.name}-{stamp}"
        n = 1
        while (self.directory / f"{stem}.log").exists():
            n += 1
            stem = f"{self.name}-{stamp}-{n}"
        files = RecordingFiles(self.directory / f"{stem}.log", self.directory / f"{stem}.cast")
        self._log = open_private(files.log, "wb")
        self._cast = open_private(files.cast, "w")
        header = {
            "version": 2,
            "width": self.width,
            "height": self.height,
            "timestamp": int(now),
            "title": self.title,
        }
        self._cast.write(json.dumps(header) + "\n")
        self._started = now
        self.bytes_written = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.files.append(files)

    def write(self, data: bytes, at: float | None = None) -> None:
        """Record a chunk that arrived at `at` (time.time())."""
        if not data:
            return
        now = time.time() if at is None else at
        if self.bytes_written >= self.max_bytes:
            self._open_new(now)
        assert self._log is not None and self._cast is not None
        self._log.write(data)
        text = self._decoder.decode(data)
        if text:
            self._cast.write(json.dumps([round(now - self._started, 6), "o", text]) + "\n")
        self.bytes_written += len(data)
        self.total_bytes += len(data)
        self._maybe_sync()

    def extent(self) -> RecordingExtent:
        """The recording so far (pushed to the kernel first), for a copy made elsewhere."""
        for f in (self._log, self._cast):
            if f is not None:
                f.flush()
        open_file = self.current if self._log is not None else None
        logs = tuple(
            (files.log, self.bytes_written if files is open_file else files.log.stat().st_size)
            for files in self.files
        )
        return RecordingExtent(logs, self.current.cast, self.current.cast.stat().st_size)

    def mark(self, label: str, at: float | None = None, **fields: Any) -> None:
        """A marker in the `.cast` and a line in events.jsonl (gaps, reconnects, crashes)."""
        now = time.time() if at is None else at
        assert self._cast is not None
        self._cast.write(json.dumps([round(max(now - self._started, 0.0), 6), "m", label]) + "\n")
        record = {"time": now, "event": label, **fields}
        self._events.write(json.dumps(record, default=str) + "\n")
        self._events.flush()
        self._cast.flush()

    def flush(self, sync: bool = False) -> None:
        for f in (self._log, self._cast, self._events):
            if f is not None and not f.closed:  # a capture after the console ended
                f.flush()
                if sync:
                    os.fsync(f.fileno())
        self._last_sync = time.monotonic()

    def _maybe_sync(self) -> None:
        # Every chunk reaches the kernel at once (if crashcart itself dies, nothing received
        # is lost); fsync, which waits for the disk, only every FSYNC_INTERVAL.
        if time.monotonic() - self._last_sync >= FSYNC_INTERVAL:
            self.flush(sync=True)
        else:
            assert self._log is not None and self._cast is not None
            self._log.flush()
            self._cast.flush()

    def close_files(self) -> None:
        if self._log is not None:
            assert self._cast is not None
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._cast.write(json.dumps([0.0, "o", tail]) + "\n")
            for f in (self._log, self._cast):
                f.flush()
                os.fsync(f.fileno())
                f.close()
            self._log = None
            self._cast = None

    def close(self) -> None:
        self.close_files()
        if not self._events.closed:
            self._events.flush()
            os.fsync(self._events.fileno())
            self._events.close()
