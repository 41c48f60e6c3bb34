"""`crashcart watch` under load: CPU for a fleet of slow consoles, and one console flat out.

    python bench/bench_watch.py [--consoles 32] [--seconds 20] [--megabytes 200] [--json]

1. Fleet: N TCP "console servers" on 127.0.0.1, each sending real console captures paced like a
   115200-baud line (11520 bytes/s), watched by one `crashcart watch socket://...` process.
   Reports that process's CPU use (user+sys over wall time, via psutil) as % of one core.
2. Flat out: one console server sends M MB of real captures as fast as loopback allows; reports
   the rate at which watch recorded them and checks the recording's sha256.
Nothing here asserts a time; `tests/test_bench_smoke.py` runs a small version for behaviour.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRASHCART_SHARED", REPO.parent / "shared"))
LINE_RATE = 11520  # bytes/s on a 115200-baud 8N1 line


def console_bytes() -> bytes:
    """Real serial captures, concatenated: every capture of the corpus, crashes included.

    At 115200 baud this is about one crash every few seconds per console: far more than a
    real fleet shows, so incident writing is part of what the fleet figure measures.
    """
    corpus = SHARED / "corpus" / "qemu"
    return b"".join(p.read_bytes() for p in sorted(corpus.glob("*.log")))


def quiet_console_bytes() -> bytes:
    """A busy console that is not crashing: boots and logins, and one crash at the end."""
    corpus = SHARED / "corpus" / "qemu"
    normal = (corpus / "normal_boot_login.log").read_bytes()
    return normal * 8 + (corpus / "oops_null_panic.log").read_bytes()


class ConsoleServer(threading.Thread):
    """A TCP listener that sends `payload` to its one client at `rate` bytes/s (0 = flat out)."""

    def __init__(self, payload: bytes, rate: float, duration: float | None = None) -> None:
        super().__init__(daemon=True)
        self.payload = payload
        self.rate = rate
        self.duration = duration
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.done = threading.Event()

    def run(self) -> None:
        conn, _ = self.sock.accept()
        # The watcher is stopped with SIGTERM at the end of a run: a broken pipe is expected.
        with conn, contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if self.rate <= 0:
                conn.sendall(self.payload)
                self.sent = len(self.payload)
            else:
                self._paced(conn)
        self.done.set()

    def _paced(self, conn: socket.socket) -> None:
        start = time.monotonic()
        chunk = max(1, int(self.rate / 50))  # 20 ms of line time per write
        while self.duration is None or time.monotonic() - start < self.duration:
            due = start + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            piece = self.payload[self.sent % len(self.payload) :][:chunk]
            conn.sendall(piece)
            self.sent += len(piece)


def start_watch(urls: list[str], record: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crashcart", "watch", *urls, "--record", str(record), "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fleet(consoles: int, seconds: float, payload: bytes) -> dict[str, float]:
    servers = [ConsoleServer(payload, LINE_RATE, seconds + 5) for _ in range(consoles)]
    for s in servers:
        s.start()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_watch([f"socket://127.0.0.1:{s.port}" for s in servers], Path(tmp))
        ps = psutil.Process(proc.pid)
        time.sleep(2.0)  # connected and settled
        t0, c0 = time.monotonic(), ps.cpu_times()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), ps.cpu_times()
        rss = ps.memory_info().rss
        stop(proc)
        recorded = sum(p.stat().st_size for p in Path(tmp).glob("*/*.log"))
    cpu = (c1.user - c0.user + c1.system - c0.system) / (t1 - t0)
    return {
        "consoles": consoles,
        "seconds": round(t1 - t0, 2),
        "cpu_percent_of_one_core": round(100 * cpu, 1),
        "rss_mib": round(rss / 2**20, 1),
        "recorded_mib": round(recorded / 2**20, 2),
    }


def flat_out(megabytes: int, payload: bytes) -> dict[str, float | bool]:
    data = (payload * (megabytes * 2**20 // len(payload) + 1))[: megabytes * 2**20]
    server = ConsoleServer(data, 0)
    server.start()
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp)
        t0 = time.monotonic()
        proc = start_watch([f"socket://127.0.0.1:{server.port}"], record)
        size = 0
        while time.monotonic() - t0 < 600:
            size = sum(p.stat().st_size for p in record.glob("*/*.log"))
            if size >= len(data):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        stop(proc)
        logs = sorted(record.glob("*/*.log"))
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in logs)).hexdigest()
    return {
        "megabytes": megabytes,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(len(data) / 2**20 / elapsed, 1),
        "sha256_identical": digest == hashlib.sha256(data).hexdigest(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consoles", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--megabytes", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    payload = console_bytes()
    result = {
        "fleet": fleet(args.consoles, args.seconds, quiet_console_bytes()),
        "fleet_crashing": fleet(args.consoles, args.seconds, payload),
        # Normal console traffic only: this measures recording, not incident writing.
        "flat_out": flat_out(
            args.megabytes, (SHARED / "corpus" / "qemu" / "normal_boot_login.log").read_bytes()
        ),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        o = result["flat_out"]
        for label in ("fleet", "fleet_crashing"):
            f = result[label]
            print(
                f"{label}: {f['consoles']} consoles at 115200 for {f['seconds']} s: "
                f"{f['cpu_percent_of_one_core']} % of one core, RSS {f['rss_mib']} MiB, "
                f"recorded {f['recorded_mib']} MiB"
            )
        print(
            f"flat out: {o['megabytes']} MiB in {o['seconds']} s = {o['mb_per_s']} MiB/s, "
            f"sha256 identical: {o['sha256_identical']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
