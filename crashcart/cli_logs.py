"""`crashcart logs PATH... [--json] [--before N] [--after N] [--timeline N [--window S]]`.

Reads the logs under files, folders or a mounted root and lists what they said before the
machine died (see crashcart/logs). Console-derived text is cleaned before it is printed
(`timeline.display`); the JSON is ASCII, so escapes stay escaped. Warnings about single
files (corrupt, unreadable) go to stderr and the run goes on; a missing path or nothing
readable at all raises InputError, which the main CLI turns into one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from typing import Any, TextIO

from crashcart.recording import InputError
from crashcart.safetext import clean

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  crashcart logs /mnt                   a rescued root: var/log, its journal, var/crash, pstore
  crashcart logs /var/log/kern.log*     some files (rotated .gz/.xz ones too)
  crashcart logs / --json               this machine's own logs
  crashcart logs /mnt --timeline 2      every log's lines in the hour before hit 2
"""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the `logs` subcommand to an argparse subparsers object; returns its parser."""
    logs = commands.add_parser(
        "logs",
        help="find what the logs said before a crash (syslog, journal, vmcore-dmesg, pstore)",
        description=(
            "Read the logs under files, folders or a mounted root (/mnt after booting into "
            "rescue; / for this machine): kern.log, syslog, messages and dmesg with their "
            ".gz/.xz rotations, the systemd journal, var/crash/*/vmcore-dmesg.txt and pstore "
            "records. List the kernel panics, oopses, BUGs, warnings, lockups, hung tasks, OOM "
            "kills, machine checks, file-system and I/O errors in time order, with context and "
            "the crash parser's report for kernel crashes."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logs.add_argument("paths", metavar="PATH", nargs="+", help="log files, folders or a root")
    logs.add_argument(
        "--json", action="store_true", help="print one JSON object (see docs/logs.md)"
    )
    logs.add_argument(
        "--before", type=_count, default=20, metavar="N", help="context lines before a hit (20)"
    )
    logs.add_argument(
        "--after", type=_count, default=5, metavar="N", help="context lines after a hit (5)"
    )
    logs.add_argument(
        "--timeline",
        type=_positive,
        metavar="N",
        help="print every log's lines in the window before hit N (as numbered in the list)",
    )
    logs.add_argument(
        "--window",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="how far back --timeline goes (3600)",
    )
    logs.set_defaults(handler=run)
    return logs


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of lines: {text!r}") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100000: {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("hits are numbered from 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and a year: {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run `crashcart logs`; returns the exit status (InputError propagates)."""
    from crashcart.logs import scan

    with scan(args.paths, before=args.before, after=args.after) as result:
        for warning in result.warnings:
            _warn(warning)
        if args.timeline is not None:
            return _print_timeline(result, args.timeline, args.window, args.json, sys.stdout)
        if args.json:
            # ensure_ascii: whatever a log held is escaped, never raw bytes on a terminal.
            sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        else:
            _print_text(result, sys.stdout)
        sys.stdout.flush()
    return 0


def _warn(message: str) -> None:
    text = " ".join(clean(message).split())
    print(f"crashcart: warning: {text}", file=sys.stderr)


def _short_names(paths: list[str]) -> dict[str, str]:
    """File names as shown in a table: relative to the folder all of them share."""
    if len(paths) <= 1:
        return {p: os.path.basename(p) or p for p in paths}
    common = os.path.commonpath(paths)
    if common in paths:  # a single journal folder among its own files cannot be its own base
        common = os.path.dirname(common)
    return {p: os.path.relpath(p, common) if common not in ("", "/") else p for p in paths}


def _when(t: float | None) -> str:
    if t is None:
        return "time unknown"
    usec = round(t * 1_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(usec // 1_000_000)) + " UTC"


def _stamp(t: float | None) -> str:
    """A timeline time: UTC to the microsecond (kernel stamps order lines within a second)."""
    if t is None:
        return "?"
    usec = round(t * 1_000_000)
    whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(usec // 1_000_000))
    return f"{whole}.{usec % 1_000_000:06d}"


def _crash_summary(crash: dict[str, Any]) -> str:
    parts = [str(crash.get("kind"))]
    if crash.get("function"):
        where = str(crash["function"])
        if crash.get("module"):
            where += f" [{crash['module']}]"
        parts.append(f"in {where}")
    line = " ".join(parts)
    if crash.get("panic"):
        line += f"; panic: {crash['panic']}"
    return f"{line} (lines {crash.get('start_line')}-{crash.get('end_line')})"


def _print_text(result: Any, out: TextIO) -> None:
    names = _short_names([tl.name for tl in result.files])
    total_lines = 0
    out.write(f"Logs read ({len(result.files)}):\n")
    for tl in result.files:
        n = len(tl.log)
        total_lines += n
        extra = f" ({tl.log.compression})" if tl.log.compression else ""
        if tl.clock == "kernel" and not any(b.wall is not None for b in tl.boots):
            extra += " (kernel clock only: boot time unknown)"
        out.write(f"  {tl.log.kind:<13}{n:>10,} lines  {clean(tl.name)}{extra}\n")
    if not result.hits:
        out.write(f"\nNo hits in {total_lines:,} lines.\n")
        return
    for number, hit in enumerate(result.hits, 1):
        out.write("\n")
        where = f"{clean(names.get(hit.file, hit.file))}:{hit.line}"
        out.write(f"#{number}  {hit.kind.upper()}  {_when(hit.time)}  {where}\n")
        out.write(f"    {hit.text}\n")
        out.write(f"    ({hit.description})\n")
        if len(hit.kinds) > 1:
            out.write(f"    includes: {', '.join(hit.kinds)}\n")
        if hit.repeats:
            out.write(f"    repeated {hit.repeats} more times, up to line {hit.last_line}\n")
        if hit.crash is not None:
            out.write(f"    crash: {clean(_crash_summary(hit.crash))}\n")
        if hit.also:
            also = ", ".join(f"{clean(names.get(f, f))}:{n}" for f, n in hit.also)
            out.write(f"    also in: {also}\n")
        if hit.context:
            width = len(str(hit.context[-1][0]))
            for n, text in hit.context:
                mark = ">" if n == hit.line else " "
                out.write(f"    {mark} {n:>{width}} | {text}\n")
    kinds = Counter(hit.kind for hit in result.hits)
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    count = len(result.hits)
    out.write(
        f"\n{count} hit{'' if count == 1 else 's'} in {total_lines:,} lines: {summary}.\n"
        "`crashcart logs PATH... --timeline N` shows every log's lines in the hour before hit N.\n"
    )


def _print_timeline(result: Any, number: int, window: float, as_json: bool, out: TextIO) -> int:
    from crashcart.logs import hit_timeline

    if number > len(result.hits):
        raise InputError(
            f"--timeline {number}: there {'is' if len(result.hits) == 1 else 'are'} only "
            f"{len(result.hits)} hit{'' if len(result.hits) == 1 else 's'}"
        )
    hit = result.hits[number - 1]
    lines, note = hit_timeline(result, hit, window)
    if as_json:
        doc = {
            "hit": hit.to_dict(number),
            "window": window,
            "note": note,
            "timeline": [line.to_dict() for line in lines],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
        out.flush()
        return 0
    names = _short_names([tl.name for tl in result.files])
    out.write(
        f"Timeline of the {window:g} s before hit #{number} ({hit.kind} at {_when(hit.time)}, "
        f"{clean(names.get(hit.file, hit.file))}:{hit.line}): {len(lines):,} lines\n"
    )
    if note:
        out.write(f"({note})\n")
    for line in lines:
        stamp = _stamp(line.time)
        mark = ">" if line.file == hit.file and line.line == hit.line else " "
        where = f"{clean(names.get(line.file, line.file))}:{line.line}"
        out.write(f"{mark} {stamp}  {where}  {line.text}\n")
    out.flush()
    return 0
