"""recording.py: asciicast v2/v3 decoding, raw logs, stdin, and refusing binary input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crashcart.recording import (
    SNIFF_BYTES,
    InputError,
    decode_cast,
    load_console_bytes,
    sniff_binary,
)

V2_HEADER = {"version": 2, "width": 80, "height": 25, "timestamp": 1700000000}
V3_HEADER = {"version": 3, "term": {"cols": 80, "rows": 25}, "timestamp": 1700000000}

_RNG = random.Random(20240601)  # seeded: parametrized ids and outcomes stay reproducible


def noise(n: int) -> bytes:
    return _RNG.randbytes(n)


def cast(header: object, *events: object, raw_lines: tuple[str, ...] = ()) -> bytes:
    lines = [json.dumps(header), *(json.dumps(e) for e in events), *raw_lines]
    return ("\n".join(lines) + "\n").encode()


def test_v2_concatenates_output_events_only() -> None:
    data = cast(
        V2_HEADER,
        [0.1, "o", "Linux version 6.1\r\n"],
        [0.2, "i", "typed\r"],
        [0.3, "r", "100x30"],
        [0.4, "m", "marker"],
        [0.5, "o", "\x1b[0mBUG: oops\r\n"],
    )
    assert decode_cast(data) == b"Linux version 6.1\r\n\x1b[0mBUG: oops\r\n"


def test_v3_relative_intervals_comments_and_exit_event() -> None:
    data = cast(
        V3_HEADER,
        [0.0, "o", "a"],
        [1.5, "o", "b"],
        [0.0, "x", "0"],
        raw_lines=("# a comment line", '[0.1, "o", "c"]'),
    )
    assert decode_cast(data) == b"abc"


def test_output_is_utf8_and_surrogate_escaped_bytes_come_back() -> None:
    # Recorders that kept undecodable console bytes as lone surrogates get those bytes back.
    data = cast(V2_HEADER, [0.1, "o", "caf\u00e9 "], [0.2, "o", "\udcff\udcfe"])
    assert decode_cast(data) == "café ".encode() + b"\xff\xfe"


@pytest.mark.parametrize(
    "line",
    [
        "this is not json",
        '[0.1, "o", "trunc',
        '{"an": "object"}',
        '[0.1, "o"]',
        '[0.1, "o", 42]',
        '["0.1", "o", "string time"]',
        '[true, "o", "bool time"]',
        "[]",
        "\x00\x01\x02garbage",
    ],
)
def test_malformed_event_lines_are_skipped(line: str) -> None:
    data = cast(V2_HEADER, [0.1, "o", "before "], raw_lines=(line, '[0.3, "o", "after"]'))
    assert decode_cast(data) == b"before after"


def test_invalid_utf8_inside_a_recording_is_tolerated() -> None:
    data = cast(V2_HEADER, [0.1, "o", "x"]) + b"\xff\xfe\xfa garbage\n" + b'[0.2, "o", "y"]\n'
    assert decode_cast(data) == b"xy"


def test_cast_without_trailing_newline_and_crlf_lines() -> None:
    data = json.dumps(V2_HEADER).encode() + b'\r\n[0.1, "o", "a"]\r\n[0.2, "o", "b"]'
    assert decode_cast(data) == b"ab"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n",
        b'[0.1, "o", "events but no header"]\n',
        b'{"version": 4, "width": 80}\n[0.1, "o", "x"]\n',
        b'{"width": 80, "height": 25}\n',
        b"plain console text\n",
    ],
)
def test_cast_without_valid_header_is_an_error(data: bytes) -> None:
    with pytest.raises(InputError, match="not an asciicast recording"):
        decode_cast(data, "x.cast")


def test_asciicast_v1_document() -> None:
    doc = {"version": 1, "width": 80, "height": 25, "stdout": [[0.1, "ab"], [0.2, "c"], "junk"]}
    assert decode_cast(json.dumps(doc, indent=2).encode()) == b"abc"


@pytest.mark.parametrize(
    "head",
    [
        b"\x7fELF\x02\x01\x01" + bytes(20),
        b"\x1f\x8b\x08\x00" + noise(40),
        b"PK\x03\x04" + noise(40),
        b"BZh91AY&SY" + noise(40),
        b"\xfd7zXZ\x00" + noise(40),
        b"\x28\xb5\x2f\xfd" + noise(40),
        b"\x89PNG\r\n\x1a\n" + noise(40),
        b"\xff\xd8\xff\xe0" + noise(40),
        b"%PDF-1.7\n",
        b"SQLite format 3\x00" + bytes(80),
        bytes(4096),
        b"\x01\x02\x03\x04\x05\x06" * 100,
    ],
)
def test_binary_inputs_are_recognised(head: bytes) -> None:
    assert sniff_binary(head) is not None


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"BZh is how this console line starts\r\n",
        b"[    0.000000] Linux version 6.1.0\r\n" * 50,
        b"\x1b[0m\x1b[2J\x1b[6n\x1bc\r\n" * 200,  # escape floods are console text
        b"ok\r\n" + noise(256) + b"\r\nmore text after line noise\r\n" * 20,
        "UTF-8 \u00e9\u00e8 \u2603\n".encode() * 20,
    ],
)
def test_console_text_is_not_binary(head: bytes) -> None:
    assert sniff_binary(head) is None


def test_binary_threshold_is_tolerant() -> None:
    text = b"a" * 75
    assert sniff_binary(text + b"\x00" * 25) is None  # 25 % NUL: a dirty console log
    assert sniff_binary(text + b"\x00" * 40) is not None  # ~35 %: binary


def test_only_the_first_64k_are_sniffed() -> None:
    assert sniff_binary(b"x" * SNIFF_BYTES + bytes(SNIFF_BYTES)) is None


def test_log_file_is_raw_bytes(tmp_path: Path) -> None:
    raw = b"\x1bc\x1b[?7l[    1.0] hello\r\n\xff\xfe not utf-8\r\n"
    path = tmp_path / "console.log"
    path.write_bytes(raw)
    assert load_console_bytes(path) == raw
    assert load_console_bytes(str(path)) == raw


def test_other_suffixes_are_raw_even_if_they_hold_a_cast(tmp_path: Path) -> None:
    data = cast(V2_HEADER, [0.1, "o", "x"])
    path = tmp_path / "capture.txt"
    path.write_bytes(data)
    assert load_console_bytes(path) == data


def test_cast_suffix_is_decoded_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "REC.CAST"
    path.write_bytes(cast(V2_HEADER, [0.1, "o", "hi"]))
    assert load_console_bytes(path) == b"hi"


def test_cast_file_without_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.cast"
    path.write_bytes(b"not a recording\n")
    with pytest.raises(InputError, match=r"bad\.cast: not an asciicast"):
        load_console_bytes(path)


def test_empty_log_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert load_console_bytes(path) == b""


def test_stdin_raw_and_cast() -> None:
    assert load_console_bytes("-", stdin=io.BytesIO(b"raw\r\n")) == b"raw\r\n"
    recording = cast(V2_HEADER, [0.1, "o", "from a pipe"])
    assert load_console_bytes("-", stdin=io.BytesIO(recording)) == b"from a pipe"


def test_stdin_binary_is_an_error() -> None:
    with pytest.raises(InputError, match="stdin"):
        load_console_bytes("-", stdin=io.BytesIO(b"\x7fELF" + bytes(100)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_console_bytes(tmp_path / "nope.log")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_console_bytes(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.log"
    path.write_bytes(b"x")
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(InputError, match="permission denied"):
            load_console_bytes(path)
        return
    # Root reads any mode-000 file; a file that opens but cannot be read is the same failure
    # for an operator: /proc/self/mem fails its first read (EIO at address 0).
    with pytest.raises(InputError):
        load_console_bytes("/proc/self/mem")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "vmlinux.log"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + noise(4096))
    with pytest.raises(InputError, match="ELF"):
        load_console_bytes(path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_endless_binary_device_fails_fast() -> None:
    with pytest.raises(InputError, match="binary"):
        load_console_bytes("/dev/zero")


def test_qemu_casts_decode_to_their_log_twins(qemu_corpus: Path) -> None:
    casts = sorted(qemu_corpus.glob("*.cast"))
    assert casts, "the QEMU corpus has no .cast files"
    for recording in casts:
        twin = recording.with_suffix(".log")
        assert load_console_bytes(recording) == twin.read_bytes(), recording.name


def test_bundled_demo_is_the_shared_capture(repo_root: Path, qemu_corpus: Path) -> None:
    demo = repo_root / "crashcart" / "data" / "demo"
    for name in ("gpf_list_poison_panic.cast", "gpf_list_poison_panic.log"):
        assert (demo / name).read_bytes() == (qemu_corpus / name).read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    sniff_binary(data)
    with contextlib.suppress(InputError):
        decode_cast(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=20))
def test_arbitrary_event_lines_after_a_header_are_survived(lines: list[str | bytes]) -> None:
    body = b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "replace") for x in lines)
    assert isinstance(decode_cast(json.dumps(V2_HEADER).encode() + b"\n" + body), bytes)
