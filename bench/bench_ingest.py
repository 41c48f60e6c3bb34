"""Session ingest beside raw pyte on the same bytes: what recording and crash detection cost
per megabyte, next to what emulating the screen for every byte would cost.

    python bench/bench_ingest.py LOG [--pyte-mib 4] [--json]

The Session (recorder + crash parser + incident folders, as `watch` runs it) reads LOG through a
replay at full speed. pyte is fed the first `--pyte-mib` MiB only: at its speed the whole log
would take minutes, which is why the live view never feeds it every byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import pyte

from connectors import open_connector
from crashcart.session import Session

MIB = 1 << 20


async def _ingest(log: Path, record: Path) -> Session:
    conn = open_connector(str(log), speed=0)
    await conn.open()
    session = Session(conn, record)
    await session.run()
    return session


def session_ingest(log: Path) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="crashcart-ingest-") as tmp:
        start = time.perf_counter()
        session = asyncio.run(_ingest(log, Path(tmp)))
        seconds = time.perf_counter() - start
        recorded = session.recorder.total_bytes
    size = log.stat().st_size
    assert recorded == size, f"recorded {recorded} of {size} bytes"
    return {
        "mib": round(size / MIB, 1),
        "seconds": round(seconds, 2),
        "mib_per_s": round(size / MIB / seconds, 1),
        "incidents": len(session.incidents),
    }


def raw_pyte(log: Path, mib: float) -> dict[str, float]:
    with log.open("rb") as fh:
        data = fh.read(int(mib * MIB))
    screen = pyte.Screen(80, 25)
    stream = pyte.ByteStream(screen)
    start = time.perf_counter()
    stream.feed(data)
    seconds = time.perf_counter() - start
    return {
        "mib": round(len(data) / MIB, 1),
        "seconds": round(seconds, 2),
        "mib_per_s": round(len(data) / MIB / seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--pyte-mib", type=float, default=4.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = {"session": session_ingest(args.log), "pyte": raw_pyte(args.log, args.pyte_mib)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        s, p = result["session"], result["pyte"]
        print(f"session ingest: {s['mib']} MiB in {s['seconds']} s = {s['mib_per_s']} MiB/s")
        print(f"raw pyte:       {p['mib']} MiB in {p['seconds']} s = {p['mib_per_s']} MiB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
