#!/usr/bin/env python3
"""How fast `crashcart analyze` reads a big console log, next to grep, and whether it is right.

    bench_analyze.py FILE [--json] [--repeat N]

Measures, on FILE (best of N runs each):
  analyze   `analyze_bytes(data)` in this process, the file already in memory
  stream    `CrashParser.feed` in 64 KiB chunks, then `close`, as a live session feeds it
  cli       `crashcart analyze FILE --json > /dev/null` as a child: start-up, read, parse, JSON
  child     a fresh interpreter feeding FILE from disk in 64 KiB chunks (a live session's cost)
  grep      `LC_ALL=C grep -E -c` for the crash header markers: the floor for "find the crashes"
and the peak RSS of both children (their own ru_maxrss, see run_child). When FILE has a
manifest from make_console_log.py, every report is matched against the crashes and reboots
embedded there; a mismatch exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from _shared import MIB, manifest_path

from crashcart.kernel import CrashParser, CrashReport, analyze_bytes

CHUNK = 64 * 1024
TARGET_MIB_S = 50.0
# The headers a person would grep a console log for; the baseline does no carving at all.
GREP_ERE = (
    "BUG:|WARNING:|Kernel panic|general protection fault|Oops|INFO: task|rcu.*stall|"
    "soft lockup|hard LOCKUP|Out of memory|oom-killer|KASAN|UBSAN|kernel BUG at|"
    "Unable to handle|stack segment|double fault|divide error|invalid opcode|Internal error:|"
    "Hardware Error|VFS: Cannot open root|unreferenced object"
)
MAX_LISTED = 10  # mismatches shown; the rest are counted

T = TypeVar("T")


@dataclass
class Timing:
    seconds: float
    mib_per_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Check:
    """Reports against the manifest: counts, and which ones do not line up."""

    expected_crashes: int | None
    expected_reboots: int | None
    found_crashes: dict[str, int] = field(default_factory=dict)  # per way of running
    found_reboots: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- timing -----------------------------------------------------------------------------------
def best_of(repeats: int, run: Callable[[], T]) -> tuple[float, T]:
    """Fastest wall time of `repeats` runs (the least disturbed by the rest of the machine)."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def stream(data: bytes) -> list[CrashReport]:
    parser = CrashParser()
    for i in range(0, len(data), CHUNK):
        parser.feed(data[i : i + CHUNK])
    parser.close()
    return parser.reports


def crashcart_command() -> list[str]:
    """The crashcart of this interpreter's venv, so the CLI measured is the code measured."""
    beside = Path(sys.executable).parent / "crashcart"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crashcart")
    return [found] if found else [sys.executable, "-m", "crashcart"]


# Peak RSS needs a small go-between. A child's ru_maxrss survives exec, and subprocess starts
# children with vfork, so a child of this process (which holds the whole log, ~2x its size)
# reports this process's RSS, not its own. A fresh interpreter forking the command keeps the
# floor at its own ~10 MiB; it times fork-to-exit and writes "seconds maxrss_kib status" to fd.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
os.write(int(sys.argv[1]), f"{elapsed} {usage.ru_maxrss} {code}".encode())
"""


def run_child(cmd: list[str], stdout: Any, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run cmd; its wall time and its own peak RSS in KiB."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as err:
        launcher = [sys.executable, "-c", _LAUNCHER, str(write_end), *cmd]
        proc = subprocess.Popen(launcher, stdout=stdout, stderr=err, env=env, pass_fds=[write_end])
        os.close(write_end)
        with os.fdopen(read_end, "rb") as result:
            answer = result.read().decode()
        proc.wait()
        if not answer:
            raise SystemExit(f"could not run {' '.join(cmd)} (launcher exit {proc.returncode})")
        seconds, maxrss, code = answer.split()
        # grep exits 1 when nothing matched; anything else non-zero is a failure.
        if int(code) not in (0, 1) or (int(code) == 1 and cmd[0] != "grep"):
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {message}")
    return float(seconds), int(maxrss)


def time_cli(path: Path, size: int, repeats: int) -> tuple[Timing, list[dict[str, Any]]]:
    cmd = [*crashcart_command(), "analyze", str(path), "--json"]
    # One run into a file to read the reports back; the timed runs write to /dev/null.
    with tempfile.TemporaryFile() as out:
        _, rss = run_child(cmd, out)
        out.seek(0)
        crashes = json.load(out)["crashes"]
    best = float("inf")
    with open(os.devnull, "wb") as devnull:
        for _ in range(repeats):
            elapsed, run_rss = run_child(cmd, devnull)
            best, rss = min(best, elapsed), max(rss, run_rss)
    extra = {"peak_rss_mib": round(rss / 1024, 1), "command": " ".join(cmd)}
    return Timing(best, size / MIB / best, extra), crashes


# A fresh interpreter reading FILE in chunks, as a live session would: its RSS is the parser's
# own footprint, next to the CLI's (which holds the whole file, and its text, in memory).
_STREAM_CHILD = f"""
import sys
from crashcart.kernel import CrashParser
parser = CrashParser()
with open(sys.argv[1], "rb") as f:
    while chunk := f.read({CHUNK}):
        parser.feed(chunk)
parser.close()
"""


def time_stream_child(path: Path, size: int, repeats: int) -> Timing:
    cmd = [sys.executable, "-c", _STREAM_CHILD, str(path)]
    best, rss = float("inf"), 0
    for _ in range(repeats):
        elapsed, run_rss = run_child(cmd, subprocess.DEVNULL)
        best, rss = min(best, elapsed), max(rss, run_rss)
    return Timing(best, size / MIB / best, {"peak_rss_mib": round(rss / 1024, 1)})


def time_grep(path: Path, size: int, repeats: int) -> Timing | None:
    grep = shutil.which("grep")
    if grep is None:
        return None
    cmd = ["grep", "-E", "-c", GREP_ERE, str(path)]
    env = {**os.environ, "LC_ALL": "C"}  # byte matching: grep's fast path, as people run it
    best = float("inf")
    count = ""
    for _ in range(repeats):
        # Not /dev/null: GNU grep notices it and stops at the first match, timing nothing.
        with tempfile.TemporaryFile() as out:
            best = min(best, run_child(cmd, out, env)[0])
            out.seek(0)
            count = out.read().decode().strip()
    return Timing(best, size / MIB / best, {"matching_lines": int(count or 0)})


# -- checking ---------------------------------------------------------------------------------
def summarize(reports: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(r["kind"], int(r["start_line"]), int(r["end_line"])) for r in reports]


def as_dicts(reports: list[CrashReport]) -> list[dict[str, Any]]:
    return [{"kind": r.kind, "start_line": r.start_line, "end_line": r.end_line} for r in reports]


def capture_at(manifest: dict[str, Any], line: int) -> str:
    for cap in manifest["captures"]:
        if cap["first_line"] <= line <= cap["last_line"]:
            return str(cap["name"])
    return "filler"


def match_crashes(
    found: list[tuple[str, int, int]], manifest: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Reports that overlap no embedded crash, and embedded crashes no report overlaps."""
    spans = [(c["start_line"], c["end_line"], c["capture"]) for c in manifest["crashes"]]
    covered: set[int] = set()
    extra = []
    for kind, start, end in found:
        hits = [i for i, (s, e, _) in enumerate(spans) if s <= end and start <= e]
        if not hits:
            where = capture_at(manifest, start)
            extra.append(f"unexpected {kind} report at lines {start}-{end} ({where})")
        covered.update(hits)
    missed = [
        f"missed crash at lines {s}-{e} ({name})"
        for i, (s, e, name) in enumerate(spans)
        if i not in covered
    ]
    return extra, missed


def boot_of(manifest: dict[str, Any], line: int) -> str:
    """Which capture boots at this line, and what ran before it (decides if it was expected)."""
    names = [str(cap["name"]) for cap in manifest["captures"] if cap["first_line"] <= line]
    if not names:
        return "filler"
    before = names[-2] if len(names) > 1 else "the start of the log"
    return f"boot of {names[-1]}, after {before}"


def match_reboots(found: list[tuple[str, int, int]], manifest: dict[str, Any]) -> list[str]:
    expected = {r["line"] for r in manifest["reboots"]}
    seen = {start for _, start, _ in found}
    problems = [
        f"unexpected reboot report at line {line} ({boot_of(manifest, line)})"
        for line in sorted(seen - expected)
    ]
    problems += [
        f"missed reboot at line {line} ({boot_of(manifest, line)})"
        for line in sorted(expected - seen)
    ]
    return problems


def check(runs: dict[str, list[dict[str, Any]]], manifest: dict[str, Any] | None) -> Check:
    result = Check(
        manifest["expected_crashes"] if manifest else None,
        manifest["expected_reboots"] if manifest else None,
    )
    summaries = {name: summarize(reports) for name, reports in runs.items()}
    for name, found in summaries.items():
        result.found_reboots[name] = sum(kind == "reboot" for kind, _, _ in found)
        result.found_crashes[name] = len(found) - result.found_reboots[name]
    # Chunking and the CLI must not change what is found.
    reference_name, reference = next(iter(summaries.items()))
    for name, found in summaries.items():
        if found != reference:
            result.problems.append(f"{name} reports differ from {reference_name}")
    if manifest is None:
        return result
    crashes = [r for r in reference if r[0] != "reboot"]
    extra, missed = match_crashes(crashes, manifest)
    reboot_problems = match_reboots([r for r in reference if r[0] == "reboot"], manifest)
    result.problems += extra + missed + reboot_problems
    return result


# -- output -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def print_table(doc: dict[str, Any]) -> None:
    print(f"file: {doc['file']}  {doc['size_bytes'] / MIB:.1f} MiB, {doc['lines']:,} lines")
    print(
        f"best of {doc['repeats']}, MB = MiB, {doc['machine']['cpus']} CPUs, Python "
        f"{doc['machine']['python']}"
    )
    print(f"{'':34} {'seconds':>8} {'MB/s':>8}")
    labels = {
        "analyze": "analyze_bytes (in-process)",
        "stream": f"CrashParser.feed, {CHUNK // 1024} KiB chunks",
        "cli": "crashcart analyze --json (CLI)",
        "stream_child": "feed from disk, child process",
        "grep": "grep -E -c markers (baseline)",
    }
    for key, label in labels.items():
        t = doc["timings"].get(key)
        if t is not None:
            print(f"{label:34} {t['seconds']:8.2f} {t['mib_per_s']:8.1f}")
    cli = doc["timings"]["cli"]["extra"]
    child = doc["timings"]["stream_child"]["extra"]
    print(f"peak RSS: CLI {cli['peak_rss_mib']:.0f} MiB, ", end="")
    print(f"feed from disk {child['peak_rss_mib']:.0f} MiB")
    speed = doc["timings"]["analyze"]["mib_per_s"]
    verdict = "met" if speed >= TARGET_MIB_S else "NOT met"
    print(f"target >= {TARGET_MIB_S:.0f} MB/s for analyze: {verdict} ({speed:.1f})")
    c = doc["check"]
    found = ", ".join(f"{n} {k}" for k, n in c["found_crashes"].items())
    print(f"crashes: embedded {c['expected_crashes']}, found {found}")
    found = ", ".join(f"{n} {k}" for k, n in c["found_reboots"].items())
    print(f"unexpected reboots: embedded {c['expected_reboots']}, found {found}")
    grep = doc["timings"].get("grep")
    if grep is not None:
        print(f"grep matching lines: {grep['extra']['matching_lines']} (headers and noise alike)")
    for problem in c["problems"][:MAX_LISTED]:
        print(f"  MISMATCH {problem}")
    if len(c["problems"]) > MAX_LISTED:
        print(f"  ... and {len(c['problems']) - MAX_LISTED} more")
    print("check: OK" if c["ok"] else "check: FAILED")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path, help="a console log (e.g. from make_console_log.py)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best counts)")
    args = ap.parse_args(argv)
    repeats = max(1, args.repeat)
    data = args.file.read_bytes()
    size = len(data)
    mpath = manifest_path(args.file)
    manifest = json.loads(mpath.read_text()) if mpath.exists() else None

    progress(f"analyze_bytes x{repeats} ...")
    seconds, in_process = best_of(repeats, lambda: analyze_bytes(data))
    timings = {"analyze": Timing(seconds, size / MIB / seconds)}
    progress(f"CrashParser.feed x{repeats} ...")
    seconds, streamed = best_of(repeats, lambda: stream(data))
    timings["stream"] = Timing(seconds, size / MIB / seconds)
    progress(f"crashcart analyze x{repeats + 1} ...")
    timings["cli"], cli_crashes = time_cli(args.file, size, repeats)
    progress(f"stream from disk x{repeats} ...")
    timings["stream_child"] = time_stream_child(args.file, size, repeats)
    progress(f"grep x{repeats} ...")
    grep = time_grep(args.file, size, repeats)
    if grep is not None:
        timings["grep"] = grep

    runs = {"in-process": as_dicts(in_process), "stream": as_dicts(streamed), "cli": cli_crashes}
    result = check(runs, manifest)
    doc = {
        "file": str(args.file),
        "size_bytes": size,
        "lines": data.count(b"\n"),
        "repeats": repeats,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "timings": {k: asdict(v) for k, v in timings.items()},
        "check": {**asdict(result), "ok": result.ok},
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
