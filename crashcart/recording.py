"""Load the console bytes of a capture: a raw `.log`, an asciicast `.cast` (v2/v3), or stdin.

The parser wants the exact byte stream the server sent, so a recording is flattened back to the
bytes of its output events and every other kind of file is taken as raw console bytes. Console
logs are messy (escape sequences, line noise, a wrong baud rate), so only files that are clearly
not a console capture (executables, archives, images, databases) are refused.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

__all__ = ["SNIFF_BYTES", "InputError", "decode_cast", "load_console_bytes", "sniff_binary"]

SNIFF_BYTES = 64 * 1024
# A console log may hold some escape sequences and a burst of garbage; only a file in which
# more than this share of the sniffed bytes are NULs / non-text control bytes is called binary.
BINARY_SHARE = 0.30

_COMPRESSED_HINT = "decompress it first (e.g. `zcat FILE | crashcart analyze -`)"

# (magic, what it is, hint). Checked before the control-byte share because compressed data has
# few control bytes and would otherwise pass as text.
_MAGICS: tuple[tuple[bytes, str, str | None], ...] = (
    (b"\x7fELF", "an ELF executable", None),
    (b"\x1f\x8b", "gzip-compressed data", _COMPRESSED_HINT),
    (b"PK\x03\x04", "a zip archive", None),
    (b"PK\x05\x06", "a zip archive", None),
    (b"\xfd7zXZ\x00", "xz-compressed data", _COMPRESSED_HINT),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", _COMPRESSED_HINT),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"%PDF-", "a PDF document", None),
    (b"SQLite format 3\x00", "an SQLite database", None),
)

# Bytes that turn up in real console text: whitespace, ESC (ANSI sequences), BEL, BS, the SO/SI
# charset shifts some firmware emits, DEL, and everything >= 0x20 (UTF-8, line noise).
_TEXTISH = bytes([0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x1B, *range(0x20, 0x100)])


class InputError(Exception):
    """An input that cannot be read as a console stream. `str(err)` is a one-line message."""


def _is_bzip2(head: bytes) -> bool:
    # "BZh" alone is plain text a log could start with; require the level digit and the magic of
    # the first block (or of the end-of-stream marker, for an empty stream).
    return (
        len(head) >= 10
        and head[:3] == b"BZh"
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90")
    )


def sniff_binary(head: bytes) -> str | None:
    """Say what `head` (an input's first bytes) is if it is not a console capture, else None."""
    for magic, what, hint in _MAGICS:
        if head.startswith(magic):
            return f"{what}{'; ' + hint if hint else ''}"
    if _is_bzip2(head):
        return f"bzip2-compressed data; {_COMPRESSED_HINT}"
    sample = head[:SNIFF_BYTES]
    if not sample:
        return None
    bad = len(sample.translate(None, delete=_TEXTISH))
    if bad / len(sample) > BINARY_SHARE:
        return f"binary data ({bad * 100 // len(sample)} % NUL/control bytes)"
    return None


def _encode_event_text(text: str) -> bytes:
    # Recorders decode the console as UTF-8; some keep undecodable bytes as lone surrogates
    # (surrogateescape), which this turns back into the original bytes.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _parse_header(line: str) -> dict[str, object] | None:
    try:
        header = json.loads(line)
    except ValueError:
        return None
    if isinstance(header, dict) and header.get("version") in (2, 3):
        return header
    return None


def _decode_v1(text: str) -> bytes | None:
    # asciicast v1 is one JSON document: {"version": 1, ..., "stdout": [[delay, data], ...]}.
    try:
        doc = json.loads(text, strict=False)
    except ValueError:
        return None
    if not (isinstance(doc, dict) and doc.get("version") == 1):
        return None
    frames = doc.get("stdout")
    if not isinstance(frames, list):
        return None
    out = bytearray()
    for frame in frames:
        if isinstance(frame, list) and len(frame) >= 2 and isinstance(frame[1], str):
            out += _encode_event_text(frame[1])
    return bytes(out)


def decode_cast(data: bytes, name: str = "recording") -> bytes:
    """Concatenate the output ("o") events of an asciicast v2/v3 recording back into bytes.

    v2 events are `[time, code, data]` and v3 events `[interval, code, data]`; only the order of
    events matters here, so both read the same. Input, resize, marker and exit events are ignored.
    A malformed event line is skipped (a recording cut short or with garbage in it still yields
    what it holds), but a file without a valid header is not a recording and raises InputError.
    """
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = iter(text.split("\n"))
    header = None
    for line in lines:
        if line.strip():
            header = _parse_header(line)
            break
    if header is None:
        v1 = _decode_v1(text)
        if v1 is not None:
            return v1
        raise InputError(f"{name}: not an asciicast recording (no valid v2/v3 header line)")

    out = bytearray()
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # v3 allows comment lines
            continue
        try:
            event = json.loads(stripped, strict=False)
        except ValueError:
            continue
        if (
            isinstance(event, list)
            and len(event) >= 3
            and isinstance(event[0], int | float)
            and not isinstance(event[0], bool)
            and event[1] == "o"
            and isinstance(event[2], str)
        ):
            out += _encode_event_text(event[2])
    return bytes(out)


def _looks_like_cast(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").removeprefix("\ufeff")
    return _parse_header(first) is not None


def _read_all(stream: BinaryIO, name: str) -> bytes:
    # Sniff the head before reading the rest, so `analyze /dev/zero` or a huge binary fails fast
    # instead of filling memory.
    head = stream.read(SNIFF_BYTES)
    what = sniff_binary(head)
    if what is not None:
        raise InputError(f"{name}: not a console log or recording: {what}")
    return head + stream.read()


def load_console_bytes(source: str | os.PathLike[str], stdin: BinaryIO | None = None) -> bytes:
    """Return the console bytes held by `source`: a path, or "-" for standard input.

    A `.cast` file is decoded as asciicast; standard input is decoded as asciicast when it starts
    with an asciicast header; anything else is raw console bytes. Raises InputError for a missing,
    unreadable, directory or binary input.
    """
    if str(source) == "-":
        name = "stdin"
        if stdin is None:
            if sys.stdin is None:
                raise InputError("stdin: no standard input")
            stdin = sys.stdin.buffer
        try:
            data = _read_all(stdin, name)
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
        return decode_cast(data, name) if _looks_like_cast(data[:SNIFF_BYTES]) else data

    path = Path(source)
    name = str(source)
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not a console log or recording")
    try:
        with path.open("rb") as fh:
            data = _read_all(fh, name)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a console log or recording") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".cast":
        return decode_cast(data, name)
    return data
