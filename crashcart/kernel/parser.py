"""The streaming crash parser: console bytes or lines in, crash events and reports out.

Most of a console stream is not a crash. Outside a crash the parser searches whole buffers for
the few substrings that can start one (`formats.MARKERS`), the way grep does, and only walks line
by line from a candidate on; inside a crash it reads every line. That keeps `analyze` near disk
speed on huge logs and the live view's cost per line tiny.

A crash ends at its own terminator (`---[ end trace ]---`, `---[ end Kernel panic`, a
sanitizer's closing rule) plus the epilogue that follows, when another crash starts, or after
`IDLE_LIMIT` lines that do not look like part of it. At end of stream an open crash is reported
as it is, marked truncated when it stopped mid-report.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from crashcart.kernel.builder import TAIL_RE, CrashBuilder
from crashcart.kernel.formats import (
    BOOT_BANNER_RE,
    FORMATS,
    MARKERS,
    ORDERLY_REBOOT_RE,
    SCAN_ANCHORS,
    SCAN_PATTERNS,
    CrashFormat,
)
from crashcart.kernel.lines import KernelLine, clean_line, split_line
from crashcart.kernel.report import CrashReport

IDLE_LIMIT = 40  # unrelated lines after which an open crash is considered over
CONTEXT_LINES = 8  # lines kept from before a header: openers, WARN messages, stated causes
BANNER_QUIET_LINES = 400  # boot banners this close together are one boot, not two
MAX_PENDING_BYTES = 1 << 16  # an unterminated "line" longer than this is cut into pieces

_MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKERS))
_SCAN_RE = re.compile("|".join([*(re.escape(a) for a in SCAN_ANCHORS), *SCAN_PATTERNS]))
_OPENER_RE = re.compile(r"^(?:-+\[ cut here \]-+|={40,})\s*$")
_RULE_RE = re.compile(r"^={20,}\s*$")
_CAUSE_RE = re.compile(
    r"^(?:sysrq: (?:SysRq : )?Trigger a crash|Failed to execute \S+ \(error -\d+\)|"
    r"Starting init: \S+ exists but couldn't execute it|No filesystem could mount root|"
    r"VFS: Cannot open root device|Please append a correct \"root=\" boot option|"
    r"kernel tried to execute NX-protected page|list_(?:add|del) corruption|refcount_t: |"
    r"usercopy: Kernel memory (?:exposure|overwrite) attempt|Buffer overflow detected|"
    r"Uhhuh\. NMI received for unknown reason)"
)
_NON_BLANK_RE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class CrashStarted:
    crash_id: int
    kind: str
    header: str
    line: int
    text: str = ""  # the header line as shown (prefix included), for a live view to find it


@dataclass(frozen=True, slots=True)
class CrashGrew:
    crash_id: int
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class CrashCompleted:
    crash_id: int
    report: CrashReport


ParserEvent = CrashStarted | CrashGrew | CrashCompleted


def required_literal(pattern: str) -> str:
    """The longest run of plain text every match of `pattern` must contain ("" if unsure).

    Checking `literal in line` (a fast C substring search) before running a format's regex
    skips nearly all of them on lines that merely mention a marker word. Only text outside
    groups and character classes counts, and nothing is assumed of a pattern with a top-level
    alternation.
    """
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        literal: str | None = None
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            literal = nxt if not nxt.isalnum() else None
            i += 2
        elif c == "[":
            j = i + 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
        elif c in "()":
            depth += 1 if c == "(" else -1
            i += 1
        elif c == "|" and depth == 0:
            return ""
        elif c in ".^$":
            i += 1
        elif c in "?*+{":
            if c == "{":
                i = pattern.find("}", i) + 1 or n
            else:
                i += 1
            if run:
                run.pop()  # the quantified character is optional
            runs.append("".join(run))
            run = []
            continue
        else:
            literal = c
            i += 1
        if literal is not None and depth == 0:
            run.append(literal)
            continue
        if run:
            runs.append("".join(run))
            run = []
    runs.append("".join(run))
    return max(runs, key=len)


_HINTS: tuple[tuple[CrashFormat, str], ...] = tuple(
    (fmt, required_literal(fmt.pattern.pattern)) for fmt in FORMATS
)


def _kernel_line(number: int, raw: str) -> KernelLine:
    """A raw console line as the parser reads it: cleaned, prefix split off."""
    return split_line(number, clean_line(raw.rstrip("\r\n")))


def match_format(body: str) -> tuple[CrashFormat, re.Match[str]] | None:
    """The first crash format whose header matches this line body, if any."""
    if not _MARKER_RE.search(body):
        return None
    for fmt, hint in _HINTS:
        if hint and hint not in body:
            continue
        m = fmt.pattern.search(body)
        if m is None:
            continue
        if any(ign.search(body) for ign in fmt.ignore):
            return None
        return fmt, m
    return None


class CrashParser:
    """Feed console output incrementally with `feed` (bytes) or `feed_line` (one line).

    Every call returns the events it caused; completed reports also accumulate in `reports`.
    Call `close` at end of stream to complete (or mark truncated) an open crash.
    """

    def __init__(self, idle_limit: int = IDLE_LIMIT) -> None:
        self.reports: list[CrashReport] = []
        self.line_count = 0
        self._idle_limit = idle_limit
        self._builder: CrashBuilder | None = None
        self._crash_id = 0
        # The last lines before the current position, as context for a header that follows.
        # Lines skipped by the fast path are kept raw and only cleaned if a header needs them.
        self._recent: deque[KernelLine | tuple[int, str]] = deque(maxlen=CONTEXT_LINES)
        self._partial = b""
        self._overlong = False
        self._seen_output = False
        self._last_banner_line = -BANNER_QUIET_LINES
        self._orderly_reboot = False

    # -- public API --------------------------------------------------------------------------
    @property
    def in_crash(self) -> bool:
        return self._builder is not None

    def feed(self, data: bytes) -> list[ParserEvent]:
        """Feed raw console bytes in any chunking."""
        events: list[ParserEvent] = []
        if self._overlong:
            # The rest of an absurdly long line: drop it up to its end, as a whole feed would
            # (a line is capped when cleaned), so line numbers never depend on chunking.
            k = data.find(b"\n")
            if k < 0:
                return events
            data = data[k:]
            self._overlong = False
        buf = self._partial + data if self._partial else data
        last_nl = buf.rfind(b"\n")
        if last_nl < 0:
            self._partial = buf
            if len(buf) > MAX_PENDING_BYTES:
                self._partial = buf[:MAX_PENDING_BYTES]
                self._overlong = True
            return events
        self._partial = buf[last_nl + 1 :]
        self._feed_text(buf[: last_nl + 1].decode("utf-8", "replace"), events)
        return events

    def feed_line(self, line: str) -> list[ParserEvent]:
        """Feed one line of text (no trailing newline needed)."""
        events: list[ParserEvent] = []
        self.line_count += 1
        self._process(_kernel_line(self.line_count, line), events)
        self._saw(line)
        return events

    def close(self) -> list[ParserEvent]:
        """End of stream: flush the last partial line and finish any open crash."""
        events: list[ParserEvent] = []
        if self._partial:
            tail, self._partial = self._partial, b""
            self._feed_text(tail.decode("utf-8", "replace") + "\n", events)
        if self._builder is not None:
            self._finish(events, at_end_of_stream=True)
        return events

    def flush_idle(self) -> list[ParserEvent]:
        """The console went quiet: complete an open crash that has already said its last word.

        A session calls this after some seconds of silence, so that a box that hangs right after
        its oops still gets its incident written without waiting for more output.
        """
        events: list[ParserEvent] = []
        b = self._builder
        if b is not None and (
            b.ended or b.panic_ended or b.panic or (b.has_frames and not b.trace_open)
        ):
            self._finish(events)
        return events

    # -- the loop ----------------------------------------------------------------------------
    def _feed_text(self, text: str, events: list[ParserEvent]) -> None:
        """Process text made of complete lines (ends with a newline)."""
        pos = 0
        end = len(text)
        while pos < end:
            if self._builder is None:
                m = _SCAN_RE.search(text, pos)
                stop = end if m is None else text.rfind("\n", pos, m.start()) + 1
                if stop > pos:
                    self._skip(text, pos, stop)
                    pos = stop
                if m is None:
                    return
            nl = text.find("\n", pos)
            if nl < 0:
                nl = end
            raw = text[pos:nl]
            pos = nl + 1
            self.line_count += 1
            self._process(_kernel_line(self.line_count, raw), events)
            self._saw(raw)

    def _saw(self, raw: str) -> None:
        """After a line: the console has said something (a banner after this is a reboot).

        Judged on the raw line, as `_skip` judges the lines it passes over, so that whether a
        reboot is reported never depends on how the bytes were fed.
        """
        if not self._seen_output and _NON_BLANK_RE.search(raw):
            self._seen_output = True

    def _skip(self, text: str, start: int, stop: int) -> None:
        """Account for lines that cannot start a crash without looking at each one."""
        # No slicing of the whole segment: it may be megabytes, and copying it would cost more
        # than the search that found it.
        count = text.count("\n", start, stop)
        if not self._seen_output and _NON_BLANK_RE.search(text, start, stop):
            self._seen_output = True
        # Keep the last few lines as context for a header that may follow.
        window = text[max(start, stop - (CONTEXT_LINES + 1) * 256) : stop]
        tail = window.split("\n")[:-1][-CONTEXT_LINES:]
        first_number = self.line_count + count - len(tail) + 1
        for i, raw in enumerate(tail):
            self._recent.append((first_number + i, raw))
        self.line_count += count

    def _process(self, line: KernelLine, events: list[ParserEvent]) -> None:
        body = line.body
        builder = self._builder
        if builder is not None and (ORDERLY_REBOOT_RE.search(body) or BOOT_BANNER_RE.search(body)):
            # The machine is going down or starting again: whatever was open is over.
            self._finish(events)
            builder = None
        found = match_format(body)
        if builder is None:
            if found is None:
                self._note_plain(line, events)
                return
            self._start(found[0], found[1], line, events)
            return
        if found is not None:
            fmt, m = found
            if fmt.panic:
                builder.set_panic(fmt, m)
                builder.add(line)
                events.append(CrashGrew(self._crash_id, line.number, line.text))
                return
            if not fmt.weak and not self._continues(builder, fmt):
                self._finish(events)
                self._start(fmt, m, line, events)
                return
        if builder.caller and line.caller and line.caller != builder.caller:
            # Another CPU or task printing in the middle of this crash: not ours, not an end.
            builder.add(line)
            return
        if builder.ended and not builder.panic and not TAIL_RE.match(body):
            self._finish(events)
            self._process(line, events)
            return
        if builder.panic_ended and not TAIL_RE.match(body):
            self._finish(events)
            self._process(line, events)
            return
        belongs = builder.add(line)
        if belongs:
            events.append(CrashGrew(self._crash_id, line.number, line.text))
        elif builder.idle >= self._idle_limit:
            self._finish(events)

    def _continues(self, builder: CrashBuilder, fmt: CrashFormat) -> bool:
        """Does this strong header belong to the open crash rather than start a new one?"""
        # A second copy of the same kind of report without a trace yet, or a header that an
        # oops prints as part of itself (KASAN's GPF explanation, a MCE's follow-on lines).
        if fmt.kind in ("mce",) and builder.fmt.kind == "mce":
            return True
        if fmt.name == "bug" and not builder.has_frames and builder.fmt.kind not in ("warning",):
            # "BUG: ..." lines inside a fault header (e.g. a second BUG line of the same oops).
            return len(builder.lines) < 3
        return False

    def _start(
        self, fmt: CrashFormat, m: re.Match[str], line: KernelLine, events: list[ParserEvent]
    ) -> None:
        previous = self._previous_line()
        boxed = previous is not None and _RULE_RE.match(previous.body.strip()) is not None
        if fmt.notice_when_boxed and boxed:
            self._note_plain(line, events)
            return
        self._crash_id += 1
        builder = CrashBuilder(fmt, m, line)
        if fmt.panic:
            builder.set_panic(fmt, m)
        # Pull in an opener (`------------[ cut here ]------------`, KASAN's `=====`) printed
        # just before the header, so oops.txt reads like the screen did.
        # WARN(cond, fmt) prints its message between the opener and the header: keep both.
        # The kernel's own account of the cause, printed just before some panics ("sysrq:
        # Trigger a crash", "Failed to execute /init (error -8)"), belongs in the report too.
        context = self._context_lines()
        first = len(context)
        for back in range(len(context) - 1, max(len(context) - 4, -1), -1):
            if _OPENER_RE.match(context[back].body.strip()):
                first = back
                break
        for back in range(first - 1, -1, -1):
            if _CAUSE_RE.search(context[back].body):
                first = back
        if first < len(context):
            builder.lines[0:0] = context[first:]
            builder.last_body_index += len(context) - first
        self._recent.clear()
        self._builder = builder
        events.append(
            CrashStarted(self._crash_id, fmt.kind, line.body.strip(), line.number, line.text)
        )

    def _finish(self, events: list[ParserEvent], at_end_of_stream: bool = False) -> None:
        builder = self._builder
        assert builder is not None
        self._builder = None
        truncated = at_end_of_stream and self._looks_cut_off(builder)
        end_index = len(builder.lines) - 1 if truncated else builder.last_body_index
        report = builder.report(end_index, truncated)
        self.reports.append(report)
        if report.panic:
            # A panic explains the reboot that follows it (panic=N): that one is not unexpected.
            self._orderly_reboot = True
        events.append(CrashCompleted(self._crash_id, report))
        # Lines after the crash's last body line were read but not reported; keep the last
        # few as context for what comes next.
        for leftover in builder.lines[end_index + 1 :][-CONTEXT_LINES:]:
            self._recent.append(leftover)

    @staticmethod
    def _looks_cut_off(builder: CrashBuilder) -> bool:
        if builder.ended or builder.panic_ended:
            return False
        if builder.fmt.guilty == "none" and builder.fmt.kind in ("oom", "mce", "vfs_root"):
            return False
        # Stopped inside a trace, or before any trace or register dump appeared.
        if builder.trace_open:
            return builder.last_body_index >= len(builder.lines) - 2
        return not builder.has_frames and builder.rip is None

    def _context_lines(self) -> list[KernelLine]:
        """The kept lines before the current one, cleaned."""
        return [self._cleaned(i) for i in range(len(self._recent))]

    def _previous_line(self) -> KernelLine | None:
        """The line just before the current one, cleaned on demand."""
        return self._cleaned(len(self._recent) - 1) if self._recent else None

    def _cleaned(self, index: int) -> KernelLine:
        """Kept line `index`, cleaned now if the fast path stored it raw (and kept so)."""
        item = self._recent[index]
        if isinstance(item, tuple):
            item = self._recent[index] = _kernel_line(*item)
        return item

    def _note_plain(self, line: KernelLine, events: list[ParserEvent]) -> None:
        """A line outside any crash: remember it as context and watch for reboots."""
        body = line.body
        if ORDERLY_REBOOT_RE.search(body):
            self._orderly_reboot = True
        elif BOOT_BANNER_RE.search(body):
            if (
                self._seen_output
                and not self._orderly_reboot
                and line.number - self._last_banner_line > BANNER_QUIET_LINES
            ):
                self._report_reboot(line, events)
            self._last_banner_line = line.number
            self._orderly_reboot = False
        self._recent.append(line)

    def _report_reboot(self, line: KernelLine, events: list[ParserEvent]) -> None:
        self._crash_id += 1
        report = CrashReport(
            kind="reboot",
            title="unexpected kernel reboot",
            message=line.body.strip(),
            start_line=line.number,
            end_line=line.number,
            lines=[line.text],
        )
        self.reports.append(report)
        events.append(
            CrashStarted(self._crash_id, "reboot", report.message, line.number, line.text)
        )
        events.append(CrashCompleted(self._crash_id, report))


def analyze_bytes(data: bytes) -> list[CrashReport]:
    """All crashes in a complete console capture, in order of appearance."""
    parser = CrashParser()
    parser.feed(data)
    parser.close()
    return parser.reports


def analyze_text(text: str) -> list[CrashReport]:
    return analyze_bytes(text.encode("utf-8", "surrogateescape"))


def analyze_lines(lines: Iterable[str]) -> list[CrashReport]:
    parser = CrashParser()
    for line in lines:
        parser.feed_line(line)
    parser.close()
    return parser.reports
