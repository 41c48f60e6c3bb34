"""Builders for the logs tests: real QEMU kernel output turned into the files a crashed host
leaves behind (kern.log lines, vmcore-dmesg.txt, pstore records, a real systemd journal), plus
tests that the journal really is read through journalctl.

The journal is written by journald's own tool, `systemd-journal-remote`, from journal export
format, and read back by `journalctl --directory`: no mock of either side.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import struct
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from labtools import LAB_REQUIRED, require_commands

from crashcart.kernel.lines import clean_line
from crashcart.logs.discover import Source
from crashcart.logs.readers import open_log, read_journal_entries
from crashcart.recording import InputError

_STAMP = re.compile(r"\[\s*(\d+)\.(\d{6})\] ?")
_REMOTE_CANDIDATES = (
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, sec))


def kernel_lines(corpus: Path, name: str) -> list[tuple[int, str]]:
    """(printk stamp in microseconds, message) of every kernel line of a QEMU capture."""
    out: list[tuple[int, str]] = []
    text = (corpus / f"{name}.log").read_bytes().decode("utf-8", "replace")
    for raw in text.split("\n"):
        line = clean_line(raw.rstrip("\r"))
        m = _STAMP.search(line, 0, 200)  # the boot banner follows BIOS escape sequences
        if m is None:
            continue
        out.append((int(m.group(1)) * 1_000_000 + int(m.group(2)), line[m.end() :]))
    return out


def dmesg_text(lines: Iterable[tuple[int, str]]) -> str:
    """The lines as dmesg / vmcore-dmesg.txt prints them."""
    return "".join(f"[{us // 1_000_000:5d}.{us % 1_000_000:06d}] {msg}\n" for us, msg in lines)


def syslog_text(
    lines: Iterable[tuple[int, str]], boot: float, host: str = "web01", style: str = "traditional"
) -> str:
    """The lines as rsyslog writes kern.log: a wall-time prefix, `kernel:` and the printk stamp."""
    out: list[str] = []
    for us, msg in lines:
        wall = boot + us / 1e6
        if style == "traditional":
            prefix = time.strftime("%b %d %H:%M:%S", time.gmtime(wall))
        else:
            whole = int(wall)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            prefix += f".{round((wall - whole) * 1e6):06d}+00:00"
        out.append(f"{prefix} {host} kernel: [{us // 1_000_000:5d}.{us % 1_000_000:06d}] {msg}\n")
    return "".join(out)


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def journal_remote() -> str:
    """systemd-journal-remote's path; skip (or fail under CRASHCART_REQUIRE_LAB=1) without it."""
    for candidate in _REMOTE_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    message = "needs systemd-journal-remote (Debian package systemd-journal-remote)"
    if LAB_REQUIRED:
        pytest.fail(message + " and CRASHCART_REQUIRE_LAB=1", pytrace=False)
    pytest.skip(message)


def _export_field(name: str, value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode("utf-8")
    if b"\n" in data or any(b < 0x20 and b != 0x09 for b in data):
        # The export format's binary form: name, newline, little-endian length, data.
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def write_journal(folder: Path, entries: Sequence[dict[str, str | bytes]]) -> Path:
    """Write a real journal file with systemd-journal-remote; returns the journal folder."""
    remote = journal_remote()
    require_commands("journalctl")
    folder.mkdir(parents=True, exist_ok=True)
    export = b"".join(
        b"".join(_export_field(k, v) for k, v in entry.items()) + b"\n" for entry in entries
    )
    subprocess.run(
        [remote, "-o", str(folder / "system.journal"), "-"],
        input=export,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return folder


def kernel_journal_entries(
    lines: Iterable[tuple[int, str]],
    boot: int,
    boot_id: str,
    host: str = "web01",
    receive_delay_us: int = 1_500_000,
) -> list[dict[str, str | bytes]]:
    """Kernel messages as journald stores them. journald receives them late (it starts after
    the kernel), so __REALTIME_TIMESTAMP is later than when the kernel said them."""
    entries: list[dict[str, str | bytes]] = []
    for us, msg in lines:
        received = us + receive_delay_us
        entries.append(
            {
                "__REALTIME_TIMESTAMP": str(boot * 1_000_000 + received),
                "__MONOTONIC_TIMESTAMP": str(received),
                "_BOOT_ID": boot_id,
                "_HOSTNAME": host,
                "_TRANSPORT": "kernel",
                "SYSLOG_IDENTIFIER": "kernel",
                "_SOURCE_MONOTONIC_TIMESTAMP": str(us),
                "MESSAGE": msg,
            }
        )
    return entries


def service_entry(
    at_us: int, boot: int, boot_id: str, ident: str, pid: int, message: str | bytes
) -> dict[str, str | bytes]:
    return {
        "__REALTIME_TIMESTAMP": str(boot * 1_000_000 + at_us),
        "__MONOTONIC_TIMESTAMP": str(at_us),
        "_BOOT_ID": boot_id,
        "_HOSTNAME": "web01",
        "_TRANSPORT": "syslog",
        "SYSLOG_IDENTIFIER": ident,
        "_PID": str(pid),
        "MESSAGE": message,
    }


# -- tests of reading a real journal ---------------------------------------------------------
BOOT = utc(2026, 11, 26, 9, 0, 0)
BOOT_ID = "4f6c1c0e9d2a4b7e8f00112233445566"


def test_journal_is_read_through_journalctl_with_kernel_times_from_the_kernel_stamp(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    lines = kernel_lines(qemu_corpus, "hung_task_continue")[:50]
    entries = kernel_journal_entries(lines, BOOT, BOOT_ID)
    entries.append(service_entry(60_000_000, BOOT, BOOT_ID, "cron", 321, "job started"))
    folder = write_journal(tmp_path / "journal" / "0123456789abcdef0123456789abcdef", entries)

    raw = list(read_journal_entries(folder))
    assert len(raw) == len(entries)

    log = open_log(Source(folder, "journal"))
    try:
        texts = [text for _i, text in log.lines()]
    finally:
        log.close()
    us, msg = lines[10]
    # Wall time = boot + the kernel's own stamp, not journald's (1.5 s later) receive time.
    wall = BOOT + us / 1e6
    expected_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(wall)))
    expected = (
        f"{expected_prefix}.{us % 1_000_000:06d}+00:00 web01 kernel: "
        f"[{us // 1_000_000:5d}.{us % 1_000_000:06d}] {msg}"
    )
    assert texts[10] == expected
    assert texts[-1].endswith(" web01 cron[321]: job started")
    assert texts[-1].startswith("2026-11-26T09:01:00.000000+00:00")


def test_binary_and_multiline_journal_messages_survive(tmp_path: Path) -> None:
    entries = [
        service_entry(1_000_000, BOOT, BOOT_ID, "evil", 7, b"title\x1b]0;pwned\x07 \xff done"),
        service_entry(2_000_000, BOOT, BOOT_ID, "app", 8, "first line\nsecond line"),
    ]
    folder = write_journal(tmp_path / "j", entries)
    raw = list(read_journal_entries(folder))
    # journalctl hands a message with control bytes or invalid UTF-8 over as a byte array.
    assert isinstance(raw[0]["MESSAGE"], list)
    log = open_log(Source(folder, "journal"))
    try:
        texts = [text for _i, text in log.lines()]
    finally:
        log.close()
    assert "title\x1b]0;pwned\x07 \ufffd done" in texts[0]  # raw here; cleaned when shown
    assert texts[1].endswith("app[8]: first line")
    assert texts[2].endswith("app[8]: second line")


def test_a_corrupt_journal_is_a_one_line_input_error(tmp_path: Path) -> None:
    require_commands("journalctl")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "system.journal").write_bytes(b"not a journal at all" * 100)
    with pytest.raises(InputError) as err:
        open_log(Source(tmp_path / "bad", "journal"))
    assert "no journal entries could be read" in str(err.value)
    assert "\n" not in str(err.value)


def test_builders_keep_the_capture_exact(qemu_corpus: Path) -> None:
    lines = kernel_lines(qemu_corpus, "gpf_list_poison_panic")
    expected = json.loads((qemu_corpus / "gpf_list_poison_panic.expected.json").read_text())
    assert any("general protection fault" in msg for _us, msg in lines)
    assert any(msg.startswith("Linux version") for _us, msg in lines)  # after BIOS escapes
    assert expected["panic_message"] in dmesg_text(lines)
