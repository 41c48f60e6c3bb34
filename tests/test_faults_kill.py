"""crashcart SIGKILLed mid-recording: the `.log` holds every byte it had read (write-through
per chunk), the `.cast` is valid up to its last complete line, and a restart starts a new file
instead of overwriting the old one."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from labtools import wait_for

WATCH = [sys.executable, "-m", "crashcart", "watch"]


class PacedServer:
    """A console server on 127.0.0.1 that sends `data` at `rate` bytes/s to one client and
    remembers, for each moment, how much it had handed to the socket."""

    def __init__(self, data: bytes, rate: float) -> None:
        self.data = data
        self.rate = rate
        self.sent: list[tuple[float, int]] = []  # (monotonic time, bytes sent so far)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        peer, _ = self._server.accept()
        total = 0
        chunk = 512
        start = time.monotonic()
        with peer:
            try:
                while total < len(self.data):
                    due = start + total / self.rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    peer.sendall(self.data[total : total + chunk])
                    total += len(self.data[total : total + chunk])
                    self.sent.append((time.monotonic(), total))
            except OSError:
                pass  # the client was killed
        self._server.close()

    def sent_before(self, moment: float) -> int:
        return max((n for t, n in self.sent if t <= moment), default=0)


def test_sigkill_loses_nothing_read_and_a_restart_appends(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    sample = (qemu_corpus / "oops_null_panic.log").read_bytes()
    data = (sample * 20)[: 2 << 20]
    server = PacedServer(data, rate=200_000)
    record = tmp_path / "rec"
    proc = subprocess.Popen(
        [*WATCH, "--record", str(record), f"socket://127.0.0.1:{server.port}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: server.sent_before(time.monotonic()) > 300_000, 20)
    finally:
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    logs = sorted(record.glob("*/*.log"))  # one console, one recording so far
    (log,) = logs
    recorded = log.read_bytes()
    # Exactly a prefix of what was sent, and at least what had been sent 0.3 s before
    # the kill: crashcart had read it, so it was in the file (no userspace buffering).
    assert data.startswith(recorded)
    assert len(recorded) >= server.sent_before(killed_at - 0.3) > 0

    cast_lines = log.with_suffix(".cast").read_text().splitlines()
    header = json.loads(cast_lines[0])
    assert header["version"] == 2
    complete = cast_lines[1:-1]  # the last line may have been cut by the kill
    events = [json.loads(line) for line in complete]
    replayed = "".join(text for _, code, text in events if code == "o")
    # The .cast decodes UTF-8 incrementally; its text is the stream's, up to the last event.
    assert data.decode("utf-8", "replace").startswith(replayed)

    # A restart on the same folder writes a new recording; the killed one stays as it was.
    before = hashlib.sha256(recorded).hexdigest()
    again = subprocess.run(
        [
            *WATCH,
            "--record",
            str(record),
            "--speed",
            "0",
            str(qemu_corpus / "normal_boot_login.log"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert hashlib.sha256(log.read_bytes()).hexdigest() == before
    assert len(list(record.glob("*/*.log"))) == 2
