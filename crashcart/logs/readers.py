"""Open a discovered source as lines: plain text, .gz/.xz/.bz2 rotations, pstore records, journals.

Everything becomes a `LogIndex` over a file, so hits, context and the timeline read every source
the same way. Compressed rotations are inflated into an unlinked temporary file (they are
usually small; the space is returned when the log is closed). A systemd journal is read with
journald's own reader, `journalctl --directory=DIR -o json` (or `--file=`), and rewritten as
RFC 3339 syslog lines, kernel messages keeping their printk stamp:

    2026-11-26T10:00:03.919751+00:00 web01 kernel: [    3.919751] general protection fault ...

That keeps the journal's wall time, and the kernel's monotonic stamp that lets a
vmcore-dmesg.txt of the same boot be put on the wall clock.
"""

from __future__ import annotations

import bz2
import json
import lzma
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from crashcart.logs.discover import Source
from crashcart.logs.index import LogIndex
from crashcart.recording import SNIFF_BYTES, InputError, sniff_binary

__all__ = ["MAX_LINE_BYTES", "LogFile", "open_log", "read_journal_entries"]

# A line longer than this is cut when read: nothing worth showing is that long, and a flood
# without newlines must not become one giant string.
MAX_LINE_BYTES = 64 * 1024

_ZSTD = b"\x28\xb5\x2f\xfd"

# Journal fields needed to rebuild a syslog line (the __ fields always come with -o json).
_JOURNAL_FIELDS = (
    "MESSAGE",
    "SYSLOG_IDENTIFIER",
    "_COMM",
    "_PID",
    "SYSLOG_PID",
    "_HOSTNAME",
    "_TRANSPORT",
    "_BOOT_ID",
    "_SOURCE_MONOTONIC_TIMESTAMP",
)


@dataclass(slots=True)
class LogFile:
    """An opened source: its lines (0-based) through a LogIndex, and where they came from."""

    source: Source
    index: LogIndex
    mtime: float
    compression: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.source.path)

    @property
    def kind(self) -> str:
        return self.source.kind

    def __len__(self) -> int:
        return len(self.index)

    def raw(self, i: int) -> str:
        """Line i decoded (invalid UTF-8 replaced), not cleaned, at most MAX_LINE_BYTES."""
        return self.index.line(i, MAX_LINE_BYTES).decode("utf-8", "replace")

    def lines(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str]]:
        for i, data in self.index.lines(start, stop, MAX_LINE_BYTES):
            yield i, data.decode("utf-8", "replace")

    def close(self) -> None:
        self.index.close()


def _tempfile() -> BinaryIO:
    # Unlinked at once: nothing is left behind even if crashcart is killed.
    return tempfile.TemporaryFile(prefix="crashcart-logs-")


def _index_of(fileobj: BinaryIO) -> LogIndex:
    fileobj.flush()
    index = LogIndex(fileobj)
    # The map holds the data now; the (unlinked) file's space lasts until the map is closed.
    fileobj.close()
    return index


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


# (magic, name, new decompressor). Streaming decompressors rather than gzip.open & co: those
# raise on a truncated stream before handing over what they had already inflated, and a log
# cut short by the crash is exactly what must still be read.
_FORMATS: tuple[tuple[bytes, str, Callable[[], _Decompressor]], ...] = (
    (b"\x1f\x8b", "gzip", lambda: zlib.decompressobj(wbits=31)),
    (b"\xfd7zXZ\x00", "xz", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
    (b"BZh", "bzip2", bz2.BZ2Decompressor),
)


def _inflate(path: Path, what: str, new: Callable[[], _Decompressor]) -> tuple[LogIndex, str]:
    """Decompress into a temporary file; a truncated stream keeps what could be read."""
    out = _tempfile()
    note = ""
    try:
        with path.open("rb") as src:
            decomp = new()
            while chunk := src.read(1 << 20):
                while chunk:
                    out.write(decomp.decompress(chunk))
                    chunk = b""
                    if decomp.eof and decomp.unused_data.strip(b"\0"):
                        # Concatenated members (`cat a.gz b.gz`): start the next one.
                        chunk = decomp.unused_data
                        decomp = new()
            if not decomp.eof:
                note = f"{path}: {what} data is truncated; read the first {out.tell()} bytes"
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        out.close()
        raise InputError(f"{path}: corrupt {what} data ({exc}); skipped") from None
    return _index_of(out), note


def _open_text(source: Source) -> LogFile:
    path = source.path
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            mtime = path.stat().st_mtime
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for magic, what, new in _FORMATS:
        # "BZh" can start a text line; only a .bz2 name makes it bzip2.
        if head.startswith(magic) and (what != "bzip2" or path.suffix == ".bz2"):
            index, note = _inflate(path, what, new)
            log = LogFile(source, index, mtime, what)
            if note:
                log.notes.append(note)
            return log
    if head.startswith(_ZSTD):
        raise InputError(f"{path}: zstd-compressed; decompress it first (zstd -d); skipped")
    binary = sniff_binary(head)
    if binary is not None:
        raise InputError(f"{path}: {binary}, not a text log; skipped")
    try:
        return LogFile(source, LogIndex(path), mtime)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


# -- journal -----------------------------------------------------------------------------------
def _field(entry: dict[str, object], name: str) -> str | None:
    """A journal field as text: journalctl gives non-UTF-8 or binary values as byte arrays."""
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            value = value[-1]  # a field set several times: the last value
        try:
            return bytes(int(b) & 0xFF for b in value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    return str(value)


def _iso(usec: int) -> str:
    moment = datetime.fromtimestamp(usec // 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{usec % 1_000_000:06d}+00:00"


def read_journal_entries(
    path: Path, notes: list[str] | None = None, journalctl: str | None = None
) -> Iterator[dict[str, object]]:
    """The entries of a journal directory or file, as journalctl's JSON objects.

    journalctl's complaints about single files (`... corrupted, ignoring file.`) are added to
    `notes`; reading nothing at all is an InputError.
    """
    exe = journalctl or shutil.which("journalctl")
    if exe is None:
        raise InputError(f"{path}: journalctl not found (install systemd); journal skipped")
    where = f"--directory={path}" if path.is_dir() else f"--file={path}"
    base = [exe, where, "-o", "json", "--all", "--no-pager"]
    fields = "--output-fields=" + ",".join(_JOURNAL_FIELDS)
    for argv in ([*base, fields], base):  # journalctl before systemd 236 lacks --output-fields
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL
            )
            assert proc.stdout is not None
            count = 0
            try:
                for raw in proc.stdout:
                    try:
                        entry = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(entry, dict):
                        count += 1
                        yield entry
            finally:
                proc.stdout.close()
                rc = proc.wait()
            errors.seek(0)
            complaints = errors.read(16384).decode("utf-8", "replace").strip().splitlines()
        if count:
            if notes is not None:
                notes.extend(f"{path}: journalctl: {line}" for line in complaints[:5])
            return
        if rc != 0 and any("output-fields" in line for line in complaints):
            continue
        why = complaints[0] if complaints else f"exit status {rc}" if rc else "no entries"
        raise InputError(f"{path}: no journal entries could be read ({why}); skipped")
    raise InputError(f"{path}: journalctl could not read the journal; skipped")


def _journal_lines(entries: Iterator[dict[str, object]]) -> Iterator[str]:
    """Rewrite journal entries as syslog lines (see the module docstring)."""
    boot_offset: dict[str, int] = {}  # boot id -> realtime - monotonic, kept current
    for entry in entries:
        message = _field(entry, "MESSAGE")
        realtime = _field(entry, "__REALTIME_TIMESTAMP")
        if message is None or realtime is None or not realtime.isdigit():
            continue
        usec = int(realtime)
        boot = _field(entry, "_BOOT_ID") or ""
        monotonic = _field(entry, "__MONOTONIC_TIMESTAMP")
        if monotonic and monotonic.isdigit():
            # journald takes both clocks at once; the difference is the boot's wall time, and
            # following it entry by entry follows NTP steps during the boot.
            boot_offset[boot] = usec - int(monotonic)
        host = _field(entry, "_HOSTNAME") or "localhost"
        source_mono = _field(entry, "_SOURCE_MONOTONIC_TIMESTAMP")
        if _field(entry, "_TRANSPORT") == "kernel":
            prefix_ident = "kernel:"
            if source_mono and source_mono.isdigit() and boot in boot_offset:
                # The kernel's own stamp is when it said it; the receive time can be seconds
                # later (messages buffered before journald started).
                mono = int(source_mono)
                usec = boot_offset[boot] + mono
                prefix_ident += f" [{mono // 1_000_000:5d}.{mono % 1_000_000:06d}]"
        else:
            ident = _field(entry, "SYSLOG_IDENTIFIER") or _field(entry, "_COMM") or "unknown"
            pid = _field(entry, "_PID") or _field(entry, "SYSLOG_PID")
            prefix_ident = f"{ident}[{pid}]:" if pid else f"{ident}:"
        prefix = f"{_iso(usec)} {host.replace(' ', '_')} {prefix_ident}"
        for part in message.split("\n") or [""]:
            yield f"{prefix} {part}" if part else prefix


def _open_journal(source: Source, journalctl: str | None = None) -> LogFile:
    path = source.path
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    out = _tempfile()
    notes: list[str] = []
    try:
        writer = out.write
        for line in _journal_lines(read_journal_entries(path, notes, journalctl)):
            writer(line.encode("utf-8", "surrogateescape") + b"\n")
    except BaseException:
        out.close()
        raise
    return LogFile(source, _index_of(out), mtime, notes=notes)


def open_log(source: Source) -> LogFile:
    """Open a source for reading; InputError (one line) when it cannot be read."""
    if source.kind == "journal":
        return _open_journal(source)
    return _open_text(source)
