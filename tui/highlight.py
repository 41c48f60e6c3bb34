"""Highlighting crash lines, driven by the parser's events.

The parser decides which lines belong to a crash (CrashStarted / CrashGrew); this module only
decides how such a line looks, using the kernel package's own format regexes for the parts of a
line (register names, frames, the module list), so there is one definition of each format.
The live view finds crash lines on the emulated screen by their text: a line the parser saw is
drawn on one row, or on several when it is wider than the screen.
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict
from dataclasses import dataclass

from rich.style import Style

from crashcart.kernel.builder import (
    BARE_TAINT_RE,
    MODULES_RE,
    REGISTER_PAIR_RE,
    TAINT_LINE_RE,
    X86_RIP_RE,
)
from crashcart.kernel.frames import FRAME_RE, LOCATION_RE
from crashcart.kernel.lines import split_line


class Role(enum.Enum):
    HEADER = "header"
    PANIC = "panic"
    REGISTERS = "registers"
    FRAME = "frame"
    UNRELIABLE_FRAME = "unreliable"
    MODULES = "modules"
    TAINT = "taint"
    BODY = "body"


# The colours are the console's: a dark screen, so bright foregrounds carry the meaning.
STYLES: dict[str, Style] = {
    "header": Style(color="bright_white", bgcolor="red", bold=True),
    "panic": Style(color="bright_white", bgcolor="dark_red", bold=True, reverse=False),
    "register_name": Style(color="cyan"),
    "register_value": Style(color="bright_white"),
    "function": Style(color="bright_white", bold=True),
    "offset": Style(color="grey62"),
    "module": Style(color="yellow", bold=True),
    "unreliable": Style(dim=True),
    "modules_label": Style(color="magenta", bold=True),
    "taint": Style(color="yellow", bold=True),
    "body": Style(color="bright_white"),
    "search": Style(color="black", bgcolor="yellow"),
}

Span = tuple[int, int, Style]
# "Tainted: G    B   OE" (letters padded to fixed columns) or "Not tainted".
_TAINT_WORDS = re.compile(r"Not tainted|Tainted: [A-Z](?:[A-Z ]*[A-Z])?")


@dataclass(frozen=True, slots=True)
class CrashLine:
    """A line the parser put in a crash, with how to draw it."""

    crash_id: int
    number: int
    text: str
    role: Role


def classify(body: str, is_header: bool) -> Role:
    if is_header:
        return Role.HEADER
    stripped = body.strip()
    if stripped.startswith(("Kernel panic - not syncing", "---[ end Kernel panic")):
        return Role.PANIC
    if MODULES_RE.match(stripped):
        return Role.MODULES
    if TAINT_LINE_RE.search(stripped) or BARE_TAINT_RE.search(stripped) or "Tainted: " in body:
        return Role.TAINT
    if X86_RIP_RE.match(stripped) or REGISTER_PAIR_RE.search(stripped):
        return Role.REGISTERS
    frame = FRAME_RE.match(body)
    if frame is not None and frame.group("func") not in ("Code", "Call"):
        return Role.UNRELIABLE_FRAME if frame.group("q") else Role.FRAME
    return Role.BODY


def spans(text: str, role: Role) -> list[Span]:
    """Where the styles go in a crash line's full text (prefix included)."""
    body_at = len(text) - len(split_line(0, text).body)
    end = len(text.rstrip())
    words_at = len(text) - len(text[body_at:].lstrip())  # after a frame's indentation
    if role is Role.HEADER:
        return [(words_at, end, STYLES["header"])]
    if role is Role.PANIC:
        return [(words_at, end, STYLES["panic"])]
    if role is Role.UNRELIABLE_FRAME:
        return [(words_at, end, STYLES["unreliable"])]
    if role is Role.MODULES:
        return [(body_at, body_at + len("Modules linked in:"), STYLES["modules_label"])]
    if role is Role.TAINT:
        m = _TAINT_WORDS.search(text, body_at)
        return [] if m is None else [(m.start(), m.end(), STYLES["taint"])]
    result: list[Span] = []
    # The format regexes are anchored with ^, so they run on the body and spans are shifted.
    body = text[body_at:]
    if role is Role.REGISTERS:
        rip = X86_RIP_RE.match(body)
        if rip is not None:
            name_end = body_at + body.find(":")
            result.append(
                (body_at + len(body) - len(body.lstrip()), name_end, STYLES["register_name"])
            )
            return result + _locations(text, body_at)
        for m in REGISTER_PAIR_RE.finditer(body):
            result.append(
                (body_at + m.start("name"), body_at + m.end("name"), STYLES["register_name"])
            )
            result.append(
                (body_at + m.start("value"), body_at + m.end("value"), STYLES["register_value"])
            )
        return result
    if role is Role.FRAME:
        m = FRAME_RE.match(body)
        if m is None:
            return []
        result.append((body_at + m.start("func"), body_at + m.end("func"), STYLES["function"]))
        if m.group("off"):
            result.append((body_at + m.start("off") - 1, body_at + m.end("size"), STYLES["offset"]))
        if m.group("mod"):
            result.append(
                (body_at + m.start("mod") - 1, body_at + m.end("mod") + 1, STYLES["module"])
            )
        return result
    return _locations(text, body_at)


def _locations(text: str, start: int) -> list[Span]:
    result: list[Span] = []
    for m in LOCATION_RE.finditer(text, start):
        result.append((m.start("func"), m.end("func"), STYLES["function"]))
        if m.group("mod"):
            result.append((m.start("mod") - 1, m.end("mod") + 1, STYLES["module"]))
    return result


# How many crash lines the live view remembers for matching rows: several screens' worth.
LIVE_MEMORY = 4000


class Highlights:
    """Crash lines by stream line number (for scrollback) and by text (for the live screen)."""

    def __init__(self) -> None:
        self.by_number: dict[int, CrashLine] = {}
        self._recent: OrderedDict[str, CrashLine] = OrderedDict()
        self._pieces: dict[str, tuple[CrashLine, int]] = {}
        self._pieces_columns = 0
        self.crash_starts: list[int] = []  # header line numbers, in order
        self.version = 0

    def started(self, crash_id: int, number: int, text: str) -> CrashLine:
        self.crash_starts.append(number)
        return self._add(CrashLine(crash_id, number, text, Role.HEADER))

    def grew(self, crash_id: int, number: int, text: str) -> CrashLine:
        role = classify(split_line(number, text).body, is_header=False)
        return self._add(CrashLine(crash_id, number, text, role))

    def _add(self, line: CrashLine) -> CrashLine:
        self.version += 1  # drawn rows may now match a crash line
        self.by_number[line.number] = line
        key = line.text.rstrip()
        if key:
            self._recent[key] = line
            self._recent.move_to_end(key)
            if len(self._recent) > LIVE_MEMORY:
                self._recent.popitem(last=False)
            if self._pieces_columns:
                self._add_pieces(key, line, self._pieces_columns)
        return line

    def for_row(self, row_text: str, columns: int) -> tuple[CrashLine, int] | None:
        """The crash line drawn on a screen row, and the row's offset into it."""
        key = row_text.rstrip()
        if not key:
            return None
        if columns != self._pieces_columns:
            self._pieces = {}
            self._pieces_columns = columns
            for text, line in self._recent.items():
                self._add_pieces(text, line, columns)
        return self._pieces.get(key)

    def _add_pieces(self, text: str, line: CrashLine, columns: int) -> None:
        for offset in range(0, len(text), columns):
            piece = text[offset : offset + columns].rstrip()
            if piece:
                self._pieces[piece] = (line, offset)
        if len(self._pieces) > LIVE_MEMORY * 4:  # forget the oldest lines' pieces
            for stale in list(self._pieces)[: len(self._pieces) // 2]:
                del self._pieces[stale]


def clip_spans(line_spans: list[Span], offset: int, width: int) -> list[Span]:
    """The spans of a line that fall on the row showing text[offset:offset+width]."""
    result: list[Span] = []
    for start, end, style in line_spans:
        s = max(start - offset, 0)
        e = min(end - offset, width)
        if s < e:
            result.append((s, e, style))
    return result
