"""When each log line was written, and the merged timeline of the hour before a crash.

Three clocks appear in logs:
- syslog's wall time: RFC 3339 (`2026-11-26T10:00:00.123456+00:00 host ident: ...`) or the
  traditional `Nov 26 10:00:00 host ident: ...`, local time without a year (the year comes from
  the file's mtime: a line dated after the file was last written is from the year before, which
  handles a file that spans New Year);
- `dmesg -T`'s `[Thu Nov 26 10:00:00 2026]`;
- the kernel's monotonic printk stamp `[   12.345678]`, seconds since boot: all a dmesg,
  vmcore-dmesg.txt or pstore record has. It becomes wall time once the boot's wall time is
  known. kern.log lines often carry both clocks (`... kernel: [   12.345678] ...`), and the
  journal gives both for every kernel message, so a kernel-clock file is matched to a boot by
  finding its own lines, same stamp and same text, in those logs: boot = wall - stamp.
A kernel-clock file is split into boots where its stamps go backwards. Lines without any stamp
(console noise, continuation lines) take the time of the line before them.
"""

from __future__ import annotations

import bisect
import calendar
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from itertools import pairwise

from crashcart.kernel.lines import clean_line
from crashcart.logs.readers import MAX_LINE_BYTES, LogFile
from crashcart.safetext import clean

__all__ = [
    "Stamp",
    "StampParser",
    "TimedLog",
    "TimelineLine",
    "attach_boots",
    "display",
    "format_time",
    "kernel_clock_timeline",
    "timeline",
]

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
_MONTH_ALT = "|".join(_MONTHS)
_ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)? +"
)
_TRAD_RE = re.compile(rf"({_MONTH_ALT}) ([ \d]?\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{{1,6}}))? +")
_DMESG_T_RE = re.compile(
    rf"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ({_MONTH_ALT}) +(\d{{1,2}}) "
    r"(\d\d):(\d\d):(\d\d) (\d{4})\] ?"
)
# After the syslog stamp: `host ident[pid]: ` (ident may not contain blanks, colons, brackets).
_HOST_IDENT_RE = re.compile(r"(\S+) +([^\s\[\]:]+)(?:\[(\d+)\])?: ?")
_MONO_RE = re.compile(r"(?:<\d{1,2}>)?\[\s*(\d{1,10})\.(\d{1,9})\]")
# A printk stamp after console noise on the same line (a prompt, a BIOS escape sequence).
_LATE_MONO_RE = re.compile(r"\[\s*(\d{1,10})\.(\d{6})\]")

_FUTURE_SLACK = 2 * 86400.0  # a line this far after the file's mtime is from the year before
_BOOT_TOLERANCE = 2.0  # seconds: boot estimates this close are the same boot
_STAMP_BACKWARDS = 1.0  # stamps may go back a little (CPUs interleave); more is a new boot
_MAX_KEYS = 4000  # lines of a kernel-clock boot offered for matching
# Early-boot lines repeat between boots of the same machine and kernel, stamps included
# ("[    0.000000] BIOS-e820: ..."): only later lines identify a boot.
_MIN_KEY_US = 1_000_000
_MIN_VOTES = 2  # distinct matching lines needed to trust a boot time
_SETTLED_VOTES = 200  # matching lines after which a boot's time is not looked for further
_KERNEL_STAMP = re.compile(rb"kernel: (?:<\d{1,2}>)?\[ *(\d+)\.(\d{1,9})\]")
_LOOKBACK = 64  # lines searched backwards for the time of an unstamped line
_BISECT_MIN_LINES = 200_000  # smaller files are read whole for a timeline
_DISORDER = 300.0  # seconds syslog lines may be out of order (late writers, clock steps)


def display(raw: str) -> str:
    """A log line made safe and short enough for a terminal or a JSON consumer."""
    return clean(clean_line(raw))


def format_time(t: float | None) -> str | None:
    """ISO 8601 UTC with microseconds, e.g. 2026-11-26T10:00:03.919751Z."""
    if t is None:
        return None
    usec = round(t * 1_000_000)
    whole = time.gmtime(usec // 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{usec % 1_000_000:06d}Z"


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a line's prefix says."""

    wall: float | None  # seconds since the epoch
    mono_us: int | None  # the kernel's printk stamp in microseconds since boot
    syslog: bool  # had a syslog prefix (time, host, ident)
    kernel: bool  # said by the kernel (ident "kernel", or a bare dmesg/console line)
    body: str  # the message as the crash parser reads it (printk stamp kept)

    def key_body(self) -> str:
        """The message without its printk stamp, for matching a line across logs."""
        m = _MONO_RE.match(self.body)
        rest = self.body[m.end() :] if m else self.body
        return clean_line(rest).strip()


def _fraction(digits: str | None) -> float:
    return int(digits) / 10 ** len(digits) if digits else 0.0


class StampParser:
    """Parses line prefixes for one file (its mtime and zone decide traditional dates)."""

    def __init__(self, mtime: float, tz: tzinfo | None) -> None:
        self._mtime = mtime
        self._tz = tz
        self._ref_year = (
            datetime.fromtimestamp(mtime, tz).year if tz else time.localtime(mtime).tm_year
        )
        self._hour = lru_cache(maxsize=4096)(self._hour_start)

    def _hour_start(self, year: int, month: int, day: int, hour: int) -> float:
        if self._tz is None:
            return time.mktime((year, month, day, hour, 0, 0, 0, 0, -1))
        return datetime(year, month, day, hour, tzinfo=self._tz).timestamp()

    def _local(self, year: int, month: int, day: int, hour: int, minute: int, sec: int) -> float:
        return self._hour(year, month, day, hour) + minute * 60 + sec

    def _traditional(self, m: re.Match[str]) -> float | None:
        month = _MONTHS[m.group(1)]
        day, hour, minute, sec = (int(m.group(k)) for k in range(2, 6))
        for year in range(self._ref_year, self._ref_year - 4, -1):
            try:
                t = self._local(year, month, day, hour, minute, sec)
            except (ValueError, OverflowError):
                continue  # Feb 29 in a year without it: try the year before
            if t <= self._mtime + _FUTURE_SLACK:
                return t + _fraction(m.group(6))
        return None

    def _iso(self, m: re.Match[str]) -> float | None:
        year, month, day, hour, minute, sec = (int(m.group(k)) for k in range(1, 7))
        zone = m.group(8)
        try:
            if zone is None:
                t = self._local(year, month, day, hour, minute, sec)
            else:
                t = float(calendar.timegm((year, month, day, hour, minute, sec)))
                if zone != "Z":
                    sign = -1 if zone[0] == "-" else 1
                    digits = zone[1:].replace(":", "")
                    t -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        except (ValueError, OverflowError):
            return None
        return t + _fraction(m.group(7))

    def _dmesg_t(self, m: re.Match[str]) -> float | None:
        try:
            return self._local(
                int(m.group(6)), _MONTHS[m.group(1)], *(int(m.group(k)) for k in range(2, 6))
            )
        except (ValueError, OverflowError):
            return None

    @staticmethod
    def other_program(text: str) -> bool:
        """Is this a syslog line of a program other than the kernel? (No time is computed.)"""
        m = _ISO_RE.match(text) if text[:1].isdigit() else _TRAD_RE.match(text)
        if m is None:
            return False
        ident = _HOST_IDENT_RE.match(text, m.end())
        return ident is None or ident.group(2) != "kernel"

    def parse(self, text: str) -> Stamp:
        wall: float | None = None
        syslog = False
        kernel = True
        body = text
        m = _ISO_RE.match(text) if text[:1].isdigit() else _TRAD_RE.match(text)
        if m is not None:
            wall = self._iso(m) if m.re is _ISO_RE else self._traditional(m)
            syslog = True
            rest = text[m.end() :]
            ident = _HOST_IDENT_RE.match(rest)
            kernel = ident is not None and ident.group(2) == "kernel"
            body = rest[ident.end() :] if ident is not None else rest
        elif text.startswith("["):
            t = _DMESG_T_RE.match(text)
            if t is not None:
                wall = self._dmesg_t(t)
                body = text[t.end() :]
        mono: int | None = None
        if kernel:
            s = _MONO_RE.match(body)
            if s is None and not syslog and "[" in body[:200]:
                s = _LATE_MONO_RE.search(body, 0, 200)
            if s is not None:
                frac = s.group(2)
                mono = int(s.group(1)) * 1_000_000 + int((frac + "00000")[:6])
        return Stamp(wall, mono, syslog, kernel, body)


@dataclass(slots=True)
class Boot:
    """A run of lines of a kernel-clock file from one boot."""

    first_line: int
    wall: float | None = None  # wall time of the boot (stamp 0), when known
    keys: list[tuple[int, str]] = field(default_factory=list)  # (stamp, message) samples


class TimedLog:
    """A log with the time of each line: wall clock, or kernel clock plus its boots."""

    def __init__(self, log: LogFile, order: int = 0) -> None:
        self.log = log
        self.order = order  # position among the files, for stable merging
        self.parser = StampParser(log.mtime, log.source.tz)
        self.clock = self._detect_clock()
        self.boots: list[Boot] = []
        self._boot_starts: list[int] = []
        if self.clock == "kernel":
            self._find_boots()

    @property
    def name(self) -> str:
        return self.log.name

    def _detect_clock(self) -> str:
        """Say "wall" when most early lines carry a wall time, "kernel" for printk stamps only."""
        if self.log.kind == "journal":
            return "wall"
        wall = mono = 0
        for _i, text in self.log.lines(0, 400):
            stamp = self.parser.parse(text)
            if stamp.wall is not None:
                wall += 1
            elif stamp.mono_us is not None:
                mono += 1
        if wall and wall >= mono:
            return "wall"
        return "kernel" if mono else "none"

    def _find_boots(self) -> None:
        previous: int | None = None
        boot: Boot | None = None
        for i, text in self.log.lines():
            stamp = self.parser.parse(text)
            mono = stamp.mono_us
            if mono is None or stamp.wall is not None:
                continue
            if boot is None or (previous is not None and mono < previous - _STAMP_BACKWARDS * 1e6):
                boot = Boot(i)
                self.boots.append(boot)
            previous = mono
            if mono >= _MIN_KEY_US and len(boot.keys) < _MAX_KEYS:
                boot.keys.append((mono, stamp.key_body()))
        self._boot_starts = [b.first_line for b in self.boots]

    def _boot_of(self, i: int) -> Boot | None:
        if not self.boots:
            return None
        k = bisect.bisect_right(self._boot_starts, i) - 1
        return self.boots[max(k, 0)]

    def stamp(self, i: int) -> Stamp:
        return self.parser.parse(self.log.raw(i))

    def own_time(self, i: int, stamp: Stamp | None = None) -> float | None:
        """The time line i itself states (None for an unstamped line or an unknown boot)."""
        if stamp is None:
            stamp = self.stamp(i)
        if stamp.wall is not None:
            return stamp.wall
        if stamp.mono_us is not None and self.clock == "kernel":
            boot = self._boot_of(i)
            if boot is not None and boot.wall is not None:
                return boot.wall + stamp.mono_us / 1e6
        return None

    def time(self, i: int) -> float | None:
        """When line i was written: its own time, else that of the nearest stamped line above."""
        for j in range(i, max(i - _LOOKBACK, -1), -1):
            stamp = self.stamp(j)
            t = self.own_time(j, stamp)
            if t is not None:
                return t
            if stamp.mono_us is not None or stamp.wall is not None:
                return None  # stamped, but its boot is unknown: do not borrow an older time
        return None

    def _time_forward(self, i: int, n: int) -> float | None:
        for j in range(i, min(i + _LOOKBACK, n)):
            t = self.own_time(j)
            if t is not None:
                return t
        return None

    def timed_lines(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, float | None, str]]:
        """(line, time, raw text) read sequentially; unstamped lines carry the last time."""
        last: float | None = None
        if start > 0:
            last = self.time(start - 1)
        for i, text in self.log.lines(start, stop):
            stamp = self.parser.parse(text)
            t = self.own_time(i, stamp)
            if t is not None:
                last = t
            elif stamp.mono_us is not None or stamp.wall is not None:
                last = None  # stamped but not placeable (unknown boot)
            yield i, (t if t is not None else last), text

    def first_line_after(self, t: float) -> int:
        """About the first line written at or after `t` (bisection; logs are nearly ordered)."""
        n = len(self.log)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            tm = self._time_forward(mid, n)
            if tm is not None and tm < t:
                lo = mid + 1
            else:
                hi = mid
        return lo


def _cluster_vote(votes: dict[tuple[int, str], list[float]]) -> float | None:
    """The boot time most matched lines agree on; None when two boots tie or too few match.

    A line counts once per boot it points to, however many logs hold it (kern.log, syslog and
    the journal repeat the same kernel message).
    """
    estimates: list[float] = []
    for found in votes.values():
        found.sort()
        estimates.append(found[0])
        estimates.extend(b for a, b in pairwise(found) if b - a > _BOOT_TOLERANCE)
    estimates.sort()
    clusters: list[list[float]] = []
    for e in estimates:
        if clusters and e - clusters[-1][-1] <= _BOOT_TOLERANCE:
            clusters[-1].append(e)
        else:
            clusters.append([e])
    clusters.sort(key=len, reverse=True)
    if len(clusters[0]) < _MIN_VOTES:
        return None
    if len(clusters) > 1 and len(clusters[1]) == len(clusters[0]):
        return None  # the same lines in two boots: cannot tell which
    return statistics.median(clusters[0])


def attach_boots(logs: Sequence[TimedLog]) -> None:
    """Put kernel-clock files on the wall clock by finding their lines in the wall-clock logs."""
    wanted: dict[int, list[tuple[Boot, str]]] = {}
    for tl in logs:
        for boot in tl.boots:
            if boot.wall is None:
                for mono, body in boot.keys:
                    wanted.setdefault(mono, []).append((boot, body))
    if not wanted:
        return
    votes: dict[int, dict[tuple[int, str], list[float]]] = {}
    boots_by_id = {id(boot): boot for items in wanted.values() for boot, _key in items}
    unsettled = set(boots_by_id)
    # Newest logs first: the boot that crashed is most likely at the end of the newest one,
    # and the search stops once every boot has enough matching lines.
    for tl in reversed([tl for tl in logs if tl.clock == "wall"]):
        index = tl.log.index
        for _i, offset in index.search_offsets(_KERNEL_STAMP):
            raw = index.line_at(offset, MAX_LINE_BYTES)
            m = _KERNEL_STAMP.search(raw)
            if m is None:
                continue
            # The stamp from the bytes first: most kernel lines are not wanted at all.
            mono = int(m.group(1)) * 1_000_000 + int((m.group(2) + b"00000")[:6])
            candidates = wanted.get(mono)
            if not candidates:
                continue
            stamp = tl.parser.parse(raw.decode("utf-8", "replace"))
            if stamp.wall is None or stamp.mono_us != mono:
                continue
            body = stamp.key_body()
            estimate = stamp.wall - mono / 1e6
            for boot, key in candidates:
                if key == body:
                    per_line = votes.setdefault(id(boot), {})
                    per_line.setdefault((mono, key), []).append(estimate)
                    if len(per_line) >= _SETTLED_VOTES:
                        unsettled.discard(id(boot))
            if not unsettled:
                break
        if not unsettled:
            break
    for ident, per_line in votes.items():
        boots_by_id[ident].wall = _cluster_vote(per_line)


@dataclass(frozen=True, slots=True)
class TimelineLine:
    time: float | None
    file: str
    line: int  # 1-based
    text: str  # cleaned for display
    order: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "time": format_time(self.time),
            "file": self.file,
            "line": self.line,
            "text": self.text,
        }


def _window_lines(tl: TimedLog, start: float, end: float) -> Iterator[TimelineLine]:
    n = len(tl.log)
    if n <= _BISECT_MIN_LINES:
        first, limit = 0, None
    else:
        first, limit = max(tl.first_line_after(start - _DISORDER) - 1, 0), end + _DISORDER
    for i, t, text in tl.timed_lines(first):
        if t is None:
            continue
        if limit is not None and t > limit:
            break
        if start <= t <= end:
            yield TimelineLine(t, tl.name, i + 1, display(text), tl.order)


def timeline(
    sources: Sequence[TimedLog], crash_time: float, window: float = 3600.0, after: float = 10.0
) -> list[TimelineLine]:
    """Every line of every log from `window` seconds before `crash_time` to `after` seconds
    past it, merged by time (ties keep file order and line order)."""
    lines: list[TimelineLine] = []
    for tl in sources:
        lines.extend(_window_lines(tl, crash_time - window, crash_time + after))
    lines.sort(key=lambda x: (x.time, x.order, x.line))
    return lines


def kernel_clock_timeline(
    tl: TimedLog, line: int, window: float = 3600.0, after: float = 10.0
) -> list[TimelineLine]:
    """For a hit whose boot is unknown: its own file's lines in the window, by kernel clock.

    `line` is 0-based. Times are null; only the same boot's lines are used.
    """
    target = tl.stamp(line).mono_us
    if target is None:
        return []
    boot = tl._boot_of(line)
    first = boot.first_line if boot is not None else 0
    later = [b.first_line for b in tl.boots if b.first_line > first]
    stop = later[0] if later else None
    low, high = target - window * 1e6, target + after * 1e6
    out: list[TimelineLine] = []
    for i, text in tl.log.lines(first, stop):
        mono = tl.parser.parse(text).mono_us
        if mono is not None and low <= mono <= high:
            out.append(TimelineLine(None, tl.name, i + 1, display(text), tl.order))
    return out
