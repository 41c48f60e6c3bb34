#!/usr/bin/env python3
"""How fast `crashcart logs` opens, indexes and searches a huge log, and whether it finds
what was planted in it.

    bench_logs.py [--size MIB] [--every MIB] [--tmpdir DIR] [--json]

Writes a syslog file of --size MiB (default 1024) in a temporary folder (deleted afterwards):
RFC 3339 lines of a busy server (firewall drops, systemd, cron, nginx, sshd, audit), with
1 % decoys that hold hit words without being hits (a daemon's "I/O error", "DEBUG:"), and every
--every MiB (default 64) a kernel oops that ends in a panic plus a disk I/O error. Then:
  open          LogIndex(file, background=True) and its first 50 lines: the first screen
  index         a fresh LogIndex counting every line in the foreground (len())
  index (bg)    open until the background thread has indexed everything
  line          a random line(i), median of 2000, once indexed
  search        LogIndex.search for one regex (`I/O error, dev sd[a-z]`), index built
  search cold   the same on a fresh index (builds the block index as it goes)
  hits          the whole `crashcart logs` scan: a search pass per hit literal (16), then
                each candidate line classified, and the crash parser run on each crash
The file is in the page cache when measured (it was just written): these are CPU figures,
not disk figures. Exits 1 when the hits found are not the ones planted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _shared import MIB

from crashcart.logs import LogIndex, scan

TARGET_OPEN_S = 2.0
TARGET_SEARCH_MIB_S = 100.0
SEARCH = rb"I/O error, dev sd[a-z]"
_PLACEHOLDER = b"@" * len("2026-11-26T10:00:00.000000+00:00")
_START = 1795687200  # 2026-11-26T08:00:00Z

_NOISE = (
    "web01 kernel: [%d.%06d] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
    "SRC=203.0.113.%d DST=198.51.100.7 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=%d DF PROTO=TCP "
    "SPT=%d DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
    "web01 systemd[1]: Started session-%d.scope - Session %d of User deploy.",
    "web01 CRON[%d]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 %d)",
    'web01 nginx[%d]: 192.0.2.%d - - "GET /api/v1/items/%d HTTP/1.1" 200 512 "-" "curl/8.5"',
    "web01 sshd[%d]: Accepted publickey for deploy from 192.0.2.%d port %d ssh2",
    'web01 kernel: [%d.%06d] audit: type=1400 audit(1795687200.%d:%d): apparmor="ALLOWED"',
)
# Decoys: lines that hold a hit's literal without being a hit, so the scan must look and say
# no. About one line in a hundred, as a chatty daemon would write.
_DECOYS = (
    "web01 uploader[%d]: retry %d after I/O error on socket to 192.0.2.%d",  # not the kernel
    "web01 app[%d]: DEBUG: cache refresh %d took %d ms",  # holds "BUG"
)
_DECOY_SHARE = 0.01
_OOPS = (
    "BUG: kernel NULL pointer dereference, address: 0000000000000010",
    "#PF: supervisor write access in kernel mode",
    "Oops: 0002 [#1] PREEMPT SMP NOPTI",
    "CPU: 1 PID: 4242 Comm: worker Tainted: G           OE      6.1.0-28-amd64 #1",
    "RIP: 0010:bench_fault+0x16/0x20 [benchmod]",
    "Call Trace:",
    " <TASK>",
    " bench_caller+0x4a/0x60 [benchmod]",
    " process_one_work+0x1c7/0x380",
    " </TASK>",
    "Modules linked in: benchmod(OE)",
    "Kernel panic - not syncing: Fatal exception",
    "---[ end Kernel panic - not syncing: Fatal exception ]---",
)


def _template(rng: random.Random, size: int) -> bytes:
    """About `size` bytes of lines, each starting with the time placeholder."""
    out: list[bytes] = []
    total = 0
    while total < size:
        fmt = rng.choice(_DECOYS if rng.random() < _DECOY_SHARE else _NOISE)
        args = tuple(rng.randrange(1, 60000) for _ in range(fmt.count("%")))
        line = _PLACEHOLDER + b" " + (fmt % args).encode() + b"\n"
        out.append(line)
        total += len(line)
    return b"".join(out)


def _event(number: int) -> bytes:
    """A planted oops ending in a panic, then (30 lines on) a disk error: two hits."""
    mono = 1000 + 100 * number  # kernel clock seconds; only needs to look real
    lines = [f"@ web01 kernel: [{mono:5d}.{k:06d}] {text}" for k, text in enumerate(_OOPS, 1)]
    lines += [f"@ web01 systemd[1]: filler {k}" for k in range(30)]
    lines.append(f"@ web01 kernel: [{mono:5d}.900000] I/O error, dev sdb, sector 4096 op 0x0")
    return ("\n".join(lines) + "\n").replace("@", _PLACEHOLDER.decode()).encode()


def generate(path: Path, size_mib: int, every_mib: int, seed: int = 1) -> int:
    """Write the log; returns how many events (oops+panic, I/O error) were planted."""
    rng = random.Random(seed)
    block = _template(rng, MIB)
    events = 0
    written = 0
    second = 0
    with path.open("wb") as out:
        while written < size_mib * MIB:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(_START + second))
            chunk = block
            if written and written % (every_mib * MIB) < len(block):
                chunk = block + _event(events)
                events += 1
            out.write(chunk.replace(_PLACEHOLDER, f"{stamp}.000000+00:00".encode()))
            written += len(chunk)
            second += 1
    return events


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def measure(path: Path, planted: int) -> dict[str, Any]:
    size = path.stat().st_size
    mib = size / MIB
    figures: dict[str, Any] = {"size_mib": round(mib, 1)}

    t0 = time.perf_counter()
    ix = LogIndex(path, background=True)
    first = [line for _i, line in ix.lines(0, 50)]
    figures["open_s"] = time.perf_counter() - t0
    ix.wait_indexed()
    figures["index_background_s"] = time.perf_counter() - t0
    ix.close()
    assert len(first) == 50

    with LogIndex(path) as ix:
        figures["index_s"], lines = _timed(lambda: len(ix))
        figures["lines"] = lines
        rng = random.Random(2)
        samples = []
        for _ in range(2000):
            i = rng.randrange(lines)
            t0 = time.perf_counter()
            ix.line(i)
            samples.append(time.perf_counter() - t0)
        figures["line_us_median"] = statistics.median(samples) * 1e6
        seconds, found = _timed(lambda: sum(1 for _ in ix.search(SEARCH)))
        figures["search_s"] = seconds
        figures["search_mib_s"] = mib / seconds
        figures["search_lines"] = found
    with LogIndex(path) as ix:
        seconds, _found = _timed(lambda: sum(1 for _ in ix.search(SEARCH)))
        figures["search_cold_mib_s"] = mib / seconds

    t0 = time.perf_counter()
    with scan([path]) as result:
        figures["hits_s"] = time.perf_counter() - t0
        figures["hits_mib_s"] = mib / figures["hits_s"]
        kinds = [hit.kind for hit in result.hits]
        functions = {hit.crash["function"] for hit in result.hits if hit.crash}
    figures["planted"] = planted
    figures["hits"] = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    figures["check_ok"] = (
        figures["hits"] == ({"io_error": planted, "panic": planted} if planted else {})
        and found == planted
        and functions <= {"bench_fault"}
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB to generate (1024)")
    parser.add_argument("--every", type=int, default=64, help="MiB between planted events (64)")
    parser.add_argument("--tmpdir", help="where the file is written (default: $TMPDIR)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crashcart-bench-logs-", dir=args.tmpdir) as tmp:
        path = Path(tmp) / "syslog"
        gen_s, planted = _timed(lambda: generate(path, args.size, args.every))
        figures = measure(path, planted)
        figures["generate_s"] = gen_s
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"file: {figures['size_mib']:.0f} MiB, {figures['lines']:,} lines "
            f"(generated in {gen_s:.1f} s; page cache warm)"
        )
        print(
            f"open (first screen): {figures['open_s'] * 1000:.1f} ms "
            f"(target < {TARGET_OPEN_S:.0f} s)"
        )
        print(
            f"full index: {figures['index_s']:.2f} s foreground, "
            f"{figures['index_background_s']:.2f} s in the background thread"
        )
        print(f"line(i) random access: {figures['line_us_median']:.1f} us median")
        print(
            f"search {SEARCH.decode()!r}: {figures['search_mib_s']:.0f} MiB/s indexed, "
            f"{figures['search_cold_mib_s']:.0f} MiB/s cold (target >= "
            f"{TARGET_SEARCH_MIB_S:.0f})"
        )
        print(
            f"hits scan: {figures['hits_s']:.1f} s = {figures['hits_mib_s']:.0f} MiB/s, "
            f"found {figures['hits']} for {planted} planted events: "
            f"{'ok' if figures['check_ok'] else 'MISMATCH'}"
        )
    return 0 if figures["check_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
