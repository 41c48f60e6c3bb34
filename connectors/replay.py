"""Replay a recording as if it were a live console: a `.cast` (asciicast v1/v2/v3) or a raw `.log`.

The replayed bytes are exactly the recording's output: a `.cast` gives the concatenation of its
output ("o") events (input, resize, marker and exit events are skipped), a `.log` gives the file.
Timing:

- `.cast`: each event at its recorded time divided by `speed` (v2 stores absolute times, v1 and
  v3 intervals; both end up on one clock). A header ``idle_time_limit`` caps silences the way
  asciinema players do; the ``max_idle`` option overrides it (``inf``: no cap).
- `.log` has no timing, so it is paced as a serial line at 115200 baud 8N1 would deliver it:
  11520 bytes a second (times `speed`), in chunks of up to 256 bytes (22 ms of line time).
- ``speed=0`` or ``speed=inf`` replays as fast as possible (still yielding to the event loop
  between chunks, so a big file does not freeze a UI).

Events due at the same moment are sent as one Chunk, so a recording of single-character events
(a serial capture) costs one wake-up per timer tick, not one per byte, and real time does not
drift. `pause()` holds output (nothing is sent until `resume()`, and the paused time is not
counted); `set_speed()` changes speed mid-replay. A replay never reconnects and ends with
``StateChange("disconnected", "end of recording")``. `write` and `send_break` raise Unsupported.

This module reads recordings itself (connectors import nothing of crashcart's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from connectors import ConsoleURL, console_name
from connectors.base import Connector, ConnectorError, Unsupported

__all__ = ["BAUD", "LOG_CHUNK_BYTES", "ReplayConnector", "connect_replay", "read_frames"]

BAUD = 115200
_BYTES_PER_SECOND = BAUD / 10  # 8N1: a start bit, 8 data bits, a stop bit per byte
LOG_CHUNK_BYTES = 256
# Bytes handed over in one Chunk when many events are due at once.
MAX_CHUNK_BYTES = 64 * 1024

Frame = tuple[float, bytes]  # (seconds into the recording, bytes)


# -- reading recordings ---------------------------------------------------------------------


def read_frames(fh: IO[bytes], name: str) -> tuple[Iterator[Frame], float | None]:
    """The frames of an open recording and its header's idle_time_limit (None if not set)."""
    first = fh.readline()
    header = _cast_header(first)
    if header is not None:
        limit = header.get("idle_time_limit")
        idle = float(limit) if isinstance(limit, int | float) and limit > 0 else None
        return _cast_frames(fh, relative=header["version"] == 3), idle
    if name.endswith(".cast"):
        rest = first + fh.read()
        frames = _v1_frames(rest)
        if frames is None:
            raise ConnectorError(f"{name}: not an asciicast recording (no v1/v2/v3 header)")
        return iter(frames), None
    return _log_frames(fh, first), None


def _cast_header(line: bytes) -> dict[str, Any] | None:
    try:
        header = json.loads(line.decode("utf-8", "replace").removeprefix("\ufeff"))
    except ValueError:
        return None
    if isinstance(header, dict) and header.get("version") in (2, 3):
        return header
    return None


def _cast_frames(fh: IO[bytes], relative: bool) -> Iterator[Frame]:
    clock = 0.0
    for raw in fh:
        line = raw.decode("utf-8", "replace").strip()
        if not line or line.startswith("#"):  # v3 allows comment lines
            continue
        try:
            event = json.loads(line, strict=False)
        except ValueError:
            continue  # a damaged line: keep what the rest of the recording holds
        if not _is_event(event):
            continue
        stamp = float(event[0])
        # Timestamps never run backwards on our clock, whatever the file says.
        clock = clock + max(stamp, 0.0) if relative else max(clock, stamp)
        if event[1] == "o":
            yield clock, _event_bytes(event[2])


def _is_event(event: object) -> bool:
    return (
        isinstance(event, list)
        and len(event) >= 3
        and isinstance(event[0], int | float)
        and not isinstance(event[0], bool)
        and isinstance(event[1], str)
        and isinstance(event[2], str)
    )


def _v1_frames(data: bytes) -> list[Frame] | None:
    # asciicast v1 is one JSON document: {"version": 1, "stdout": [[delay, text], ...]}.
    try:
        doc = json.loads(data.decode("utf-8", "replace"), strict=False)
    except ValueError:
        return None
    if not (isinstance(doc, dict) and doc.get("version") == 1):
        return None
    frames: list[Frame] = []
    clock = 0.0
    for item in doc.get("stdout") or []:
        if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str):
            delay = item[0] if isinstance(item[0], int | float) else 0.0
            clock += max(float(delay), 0.0)
            frames.append((clock, _event_bytes(item[1])))
    return frames


def _event_bytes(text: str) -> bytes:
    # Recorders decode the console as UTF-8 and may keep undecodable bytes as lone surrogates
    # (surrogateescape); this gives back the original bytes.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _log_frames(fh: IO[bytes], head: bytes) -> Iterator[Frame]:
    offset = 0
    pending = head
    while True:
        while len(pending) < LOG_CHUNK_BYTES:
            more = fh.read(64 * 1024)
            if not more:
                break
            pending += more
        if not pending:
            return
        chunk, pending = pending[:LOG_CHUNK_BYTES], pending[LOG_CHUNK_BYTES:]
        offset += len(chunk)
        # A chunk is due when its last byte would have come off the wire.
        yield offset / _BYTES_PER_SECOND, chunk


def _capped(frames: Iterator[Frame], max_idle: float | None) -> Iterator[Frame]:
    if max_idle is None or math.isinf(max_idle):
        yield from frames
        return
    skipped = 0.0
    previous = 0.0
    for stamp, data in frames:
        silence = stamp - previous
        if silence > max_idle:
            skipped += silence - max_idle
        previous = stamp
        yield stamp - skipped, data


# -- the connector ----------------------------------------------------------------------------


class ReplayConnector(Connector):
    """A recording played back at `speed`, pausable (see module doc)."""

    reconnects = False
    coalesce_seconds = 0.0  # a replay keeps its recorded timing

    def __init__(
        self, url: str, name: str, path: Path, speed: float = 1.0, max_idle: float | None = None
    ) -> None:
        super().__init__(url, name)
        self.path = path
        self.max_idle = max_idle
        self._speed = _check_speed(speed, url)
        self._file: IO[bytes] | None = None
        self._frames: Iterator[Frame] = iter(())
        self._next: Frame | None = None
        self._paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._changed = asyncio.Event()  # pause, resume or speed change: re-plan a wait
        # The replay clock: recording time `_anchor_rec` was reached at monotonic `_anchor_wall`.
        self._anchor_rec = 0.0
        self._anchor_wall = time.monotonic()
        self._last_stamp = 0.0  # recording time of the last frame sent

    # -- controls ---------------------------------------------------------------------------
    @property
    def speed(self) -> float:
        return self._speed

    @property
    def fast(self) -> bool:
        return self._speed == 0 or math.isinf(self._speed)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def position(self) -> float:
        """Seconds into the recording (after idle capping)."""
        if self._paused:
            return self._anchor_rec
        if self.fast:
            return self._last_stamp
        return self._anchor_rec + (time.monotonic() - self._anchor_wall) * self._speed

    def pause(self) -> None:
        if not self._paused:
            self._reanchor()
            self._paused = True
            self._resumed.clear()
            self._changed.set()

    def resume(self) -> None:
        if self._paused:
            self._anchor_wall = time.monotonic()
            self._paused = False
            self._resumed.set()
            self._changed.set()

    def set_speed(self, speed: float) -> None:
        self._reanchor()
        self._speed = _check_speed(speed, self.url)
        self._changed.set()

    def _reanchor(self) -> None:
        self._anchor_rec = self.position
        self._anchor_wall = time.monotonic()

    # -- the Connector side -----------------------------------------------------------------
    async def _connect(self) -> None:
        try:
            self._file = self.path.open("rb")
        except FileNotFoundError:
            raise ConnectorError(f"{self.url}: no such file") from None
        except IsADirectoryError:
            raise ConnectorError(f"{self.url}: is a directory, not a recording") from None
        try:
            frames, header_idle = read_frames(self._file, self.url)
        except BaseException:
            self._file.close()
            raise
        idle = self.max_idle if self.max_idle is not None else header_idle
        self._frames = _capped(frames, idle)
        self._next = next(self._frames, None)
        self._anchor_rec = self._last_stamp = 0.0
        self._anchor_wall = time.monotonic()

    async def _read(self) -> bytes:
        if self.fast:
            await asyncio.sleep(0)  # a whole file may be due at once: let the loop breathe
        out = bytearray()
        while True:
            if self._paused:
                if out:
                    return bytes(out)
                await self._resumed.wait()
                continue
            if self._next is None:
                if out:
                    return bytes(out)
                raise ConnectorError("end of recording")
            stamp, data = self._next
            wait = 0.0 if self.fast else (stamp - self.position) / self._speed
            if wait <= 0:
                out += data
                self._last_stamp = stamp
                self._next = next(self._frames, None)
                if len(out) >= MAX_CHUNK_BYTES:
                    return bytes(out)
                continue
            if out:
                return bytes(out)
            await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early if paused, resumed or re-sped."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def _write(self, data: bytes) -> None:
        raise Unsupported(f"{self.url}: a recording cannot be typed into")

    async def _send_break(self) -> None:
        raise Unsupported(f"{self.url}: a recording cannot be sent a BREAK")

    async def _disconnect(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _check_speed(speed: float, url: str) -> float:
    if not speed >= 0:  # also refuses NaN
        raise ConnectorError(f"{url}: speed must be >= 0 (0 or inf: as fast as possible)")
    return speed


def _seconds(value: object, what: str, url: ConsoleURL) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"{url.display}: {what} must be a number, not {value!r}") from exc


def connect_replay(url: ConsoleURL, **options: Any) -> ReplayConnector:
    """The connector for a recording file; options `speed` (default 1) and `max_idle`."""
    speed = _seconds(options.get("speed", 1.0), "speed", url)
    raw_idle = options.get("max_idle")
    max_idle = None if raw_idle is None else _seconds(raw_idle, "max_idle", url)
    return ReplayConnector(
        url.display, console_name(url), Path(url.path or ""), speed=speed, max_idle=max_idle
    )
