#!/usr/bin/env python3
"""What the streaming parser costs a live console, line by line, and how soon a crash is done.

    bench_stream_latency.py [--capture NAME ...] [--passes N] [--json]

Feeds real QEMU captures (corpus/qemu/NAME.log; all of them unless --capture) one line at a time,
as the live view does, through `CrashParser.feed_line` (text) and `CrashParser.feed` (the line's
bytes), timing every call. Reports p50/p99/max microseconds per line over N passes, the line
that is consistently slowest, and for every crash how many lines after its header the
CrashCompleted event came (and how many after the crash's own last line): the delay before the
live view can write the incident. A crash still open at the end of the capture is completed by
`flush_idle` (the console went quiet) or, failing that, by `close`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _shared import qemu_corpus

from crashcart.kernel import CrashCompleted, CrashParser, CrashStarted, ParserEvent

DEFAULT_PASSES = 20


@dataclass
class Latency:
    p50_us: float
    p99_us: float
    max_us: float
    slowest_line: int  # the line whose median time is the highest (not a one-off GC pause)
    slowest_median_us: float
    slowest_text: str


@dataclass
class CrashLag:
    capture: str
    kind: str
    header_line: int
    end_line: int  # the crash's last line, as reported
    completed_at: int  # lines fed when CrashCompleted arrived
    completed_by: str  # "stream", "flush_idle" or "close"

    @property
    def after_header(self) -> int:
        return self.completed_at - self.header_line

    @property
    def after_end(self) -> int:
        return self.completed_at - self.end_line


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def read_lines(path: Path) -> list[bytes]:
    """The capture's lines as the console sent them, each with its `\\n`.

    Not `splitlines`: that also splits at the lone `\\r` a console uses to redraw a line.
    """
    data = path.read_bytes()
    lines = [line + b"\n" for line in data.split(b"\n")]
    if data.endswith(b"\n"):
        lines.pop()  # the empty remainder after the last newline
    else:
        lines[-1] = lines[-1][:-1]
    return lines


def time_calls(call: Callable[[Any], object], items: list[Any], passes: int) -> list[list[int]]:
    """Nanoseconds per item for each pass, on a fresh parser every pass (bound in `call`)."""
    per_line: list[list[int]] = [[] for _ in items]
    clock = time.perf_counter_ns
    for _ in range(passes):
        feed = call(None)
        for i, item in enumerate(items):
            start = clock()
            feed(item)
            per_line[i].append(clock() - start)
    return per_line


def latency(per_line: list[list[int]], lines: list[bytes]) -> Latency:
    every = sorted(ns for times in per_line for ns in times)
    medians = [statistics.median(times) for times in per_line]
    slowest = max(range(len(medians)), key=medians.__getitem__)
    text = lines[slowest].decode("utf-8", "replace").strip()
    return Latency(
        p50_us=percentile(every, 0.50) / 1000,
        p99_us=percentile(every, 0.99) / 1000,
        max_us=every[-1] / 1000,
        slowest_line=slowest + 1,
        slowest_median_us=medians[slowest] / 1000,
        slowest_text=text[:100],
    )


def measure(lines: list[bytes], passes: int) -> dict[str, list[list[int]]]:
    """Per-line nanoseconds for both ways of feeding a live console."""
    texts = [line.decode("utf-8", "replace") for line in lines]

    def text_feeder(_: object) -> Callable[[str], list[ParserEvent]]:
        return CrashParser().feed_line

    def bytes_feeder(_: object) -> Callable[[bytes], list[ParserEvent]]:
        return CrashParser().feed

    return {
        "feed_line": time_calls(text_feeder, texts, passes),
        "feed": time_calls(bytes_feeder, lines, passes),
    }


def crash_lags(name: str, lines: list[bytes]) -> list[CrashLag]:
    """Feed once, untimed, noting where each crash started and where it was completed."""
    parser = CrashParser()
    headers: dict[int, int] = {}
    lags: list[CrashLag] = []

    def note(events: list[ParserEvent], fed: int, how: str) -> None:
        for event in events:
            if isinstance(event, CrashStarted):
                headers[event.crash_id] = event.line
            elif isinstance(event, CrashCompleted):
                report = event.report
                header = headers.get(event.crash_id, report.start_line)
                lags.append(CrashLag(name, report.kind, header, report.end_line, fed, how))

    for fed, line in enumerate(lines, start=1):
        note(parser.feed_line(line.decode("utf-8", "replace")), fed, "stream")
    note(parser.flush_idle(), len(lines), "flush_idle")
    note(parser.close(), len(lines), "close")
    return lags


def overall(all_ns: list[int]) -> dict[str, float]:
    every = sorted(all_ns)
    return {
        "p50_us": percentile(every, 0.50) / 1000,
        "p99_us": percentile(every, 0.99) / 1000,
        "max_us": every[-1] / 1000,
    }


def run(captures: list[Path], passes: int) -> dict[str, Any]:
    results: dict[str, Any] = {"passes": passes, "captures": {}, "crashes": []}
    all_ns: dict[str, list[int]] = {"feed_line": [], "feed": []}
    for path in captures:
        lines = read_lines(path)
        row: dict[str, Any] = {"lines": len(lines)}
        for mode, per_line in measure(lines, passes).items():
            row[mode] = asdict(latency(per_line, lines))
            all_ns[mode].extend(ns for times in per_line for ns in times)
        results["captures"][path.stem] = row
        for lag in crash_lags(path.stem, lines):
            crash = asdict(lag)
            crash.update(after_header=lag.after_header, after_end=lag.after_end)
            results["crashes"].append(crash)
    results["overall"] = {mode: overall(ns) for mode, ns in all_ns.items()}
    return results


def print_tables(results: dict[str, Any]) -> None:
    print(f"per-line latency, microseconds, {results['passes']} passes per capture")
    head = f"{'capture':34} {'lines':>5}  {'mode':9} {'p50':>6} {'p99':>7} {'max':>8}  slowest"
    print(head)
    for name, cap in results["captures"].items():
        for mode in ("feed_line", "feed"):
            lat = cap[mode]
            print(
                f"{name:34} {cap['lines']:5}  {mode:9} {lat['p50_us']:6.1f} {lat['p99_us']:7.1f} "
                f"{lat['max_us']:8.1f}  line {lat['slowest_line']} "
                f"({lat['slowest_median_us']:.0f} us): {lat['slowest_text'][:50]}"
            )
    for mode, lat in results["overall"].items():
        print(
            f"{'all captures':34} {'':5}  {mode:9} {lat['p50_us']:6.1f} {lat['p99_us']:7.1f} "
            f"{lat['max_us']:8.1f}"
        )
    print()
    print("header -> CrashCompleted, in lines (+hdr: after the header, +end: after its last line)")
    print(
        f"{'capture':34} {'kind':15} {'header':>6} {'end':>5} {'done':>5} {'+hdr':>5} "
        f"{'+end':>5}  by"
    )
    for c in results["crashes"]:
        print(
            f"{c['capture']:34} {c['kind']:15} {c['header_line']:6} {c['end_line']:5} "
            f"{c['completed_at']:5} {c['after_header']:5} {c['after_end']:5}  {c['completed_by']}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", action="append", help="a capture name (repeatable; default all)")
    ap.add_argument("--passes", type=int, default=DEFAULT_PASSES, help="feeds per capture")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    corpus = qemu_corpus()
    names = args.capture or sorted(p.stem for p in corpus.glob("*.log"))
    paths = [corpus / f"{name}.log" for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no such capture: {', '.join(missing)}")
    results = run(paths, max(1, args.passes))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
