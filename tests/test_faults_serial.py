"""A USB serial adapter that vanishes and returns ten times in a minute while the box prints:
every byte that arrived is in the raw log in order, each absence is a marked gap, and the crash
that follows is still detected (a socat pty pair is the adapter and its cable)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from eventtap import open_raw, pace
from labtools import Processes, wait_for
from test_watch_serial import LINE_RATE, _recorded, _socat, _watch

pytestmark = pytest.mark.lab
REPLUGS = 10


def test_ten_replugs_in_a_minute_lose_nothing_received_and_the_crash_is_found(
    tmp_path: Path, processes: Processes, qemu_corpus: Path
) -> None:
    a, b = tmp_path / "server-ttyS0", tmp_path / "console"
    cable = _socat(processes, a, b)
    record = tmp_path / "rec"
    proc = _watch(str(b), "--record", str(record), "--exit-on-crash", "--json")
    # Lines from well after the BIOS banner: a banner after other output is a reboot.
    boot = (qemu_corpus / "normal_boot_login.log").read_bytes().splitlines(keepends=True)[100:]
    started = time.monotonic()

    def events() -> str:
        found = list(record.glob("*/*.events.jsonl"))
        return found[0].read_text() if found else ""

    try:
        for n in range(REPLUGS + 1):
            assert wait_for(lambda n=n: events().count('"state": "connected"') > n, 20), events()
            fd = open_raw(a)
            try:
                segment = f"segment {n} of the boot\r\n".encode()
                segment += b"".join(boot[n * 20 : n * 20 + 20])
                pace(fd, segment, LINE_RATE * 4)
                # Unplugged only once all of it arrived: bytes still inside the cable when it
                # goes were never received, and nothing can record them.
                assert wait_for(lambda s=segment: s in _recorded(record), 10)
            finally:
                os.close(fd)
            if n < REPLUGS:
                processes.stop(cable)  # unplugged ...
                time.sleep(0.3)
                cable = _socat(processes, a, b)  # ... and back, at the same path
        replugged_in = time.monotonic() - started
        # Then the box dies, on the last connection.
        fd = open_raw(a)
        try:
            capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
            oops = capture[capture.index(b"[    3.366884]") :]  # the crash, not its boot
            pace(fd, oops, LINE_RATE * 4)
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(fd)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert json.loads(out.splitlines()[0])["function"] == "crashme_null_deref"
    assert replugged_in < 60, f"ten replugs took {replugged_in:.0f} s"

    data = _recorded(record)
    positions = [data.index(f"segment {n} of the boot".encode()) for n in range(REPLUGS + 1)]
    assert positions == sorted(positions)  # every segment arrived, in order
    assert data.endswith(oops)  # the last connection's bytes, all of them
    text = events()
    assert text.count('"event": "gap: ') >= REPLUGS
    casts = "".join(p.read_text() for p in sorted(record.glob("*/*.cast")))
    assert casts.count('"m", "gap: ') >= REPLUGS
