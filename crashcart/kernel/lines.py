"""From console bytes to clean kernel lines.

A serial console delivers `\\r\\n`, BIOS and shell escape sequences, invalid UTF-8 from a dying
host, and sometimes 100 kB without a newline. Everything downstream wants one clean line at a
time, with the printk prefix (`<4>`, `[  12.345678]`, `[ T123]`) split off so that patterns can be
written against what the kernel actually said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line longer than this is cut: nothing the kernel prints about a crash is that long, and a
# garbage flood must not make the parser quadratic or the process huge.
MAX_LINE_CHARS = 4096

# CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), other two-byte escapes, and C1 CSI.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x1b."
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Control characters other than TAB; what is left after escapes are removed.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]")

_PREFIX = re.compile(
    r"^(?:<(?P<level>\d{1,2})>)?"
    r"(?:\[\s*(?P<ts>\d+\.\d+)\])?"
    r"(?:\[\s*(?P<caller>[TC]\d+)\])?"
    r" ?"
)


def clean_line(raw: str) -> str:
    """Remove escape sequences and control characters; cap the length."""
    if "\x1b" in raw or "\x9b" in raw:
        raw = _ESCAPES.sub("", raw)
    if len(raw) > MAX_LINE_CHARS:
        raw = raw[:MAX_LINE_CHARS]
    if _CONTROLS.search(raw):
        raw = _CONTROLS.sub("", raw)
    return raw


@dataclass(slots=True, frozen=True)
class KernelLine:
    """One console line, split into the printk prefix and the message body."""

    number: int  # 1-based line number in the stream
    text: str  # the cleaned line as shown (prefix included)
    body: str  # the message without level, timestamp and caller id
    timestamp: float | None = None
    caller: str | None = None  # "T123" (task) or "C1" (cpu) with CONFIG_PRINTK_CALLER
    level: int | None = None


# A printk prefix after other text on the same line: a login prompt or a shell's output that
# did not end with a newline before the kernel spoke ("syzkaller login: [   50.9] WARNING: ...").
_LATE_PREFIX = re.compile(r"(?:<\d{1,2}>)?\[\s*\d+\.\d{6}\](?:\[\s*[TC]\d+\])? ?")


def split_line(number: int, text: str) -> KernelLine:
    """Split a cleaned line into prefix fields and body."""
    m = _PREFIX.match(text)
    if m is None or m.end() == 0:
        late = _LATE_PREFIX.search(text, 0, 200)
        if late is None:
            return KernelLine(number, text, text)
        m = _PREFIX.match(text, late.start())
        if m is None:
            return KernelLine(number, text, text)
    ts = m.group("ts")
    level = m.group("level")
    return KernelLine(
        number,
        text,
        text[m.end() :],
        float(ts) if ts is not None else None,
        m.group("caller"),
        int(level) if level is not None else None,
    )


class LineAssembler:
    """Turns a byte stream, fed in arbitrary chunks, into cleaned text lines.

    Line ends are `\\n` (with an optional `\\r` before it). A lone `\\r` is kept inside the line
    and dropped by cleaning, because consoles use it to redraw, not to end records. Bytes are
    decoded as UTF-8 with replacement, so garbage never raises.
    """

    def __init__(self, max_line_bytes: int = 1 << 16) -> None:
        self._pending = bytearray()
        self._max_line_bytes = max_line_bytes
        self._overlong = False  # dropping the rest of an absurd line until its newline

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        end = len(data)
        while start < end:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._append(data[start:])
                break
            self._append(data[start:nl])
            lines.append(self._take())
            start = nl + 1
        return lines

    def flush(self) -> list[str]:
        """The unterminated last line, if any (at end of stream)."""
        if self._pending or self._overlong:
            return [self._take()]
        return []

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def _append(self, chunk: bytes) -> None:
        room = self._max_line_bytes - len(self._pending)
        if len(chunk) > room:
            chunk = chunk[: max(room, 0)]
            self._overlong = True
        self._pending += chunk

    def _take(self) -> str:
        raw = bytes(self._pending)
        self._pending.clear()
        self._overlong = False
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return clean_line(raw.decode("utf-8", "replace"))
