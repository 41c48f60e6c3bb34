"""`crashcart watch` on a serial line (a socat pty pair as the null-modem cable).

The far end is the dying server: a real QEMU capture is written into it at 115200-baud pace.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eventtap import open_raw, pace
from labtools import Processes, require_commands, wait_for, wait_for_path

pytestmark = pytest.mark.lab
LINE_RATE = 11520  # bytes/s at 115200 baud, 8N1


def _socat(processes: Processes, a: Path, b: Path) -> subprocess.Popen[bytes]:
    socat = require_commands("socat")["socat"]
    proc = processes.start(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"]
    )
    assert wait_for_path(a, 5) and wait_for_path(b, 5)
    return proc


def _watch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crashcart", "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _recorded(record: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(record.glob("*/*.log")))


def test_a_paced_capture_is_detected_and_recorded_byte_for_byte(
    tmp_path: Path, processes: Processes, qemu_corpus: Path
) -> None:
    a, b = tmp_path / "server-ttyS0", tmp_path / "console"
    _socat(processes, a, b)
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
    record = tmp_path / "rec"
    proc = _watch(str(b), "--record", str(record), "--exit-on-crash", "--json")
    try:
        assert wait_for(lambda: bool(list(record.glob("*/*.events.jsonl"))), 15)
        time.sleep(0.5)
        fd = open_raw(a)
        try:
            pace(fd, capture, LINE_RATE)
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(fd)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    first = json.loads(out.splitlines()[0])
    assert (first["kind"], first["function"], first["module"]) == (
        "null_deref",
        "crashme_null_deref",
        "crashme",
    )
    assert hashlib.sha256(_recorded(record)).digest() == hashlib.sha256(capture).digest()


def test_a_recreated_pty_is_reattached_with_a_gap_marker_and_recording_goes_on(
    tmp_path: Path, processes: Processes
) -> None:
    a, b = tmp_path / "server-ttyS0", tmp_path / "console"
    first = _socat(processes, a, b)
    record = tmp_path / "rec"
    proc = _watch(str(b), "--record", str(record))
    try:
        assert wait_for(lambda: bool(list(record.glob("*/*.events.jsonl"))), 15)
        time.sleep(0.5)
        fd = open_raw(a)
        os.write(fd, b"before the adapter vanished\r\n")
        assert wait_for(lambda: b"vanished" in _recorded(record), 10)
        os.close(fd)
        processes.stop(first)  # the USB adapter is unplugged: both links go away
        time.sleep(1.0)
        _socat(processes, a, b)  # ... and plugged back in at the same path
        events = lambda: next(record.glob("*/*.events.jsonl")).read_text()  # noqa: E731
        assert wait_for(lambda: events().count('"state": "connected"') >= 2, 20), events()
        fd = open_raw(a)
        os.write(fd, b"after it came back\r\n")
        assert wait_for(lambda: b"came back" in _recorded(record), 10)
        os.close(fd)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    text = events()
    assert '"event": "gap: ' in text
    casts = "".join(p.read_text() for p in sorted(record.glob("*/*.cast")))
    assert '"m", "gap: ' in casts
    data = _recorded(record)
    assert data.index(b"vanished") < data.index(b"came back")
