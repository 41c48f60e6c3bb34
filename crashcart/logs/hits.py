"""The lines that explain a death: kinds of hits as data, and finding them in a log.

Each row of `HIT_KINDS` is (kind, bytes regex, description). Rows are tried in order on a
candidate line and the first that matches names it, so specific rows come before general ones
(`BUG: soft lockup` before `BUG:`). All rows together form one search pattern that `LogIndex`
runs over the whole file as one pass per distinct literal (the longest plain text outside
groups), so rows are written to share literals where they can: both `INFO: (?:...)` rows are
one pass, `oom-kill(?:er|:)` covers "invoked oom-killer" and "oom-kill:constraint=" (the line
before "Killed process" since 4.19), and I/O errors are found by `error, dev `.

Only kernel lines count: syslog lines of other programs are skipped (a daemon logging
"I/O error" about a socket is not a disk failing). For kernel crashes the real crash parser
reads the region around the hit, prefixes stripped, and its report is attached. Hits that fall
inside that report (the panic after an oops) merge into it; the same kind repeating within a
few lines (an I/O error storm) folds into one hit with a count; the same kernel message found
in several logs (kern.log, syslog and the journal all hold it) is one hit, `also` in the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crashcart.kernel import CrashParser, CrashReport
from crashcart.logs.index import compile_search
from crashcart.logs.readers import MAX_LINE_BYTES
from crashcart.logs.timeline import Stamp, TimedLog, display, format_time

__all__ = ["CRASH_KINDS", "HIT_KINDS", "Hit", "find_hits", "merge_hits"]

HIT_KINDS: tuple[tuple[str, bytes, str], ...] = (
    (
        "panic",
        rb"Kernel panic - not syncing",
        "the kernel gave up (panic): the machine stopped or rebooted here",
    ),
    (
        "mce",
        rb"\[Hardware Error\]",
        "a machine check or firmware-reported hardware error (CPU, memory, PCIe)",
    ),
    (
        "mce",
        rb"EDAC MC\d+: \d+ [CU]E ",
        "the memory controller reported a corrected (CE) or uncorrected (UE) memory error",
    ),
    (
        "soft_lockup",
        rb"BUG: soft lockup",
        "a CPU ran kernel code for too long without scheduling (soft lockup)",
    ),
    (
        "soft_lockup",
        rb"[Hh]ard LOCKUP",
        "a CPU stopped taking interrupts (hard lockup)",
    ),
    (
        "soft_lockup",
        rb"INFO: (?:rcu_\w+ (?:self-)?detected stall)",
        "an RCU stall: a CPU or task held up RCU grace periods",
    ),
    (
        "hung_task",
        rb"INFO: (?:task .{1,80}? blocked for more than \d+ seconds)",
        "a task stuck in uninterruptible sleep (D state), usually on I/O or a lock",
    ),
    (
        "oom",
        rb"oom-kill(?:er|:)",
        "memory ran out and the OOM killer ended a process",
    ),
    (
        "bug",
        rb"\bBUG(?::| at) ",
        "a kernel assertion failed (BUG/BUG_ON) or the kernel detected a bug",
    ),
    (
        "oops",
        rb"\[#\d+\]",
        "the kernel faulted (oops): the task died and the kernel may be unstable",
    ),
    (
        "warning",
        rb"\bWARNING: ",
        "a kernel warning (WARN_ON) with a backtrace; the system carried on",
    ),
    (
        "fs_error",
        rb"EXT4-fs (?:error|critical)"
        rb"|EXT4-fs \([^)]+\): (?:Remounting filesystem read-only|.*I/O error)",
        "ext4 found an error or corruption (the file system may have gone read-only)",
    ),
    (
        "fs_error",
        rb"XFS \([^)]+\): .*(?:[Cc]orruption|Internal error|I/O error|[Ss]hut(?:ting)? ?down)",
        "XFS found corruption or an I/O error (it may have shut the file system down)",
    ),
    (
        "fs_error",
        rb"BTRFS(?: error| critical|: error| warning \([^)]+\): .*(?:csum failed|checksum error))",
        "btrfs found an error or a checksum failure (it may have gone read-only)",
    ),
    (
        "io_error",
        rb"(?:I/O|critical (?:medium|target|nexus|space allocation|protection)) error, dev ",
        "a block device failed a read or write (disk, controller or path)",
    ),
    (
        "io_error",
        rb"Buffer I/O error",
        "a read or write of a file-system block failed on the device",
    ),
)

# Kinds for which the crash parser is run over the region around the hit.
CRASH_KINDS = frozenset(
    {"panic", "mce", "soft_lockup", "hung_task", "oom", "bug", "oops", "warning"}
)

_SEARCH = re.compile(b"|".join(pattern for _kind, pattern, _text in HIT_KINDS))
# Each row with the literals a matching line must hold: `in` tests are far cheaper than
# running every row's regex on every candidate line.
_ROWS = tuple(
    (kind, re.compile(pattern), tuple(lit for lit, _c in compile_search(pattern).literals), text)
    for kind, pattern, text in HIT_KINDS
)

_PANIC_DESCRIPTION = next(text for kind, _p, text in HIT_KINDS if kind == "panic")

REGION_BEFORE = 300  # an OOM report starts long before its "Killed process" line
REGION_AFTER = 600  # a panic after an oops, a long call trace, a register dump per CPU
FOLD_GAP = 20  # the same kind again within this many lines is a repeat, not a new hit


@dataclass(slots=True)
class Hit:
    """One event in a log; `line` and context line numbers are 1-based."""

    file: str
    line: int
    time: float | None
    kind: str
    text: str
    description: str
    context: list[tuple[int, str]] = field(default_factory=list)
    crash: dict[str, Any] | None = None
    kinds: list[str] = field(default_factory=list)  # every kind merged into this hit
    repeats: int = 0  # further occurrences folded into it
    last_line: int = 0  # line of the last merged or folded occurrence
    also: list[tuple[str, int]] = field(default_factory=list)  # same message in other logs
    source_kind: str = ""
    order: int = 0  # position of the file among the logs
    message: str = ""  # the kernel message with its printk stamp, for finding duplicates
    has_mono: bool = False

    def to_dict(self, index: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if index is not None:
            out["index"] = index
        out.update(
            {
                "file": self.file,
                "line": self.line,
                "time": format_time(self.time),
                "kind": self.kind,
                "text": self.text,
                "context": [{"line": n, "text": t} for n, t in self.context],
                "crash": self.crash,
                "description": self.description,
                "kinds": list(self.kinds),
                "repeats": self.repeats,
                "last_line": self.last_line,
                "also": [{"file": f, "line": n} for f, n in self.also],
                "source": self.source_kind,
            }
        )
        return out


def classify(line: bytes) -> tuple[str, str] | None:
    """(kind, description) of the first row matching this line, if any."""
    for kind, regex, literals, text in _ROWS:
        if literals and not any(lit in line for lit in literals):
            continue
        if regex.search(line):
            return kind, text
    return None


def _crash_report(tl: TimedLog, i: int) -> tuple[dict[str, Any] | None, int]:
    """Run the crash parser over the kernel lines around line i (0-based).

    Returns the report that covers line i (its line numbers made the file's, 1-based) and the
    last file line it covers (0-based; i when there is none).
    """
    start = max(i - REGION_BEFORE, 0)
    mapping: list[int] = []  # parser line number - 1 -> file line
    parser = CrashParser()
    for j, text in tl.log.lines(start, i + REGION_AFTER + 1):
        stamp = tl.parser.parse(text)
        if stamp.syslog and not stamp.kernel:
            continue  # another program's line between kernel lines: not part of the crash
        mapping.append(j)
        parser.feed_line(stamp.body)
    parser.close()
    chosen: CrashReport | None = None
    for report in parser.reports:
        if report.kind == "reboot" or not report.start_line or not report.end_line:
            continue
        first = mapping[report.start_line - 1]
        last = mapping[min(report.end_line, len(mapping)) - 1]
        if first <= i <= last:
            chosen = report
            break
    if chosen is None:
        return None, i
    first = mapping[chosen.start_line - 1]
    last = mapping[min(chosen.end_line, len(mapping)) - 1]
    crash = chosen.to_dict()
    crash["start_line"] = first + 1
    crash["end_line"] = last + 1
    return crash, last


def find_hits(tl: TimedLog, before: int = 20, after: int = 5) -> list[Hit]:
    """The hits of one log, in file order."""
    hits: list[Hit] = []
    span_end = -1  # last line (0-based) of the current hit's crash report
    index = tl.log.index
    n: int | None = None
    for i, offset in index.search_offsets(_SEARCH):
        raw = index.line_at(offset, MAX_LINE_BYTES)
        text = raw.decode("utf-8", "replace")
        if tl.parser.other_program(text):
            continue
        found = classify(raw)
        if found is None:
            continue
        kind, description = found
        stamp = tl.parser.parse(text)
        current = hits[-1] if hits else None
        if current is not None and i <= span_end:
            _merge_kind(current, kind, i)
            continue
        if (
            current is not None
            and current.crash is None
            and current.kind == kind
            and i - (current.last_line - 1) <= FOLD_GAP
        ):
            current.repeats += 1
            current.last_line = i + 1
            continue
        crash: dict[str, Any] | None = None
        span_end = i
        if kind in CRASH_KINDS:
            crash, span_end = _crash_report(tl, i)
        if n is None:
            n = len(tl.log)
        hits.append(_make_hit(tl, i, text, stamp, kind, description, crash, before, after, n))
    return hits


def _merge_kind(hit: Hit, kind: str, i: int) -> None:
    if kind not in hit.kinds:
        hit.kinds.append(kind)
    if kind == "panic" and hit.kind != "panic":
        # What started it stays the text; how it ended is the kind.
        hit.kind = "panic"
        hit.description = _PANIC_DESCRIPTION
    hit.last_line = i + 1


def _make_hit(
    tl: TimedLog,
    i: int,
    text: str,
    stamp: Stamp,
    kind: str,
    description: str,
    crash: dict[str, Any] | None,
    before: int,
    after: int,
    n: int,
) -> Hit:
    context = [
        (j + 1, display(line))
        for j, line in tl.log.lines(max(i - before, 0), min(i + after + 1, n))
    ]
    return Hit(
        file=tl.name,
        line=i + 1,
        time=tl.time(i),
        kind=kind,
        text=display(text),
        description=description,
        context=context,
        crash=crash,
        kinds=[kind],
        last_line=i + 1,
        source_kind=tl.log.kind,
        order=tl.order,
        message=display(stamp.body).strip(),
        has_mono=stamp.mono_us is not None,
    )


def _sort_key(hit: Hit) -> tuple[int, float, int, int]:
    if hit.time is None:
        return (1, 0.0, hit.order, hit.line)
    return (0, hit.time, hit.order, hit.line)


def _same_event(a: Hit, b: Hit) -> bool:
    if a.file == b.file or a.message != b.message:
        return False
    if a.has_mono and b.has_mono:
        return True  # the printk stamp is in the message: same boot, same moment
    return a.time is not None and b.time is not None and abs(a.time - b.time) <= 2.0


def merge_hits(hits: list[Hit]) -> list[Hit]:
    """All logs' hits in time order (untimed ones last, in file order), duplicates merged."""
    kept: list[Hit] = []
    by_message: dict[str, list[Hit]] = {}
    for hit in sorted(hits, key=_sort_key):
        twins = by_message.setdefault(hit.message, [])
        twin = next((k for k in twins if _same_event(k, hit)), None)
        if twin is None:
            twins.append(hit)
            kept.append(hit)
            continue
        twin.also.append((hit.file, hit.line))
        for kind in hit.kinds:
            _merge_kind(twin, kind, twin.last_line - 1)
        if twin.crash is None and hit.crash is not None:
            twin.crash = hit.crash
    return kept
