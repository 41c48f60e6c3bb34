"""Scrollback for a whole session: the recording on disk plus an index of where lines start.

A session can run for days and print hundreds of megabytes, so lines are never held in memory:
the recorder has already written every byte to its `.log` files (write-through, per chunk), and
this store keeps only one 8-byte offset per line (toolong's approach). A line is read back with
`pread` when it is drawn; a search runs a compiled regex over the files, not a Python loop over
lines. Offsets are positions in the whole stream; the store knows where each recording file
starts, so rotation is invisible to the view.
"""

from __future__ import annotations

import bisect
import mmap
import os
import re
from array import array
from collections.abc import Iterator
from pathlib import Path

# Drawing a line reads at most this much of it: a 100 kB line of garbage is shown cut.
MAX_DRAWN_BYTES = 4096


class LineStore:
    """Line starts in a byte stream that is recorded to a sequence of files."""

    def __init__(self) -> None:
        self._starts = array("Q", [0])  # line i starts at stream offset _starts[i]
        self._size = 0  # stream bytes so far
        self._files: list[Path] = []
        self._file_starts: list[int] = []  # stream offset where each file begins
        self._fds: dict[Path, int] = {}

    def __len__(self) -> int:
        """Lines so far, counting an unterminated last line (a prompt) when it has bytes."""
        count = len(self._starts)
        return count if self._size > self._starts[-1] else count - 1

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes, file: Path, file_offset: int) -> None:
        """`data` was written to `file` at `file_offset` (the recorder's position before it)."""
        if not self._files or self._files[-1] != file:
            self._files.append(file)
            self._file_starts.append(self._size - file_offset)
        base = self._size
        starts = self._starts
        find = data.find
        at = find(b"\n")
        while at >= 0:
            starts.append(base + at + 1)
            at = find(b"\n", at + 1)
        self._size += len(data)

    def line_bytes(self, index: int, limit: int = MAX_DRAWN_BYTES) -> bytes:
        """Line `index` (0-based) without its newline, at most `limit` bytes of it."""
        start = self._starts[index]
        end = self._starts[index + 1] - 1 if index + 1 < len(self._starts) else self._size
        end = min(end, start + limit)
        return self._read(start, end).rstrip(b"\r")

    def _read(self, start: int, end: int) -> bytes:
        parts: list[bytes] = []
        while start < end:
            k = bisect.bisect_right(self._file_starts, start) - 1
            file_end = self._file_starts[k + 1] if k + 1 < len(self._files) else end
            stop = min(end, file_end)
            fd = self._fd(self._files[k])
            parts.append(os.pread(fd, stop - start, start - self._file_starts[k]))
            start = stop
        return b"".join(parts)

    def _fd(self, path: Path) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            self._fds[path] = fd
        return fd

    def line_of_offset(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) - 1

    def search(self, pattern: re.Pattern[bytes], start_line: int = 0) -> Iterator[int]:
        """Line numbers (0-based) with a match, from `start_line` on, in order."""
        if start_line >= len(self):
            return
        offset = self._starts[start_line]
        last = -1
        for k, path in enumerate(list(self._files)):
            file_start = self._file_starts[k]
            file_end = self._file_starts[k + 1] if k + 1 < len(self._files) else self._size
            if file_end <= offset or file_end == file_start:
                continue
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                limit = min(len(mm), file_end - file_start)
                for m in pattern.finditer(mm, max(offset - file_start, 0), limit):
                    line = self.line_of_offset(file_start + m.start())
                    if line != last:
                        last = line
                        yield line

    def search_backward(self, pattern: re.Pattern[bytes], before_line: int) -> int | None:
        """The last line before `before_line` with a match."""
        found: int | None = None
        for line in self.search(pattern):
            if line >= before_line:
                break
            found = line
        return found

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
