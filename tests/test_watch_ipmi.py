"""`crashcart watch ipmi://...` against a real BMC simulator: the crash arrives over SOL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipmilab import BmcLab, bmc_lab, write_host

__all__ = ["bmc_lab"]  # the fixture, imported for pytest

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(bmc_lab: BmcLab) -> Iterator[BmcLab]:
    bmc_lab.deactivate_sol()
    bmc_lab.reset_sol_sequence()
    yield bmc_lab
    bmc_lab.deactivate_sol()


def _watch(lab: BmcLab, record: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CRASHCART_IPMI_PASSWORD": lab.password}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crashcart",
            "watch",
            lab.url(),
            "--record",
            str(record),
            "--json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def test_a_crash_on_the_servers_serial_port_is_detected_through_sol(
    lab: BmcLab, qemu_corpus: Path, tmp_path: Path
) -> None:
    record = tmp_path / "rec"
    proc = _watch(lab, record, "--exit-on-crash")
    try:
        host = lab.open_host()
        # Wait until the SOL session is up (the recording exists), then the box "crashes".
        deadline = time.monotonic() + 30
        while not list(record.glob("*/*.log")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        write_host(host, (qemu_corpus / "oops_null_panic.log").read_bytes())
        out, err = proc.communicate(timeout=60)
        os.close(host)
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
    secret = lab.password.encode()
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert leaked == []
    assert lab.password not in out + err


def test_a_held_sol_console_is_refused_with_a_hint_unless_takeover_is_given(
    lab: BmcLab, tmp_path: Path
) -> None:
    # A colleague's session (or a dead client's) holds the console.
    holder = subprocess.Popen(
        [
            "ipmitool",
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.0.1",
            "-p",
            str(lab.port),
            "-U",
            lab.user,
            "-E",
            "sol",
            "activate",
        ],
        env={**os.environ, "IPMI_PASSWORD": lab.password},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(2.0)
        refused = _watch(lab, tmp_path / "a")
        _, err = refused.communicate(timeout=60)
        assert refused.returncode == 2
        assert "--takeover" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()
    taken = _watch(lab, tmp_path / "b", "--takeover")
    try:
        deadline = time.monotonic() + 30
        connected = False
        while not connected and time.monotonic() < deadline:
            events = list((tmp_path / "b").glob("*/*.events.jsonl"))
            connected = bool(events) and '"state": "connected"' in events[0].read_text()
            time.sleep(0.1)
        assert connected
    finally:
        taken.terminate()
        taken.communicate(timeout=30)
