"""Headless log scanning: what did the logs say before the machine died?

`scan(paths)` finds the logs under files, folders or a mounted root (`discover`), opens them
(`readers`: plain, .gz/.xz/.bz2, journals via journalctl, pstore records), puts every line on
the wall clock where it can (`timeline`), and lists the hits (`hits`: panics, oopses, lockups,
OOM kills, file-system and I/O errors) in time order, each with its context and, for kernel
crashes, the crash parser's report. `timeline()` then merges every log's lines of the hour
before a chosen hit. `crashcart logs` (cli_logs.py) prints all of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crashcart.logs.discover import Source, discover
from crashcart.logs.hits import HIT_KINDS, Hit, find_hits, merge_hits
from crashcart.logs.index import LogIndex
from crashcart.logs.readers import LogFile, open_log
from crashcart.logs.timeline import (
    TimedLog,
    TimelineLine,
    attach_boots,
    format_time,
    kernel_clock_timeline,
    timeline,
)
from crashcart.recording import InputError

__all__ = [
    "HIT_KINDS",
    "Hit",
    "LogFile",
    "LogIndex",
    "LogScan",
    "Source",
    "TimedLog",
    "TimelineLine",
    "discover",
    "hit_timeline",
    "kernel_clock_timeline",
    "scan",
    "timeline",
]


@dataclass(slots=True)
class LogScan:
    """The logs read, their hits (time order, numbered from 1 in output) and the warnings."""

    files: list[TimedLog]
    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        for tl in self.files:
            tl.log.close()

    def __enter__(self) -> LogScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def file_dict(self, tl: TimedLog) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": tl.name,
            "kind": tl.log.kind,
            "lines": len(tl.log),
            "compression": tl.log.compression,
            "clock": tl.clock,
        }
        if tl.clock == "kernel":
            out["boots"] = [
                {"line": b.first_line + 1, "time": format_time(b.wall)} for b in tl.boots
            ]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [self.file_dict(tl) for tl in self.files],
            "hits": [hit.to_dict(n) for n, hit in enumerate(self.hits, 1)],
            "warnings": list(self.warnings),
        }


def scan(paths: Sequence[str | os.PathLike[str]], before: int = 20, after: int = 5) -> LogScan:
    """Read every log under `paths` and find the hits. InputError for a missing path, or when
    nothing readable is left; an unreadable or corrupt file among others is a warning."""
    found = discover(paths)
    warnings = list(found.warnings)
    logs: list[LogFile] = []
    for source in found.sources:
        try:
            log = open_log(source)
        except InputError as exc:
            warnings.append(str(exc))
            continue
        warnings.extend(log.notes)
        logs.append(log)
    if not logs:
        shown = " ".join(str(p) for p in paths)
        raise InputError(warnings[0] if warnings else f"no logs found in {shown}")
    try:
        files = [TimedLog(log, order) for order, log in enumerate(logs)]
        attach_boots(files)
        hits: list[Hit] = []
        for tl in files:
            hits.extend(find_hits(tl, before, after))
    except BaseException:
        for log in logs:
            log.close()
        raise
    return LogScan(files, merge_hits(hits), warnings)


def hit_timeline(
    result: LogScan, hit: Hit, window: float = 3600.0
) -> tuple[list[TimelineLine], str | None]:
    """The lines of the `window` seconds before `hit`, merged across every log by time, and a
    note when only its own file could be used (its boot's wall time is unknown)."""
    if hit.time is not None:
        return timeline(result.files, hit.time, window), None
    own = next(tl for tl in result.files if tl.name == hit.file)
    note = "the boot's wall time is unknown: only this file's lines, by kernel clock"
    return kernel_clock_timeline(own, hit.line - 1, window), note
