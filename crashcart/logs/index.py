"""Line access and regex search over huge log files without reading them into Python objects.

A rotated kern.log or a journal dump can be gigabytes. `LogIndex` maps the file (`mmap`) and
keeps a *block index*: the number of newlines before every 64 KiB block, found with
`bytes.count` over block copies (C speed, about 1 GB/s). That is enough to answer `line(i)`:
bisect to the block holding the i-th newline, then list that block's newlines (cached). The
block index grows on demand, so the first screen of a 1 GB file is readable at once; a
background thread can complete it while the operator reads.

`search(regex)` never walks lines in Python: it runs the compiled bytes regex over big
line-aligned chunks of the map and turns match offsets into line numbers by counting newlines
between them. Python's `re` is fast only when a pattern starts with a literal (it then skips
ahead like `memchr`); an alternation such as `Kernel panic|I/O error` makes it try every branch
at every byte (~100 MB/s). So a top-level alternation whose branches each contain a literal is
searched one literal at a time (each pass at 1-2 GB/s), and each candidate line is confirmed
with the whole pattern.
"""

from __future__ import annotations

import bisect
import mmap
import operator
import os
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from itertools import accumulate, count
from typing import BinaryIO

from crashcart.kernel.parser import required_literal

__all__ = ["BLOCK_SIZE", "LogIndex", "compile_search"]

BLOCK_SIZE = 1 << 16  # granularity of the newline-count index (16 k entries per GB)
REGION_SIZE = 4 << 20  # search step: matches are collected and sorted per region
_CACHED_BLOCKS = 64  # blocks whose newline offsets are kept (a screen, a context, a region)
_COUNT_GAP = 1 << 16  # hits closer than this get their line number by counting newlines
_MIN_LITERAL = 2  # shorter literals would match nearly everywhere: search the regex itself


_UNTRUSTED_LITERALS = re.compile(r"\(\?[a-zA-Z-]*[ix]|\\[xuUN0-7]")


class _Plan:
    """How to search one pattern: the regex, and the literals every match must contain, each
    with the regex that confirms a line holding it (its own branches, or the whole pattern)."""

    __slots__ = ("literals", "regex")

    def __init__(
        self,
        regex: re.Pattern[bytes],
        literals: tuple[tuple[bytes, re.Pattern[bytes]], ...] = (),
    ) -> None:
        self.regex = regex
        self.literals = literals


def _top_level_branches(pattern: str) -> list[str]:
    """Split a pattern at its top-level `|` (not inside groups or character classes)."""
    branches: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1  # a leading "]" is a member, not the end
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return branches


def compile_search(pattern: bytes | re.Pattern[bytes]) -> _Plan:
    """Compile a search pattern and find the literals that let it be searched fast."""
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    if not isinstance(regex.pattern, bytes):
        raise TypeError("LogIndex searches bytes patterns (b'...')")
    if not regex.flags & re.MULTILINE:
        # Matching is per line: ^ and $ mean the line's start and end.
        regex = re.compile(regex.pattern, regex.flags | re.MULTILINE)
    # Literals are only trusted where they mean themselves: not under IGNORECASE or VERBOSE
    # (flag or inline), and not with escapes that spell a byte by number (\x1b, \033).
    text = regex.pattern.decode("latin-1")
    if regex.flags & (re.IGNORECASE | re.VERBOSE) or _UNTRUSTED_LITERALS.search(text):
        return _Plan(regex)
    branches: list[tuple[bytes, str]] = []
    for branch in _top_level_branches(text):
        lit = required_literal(branch).encode("latin-1")
        if len(lit) < _MIN_LITERAL:
            return _Plan(regex)
        branches.append((lit, branch))
    # A literal that contains another one is redundant: its lines are a subset.
    kept: list[bytes] = []
    for lit in sorted({lit for lit, _b in branches}, key=len):
        if not any(k in lit for k in kept):
            kept.append(lit)
    plan: list[tuple[bytes, re.Pattern[bytes]]] = []
    for lit in kept:
        # A line holding `lit` can only match the branches whose literal contains it: confirm
        # with those alone, far cheaper than the whole alternation.
        mine = [b for blit, b in branches if lit in blit]
        try:
            check = re.compile("|".join(mine).encode("latin-1"), regex.flags)
        except re.error:  # a branch that refers to another's group: use the whole pattern
            check = regex
        plan.append((lit, check))
    return _Plan(regex, tuple(plan))


class LogIndex:
    """A memory-mapped file with lazy line indexing, line access and fast regex search.

    Line numbers are 0-based. A line is the bytes up to its `\\n` (a trailing `\\r` is dropped);
    a last line without a newline counts. The file is assumed not to change while open.
    """

    def __init__(self, file: str | os.PathLike[str] | BinaryIO, *, background: bool = False):
        if isinstance(file, (str, os.PathLike)):
            self._file: BinaryIO | None = open(file, "rb")  # noqa: SIM115 - closed in close()
            fileobj = self._file
        else:
            self._file = None
            fileobj = file
        size = os.fstat(fileobj.fileno()).st_size
        self.size = size
        # mmap cannot map an empty file; bytes offer the same find/slice/regex interface.
        self._data: mmap.mmap | bytes = (
            mmap.mmap(fileobj.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        )
        self._block = BLOCK_SIZE
        self._nblocks = (size + self._block - 1) // self._block
        self._cum = array("q", [0])  # newlines before block b, for the blocks counted so far
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, array[int]] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        if background and self._nblocks > 1:
            self._thread = threading.Thread(target=self._index_all, name="logindex", daemon=True)
            self._thread.start()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._closed = True
            self._blocks.clear()
            if isinstance(self._data, mmap.mmap):
                self._data.close()
            self._data = b""
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> LogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the block index ---------------------------------------------------------------------
    @property
    def indexed_fraction(self) -> float:
        """How much of the file the block index covers (1.0 when `len()` is instant)."""
        return 1.0 if not self._nblocks else (len(self._cum) - 1) / self._nblocks

    @property
    def lines_known(self) -> int:
        """Lines known to exist so far (all of them once fully indexed)."""
        return self._cum[-1]

    def wait_indexed(self) -> None:
        """Complete the block index (in this thread, or by waiting for the background one)."""
        self._extend(self._nblocks)

    def _index_all(self) -> None:
        step = 8  # release the lock between small batches so line() never waits long
        while not self._stop.is_set() and len(self._cum) - 1 < self._nblocks:
            self._extend(len(self._cum) - 1 + step)

    def _extend(self, blocks: int) -> None:
        """Count newlines in blocks until `blocks` of them are indexed."""
        blocks = min(blocks, self._nblocks)
        if len(self._cum) - 1 >= blocks:
            return
        with self._lock:
            if self._closed:
                return
            data = self._data
            cum = self._cum
            total = cum[-1]
            for b in range(len(cum) - 1, blocks):
                total += data[b * self._block : (b + 1) * self._block].count(b"\n")
                cum.append(total)

    def _newline_count(self) -> int:
        self.wait_indexed()
        return self._cum[-1]

    def __len__(self) -> int:
        newlines = self._newline_count()
        unterminated = self.size > 0 and self._data[self.size - 1 : self.size] != b"\n"
        return newlines + (1 if unterminated else 0)

    def _block_newlines(self, b: int) -> array[int]:
        """Absolute offsets of the newlines in block b (cached, least recently used dropped)."""
        with self._lock:
            cached = self._blocks.get(b)
            if cached is not None:
                self._blocks.move_to_end(b)
                return cached
            base = b * self._block
            chunk = self._data[base : base + self._block]
        # Newline k sits after parts 0..k and k newlines: all in C (split, accumulate, map).
        parts = chunk.split(b"\n")
        parts.pop()
        offsets = array("q", map(operator.add, accumulate(map(len, parts)), count(base)))
        with self._lock:
            self._blocks[b] = offsets
            while len(self._blocks) > _CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        return offsets

    def _newline_offset(self, k: int) -> int | None:
        """Offset of the k-th newline (1-based), or None if the file has fewer."""
        cum = self._cum
        while cum[-1] < k and len(cum) - 1 < self._nblocks:
            self._extend(len(cum) - 1 + max(1, len(cum) // 4))  # grow geometrically
        if cum[-1] < k:
            return None
        b = bisect.bisect_left(cum, k) - 1
        return self._block_newlines(b)[k - cum[b] - 1]

    # -- lines -------------------------------------------------------------------------------
    def offset(self, i: int) -> int:
        """Byte offset where line i starts (IndexError past the end)."""
        if i < 0:
            raise IndexError(i)
        if i == 0:
            if self.size == 0:
                raise IndexError(i)
            return 0
        nl = self._newline_offset(i)
        if nl is None or nl + 1 >= self.size:
            raise IndexError(i)
        return nl + 1

    def _line_end(self, start: int) -> int:
        end = self._data.find(b"\n", start)
        return self.size if end < 0 else end

    def line(self, i: int, limit: int | None = None) -> bytes:
        """Line i without its line end; at most `limit` bytes of it."""
        start = self.offset(i)
        end = self._line_end(start)
        if limit is not None and end - start > limit:
            return self._data[start : start + limit]
        if end > start and self._data[end - 1 : end] == b"\r":
            end -= 1
        return self._data[start:end]

    def lines(
        self, start: int = 0, stop: int | None = None, limit: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(number, line) from line `start` up to `stop` (exclusive), read sequentially."""
        try:
            pos = self.offset(start)
        except IndexError:
            return
        data = self._data
        size = self.size
        i = start
        while pos < size and (stop is None or i < stop):
            end = data.find(b"\n", pos)
            if end < 0:
                end = size
            cut = end if limit is None else min(end, pos + limit)
            if cut == end and cut > pos and data[cut - 1 : cut] == b"\r":
                cut -= 1
            yield i, data[pos:cut]
            pos = end + 1
            i += 1

    def line_of(self, offset: int) -> int:
        """The number of the line holding byte `offset`."""
        if not 0 <= offset < max(self.size, 1):
            raise IndexError(offset)
        b = offset // self._block
        self._extend(b + 1)
        newlines = self._block_newlines(b)
        return self._cum[b] + bisect.bisect_left(newlines, offset)

    # -- search ---------------------------------------------------------------------------
    def _regions(self) -> Iterator[tuple[int, int]]:
        """Line-aligned (start, end) byte ranges of about REGION_SIZE covering the file."""
        data = self._data
        size = self.size
        pos = 0
        while pos < size:
            want = pos + REGION_SIZE
            # Regions end at a line end, however long the line: the map is searched in place,
            # so a region costs no memory, and a match is never cut in two.
            nl = data.find(b"\n", want - 1) if want < size else -1
            end = nl + 1 if nl >= 0 else size
            yield pos, end
            pos = end

    def search(self, pattern: bytes | re.Pattern[bytes]) -> Iterator[int]:
        """Numbers of the lines on which `pattern` matches, in file order, each once.

        The regex runs on the map itself (no copy) and sees each line as stored, without its
        newline: the "\\r" of a CRLF line is still there (`line()` drops it). `^` and `$` are
        the line's start and end; a match must lie within one line.
        """
        for line, _offset in self.search_offsets(pattern):
            yield line

    def search_offsets(self, pattern: bytes | re.Pattern[bytes]) -> Iterator[tuple[int, int]]:
        """(line number, byte offset of the line) of each matching line, as `search`."""
        plan = compile_search(pattern)
        for start, end in self._regions():
            line = -1
            prev = 0
            for line_start in self._matching_line_starts(plan, start, end):
                if line >= 0 and line_start - prev <= _COUNT_GAP:
                    # Close to the previous hit: count the newlines between (one small copy).
                    line += self._data[prev:line_start].count(b"\n")
                else:
                    line = self.line_of(line_start)
                prev = line_start
                yield line, line_start

    def line_at(self, offset: int, limit: int | None = None) -> bytes:
        """The line starting at byte `offset` (as `search_offsets` gives it), like `line()`."""
        end = self._line_end(offset)
        if limit is not None and end - offset > limit:
            return self._data[offset : offset + limit]
        if end > offset and self._data[end - 1 : end] == b"\r":
            end -= 1
        return self._data[offset:end]

    def _matching_line_starts(self, plan: _Plan, start: int, end: int) -> list[int]:
        data = self._data
        regex = plan.regex
        found: set[int] = set()
        if not plan.literals:
            pos = start
            while pos < end:
                m = regex.search(data, pos, end)
                if m is None or (m.start() == end and data[end - 1 : end] == b"\n"):
                    break  # an empty match after the region's last newline is the next line's
                line_start = max(data.rfind(b"\n", start, m.start()) + 1, start)
                line_end = data.find(b"\n", m.start(), end)
                if line_end < 0:
                    line_end = end
                # A match that runs into the next line (`\s` matches a newline) only counts if
                # the pattern also matches within the line.
                if m.end() <= line_end or regex.search(data, line_start, line_end):
                    found.add(line_start)
                pos = line_end + 1
            return sorted(found)
        rejected: set[int] = set()
        for literal, check in plan.literals:
            pos = data.find(literal, start, end)
            while pos >= 0:
                line_start = max(data.rfind(b"\n", start, pos) + 1, start)
                line_end = data.find(b"\n", pos, end)
                if line_end < 0:
                    line_end = end
                if line_start not in found and line_start not in rejected:
                    # The whole pattern must match on this line, not just the literal.
                    hit = check.search(data, line_start, line_end) is not None
                    (found if hit else rejected).add(line_start)
                pos = data.find(literal, line_end + 1, end)
        return sorted(found)
