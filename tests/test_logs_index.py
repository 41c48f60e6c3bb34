"""LogIndex: line access and search must agree with a plain split of the file, whatever the
block and region boundaries, line ends or line lengths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crashcart.logs import index as index_module
from crashcart.logs.index import LogIndex, compile_search


def expected_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def naive_search(data: bytes, pattern: bytes | re.Pattern[bytes]) -> list[int]:
    """Search sees lines as stored: without the newline, with the CR of a CRLF line."""
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()
    return [i for i, line in enumerate(lines) if regex.search(line)]


@contextmanager
def tiny_blocks(block: int = 7, region: int = 13) -> Iterator[None]:
    """Shrink the index's block and search-region sizes so small inputs cross many of them."""
    saved = (index_module.BLOCK_SIZE, index_module.REGION_SIZE)
    index_module.BLOCK_SIZE, index_module.REGION_SIZE = block, region
    try:
        yield
    finally:
        index_module.BLOCK_SIZE, index_module.REGION_SIZE = saved


def check(path: Path, data: bytes, patterns: list[bytes | re.Pattern[bytes]]) -> None:
    path.write_bytes(data)
    want = expected_lines(data)
    with LogIndex(path) as ix:
        # Random access first (the index grows on demand), then the length.
        for i in reversed(range(len(want))):
            assert ix.line(i) == want[i], i
        assert len(ix) == len(want)
        assert [line for _i, line in ix.lines()] == want
        assert [line for _i, line in ix.lines(len(want) // 2, len(want) // 2 + 3)] == want[
            len(want) // 2 : len(want) // 2 + 3
        ]
        offset = 0
        for i, line in enumerate(data.split(b"\n")[: len(want)]):
            for probe in {offset, offset + len(line)}:  # first byte and the newline
                if probe < len(data):
                    assert ix.line_of(probe) == i
            offset += len(line) + 1
        with pytest.raises(IndexError):
            ix.line(len(want))
        for pattern in patterns:
            assert list(ix.search(pattern)) == naive_search(data, pattern), pattern


SAMPLE = (
    b"Nov 26 10:00:00 web01 kernel: [ 1.0] boot\n"
    b"\n"
    b"Nov 26 10:00:01 web01 kernel: [ 2.0] I/O error, dev sda, sector 8\r\n"
    b"a line with Kernel panic - not syncing in the middle and I/O error too\n"
    + b"x"
    * 100_000
    + b" Kernel panic - not syncing: at the end of a 100 kB line\n"
    b"ends without newline: EXT4-fs error"
)
PATTERNS: list[bytes | re.Pattern[bytes]] = [
    rb"I/O error",
    rb"Kernel panic - not syncing|I/O error|EXT4-fs error",  # literal passes, merged
    rb"\d\.0\]",  # no usable literal: the regex itself
    re.compile(rb"kernel panic", re.IGNORECASE),
    rb"\x49/O",  # an escape that spells a byte by number
    rb"^Nov 26",
    rb"error$",
    rb"sector\s+8",
    rb"boot\s+Nov",  # would only match across a line end: never
    rb"^$",
]


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"a\n", b"\n\n", b"a\r\nb\r\n", b"only\rcarriage", SAMPLE],
    ids=["empty", "one", "one-nl", "blank", "crlf", "cr", "sample"],
)
def test_lines_and_search_match_a_plain_split(tmp_path: Path, data: bytes) -> None:
    check(tmp_path / "log", data, PATTERNS)


def test_tiny_blocks_and_regions_change_nothing(tmp_path: Path) -> None:
    with tiny_blocks():
        check(tmp_path / "log", SAMPLE[:200] + SAMPLE[-300:], PATTERNS)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet="ab\r\n xIO/error", max_size=30).map(str.encode), max_size=40).map(
        b"".join
    ),
    st.sampled_from([rb"a", rb"ab|ba", rb"I/O error|b\r", rb"^b", rb"a$", rb"x{2}"]),
)
def test_search_and_lines_property(data: bytes, pattern: bytes) -> None:
    import tempfile

    with tiny_blocks(block=5, region=7), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log"
        path.write_bytes(data)
        with LogIndex(path) as ix:
            assert [line for _i, line in ix.lines()] == expected_lines(data)
            assert len(ix) == len(expected_lines(data))
            assert list(ix.search(pattern)) == naive_search(data, pattern)


def test_alternations_are_searched_literal_by_literal() -> None:
    plan = compile_search(rb"Kernel panic - not syncing|BUG(?::| at) |BUG: soft lockup|\[#\d+\]")
    # "BUG: soft lockup" contains "BUG": its lines are a subset, no pass of its own.
    assert sorted(lit for lit, _check in plan.literals) == [
        b"BUG",
        b"Kernel panic - not syncing",
        b"[#",
    ]
    # A line holding "BUG" is confirmed by the BUG branches alone.
    checks = dict(plan.literals)
    assert checks[b"BUG"].pattern == rb"BUG(?::| at) |BUG: soft lockup"
    assert compile_search(rb"panic|\d+").literals == ()  # a branch without a literal
    assert compile_search(rb"(?i)panic").literals == ()
    assert compile_search(rb"\x1b\[31m").literals == ()


def test_background_indexing_completes_and_stops(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % k for k in range(5000))
    (tmp_path / "log").write_bytes(data)
    with tiny_blocks(block=64):
        ix = LogIndex(tmp_path / "log", background=True)
        assert ix.line(0) == b"line 0"  # readable before the index is complete
        ix.wait_indexed()
        assert ix.indexed_fraction == 1.0
        assert ix.lines_known == len(ix) == 5000
        assert ix.line(4999) == b"line 4999"
        ix.close()
        assert ix._thread is None


def test_a_huge_line_is_read_cut_when_asked(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"y" * 200_000 + b"\nshort\n")
    with LogIndex(tmp_path / "log") as ix:
        assert len(ix.line(0, limit=1000)) == 1000
        assert [len(line) for _i, line in ix.lines(limit=64)] == [64, 5]
        assert ix.line(1) == b"short"
