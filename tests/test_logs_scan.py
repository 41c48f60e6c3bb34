"""`crashcart.logs.scan` on a rescued root built from real QEMU kernel output.

The fake root holds what a Debian server leaves after four boots, each ended by a real capture:
  kern.log.3.xz   boot 1 (RFC 3339 lines): two WARNINGs (warning_continue)
  kern.log.2.gz   boot 2 (traditional lines): an EXT4 error, an I/O error storm, then the GPF
                  and panic of gpf_list_poison_panic
  syslog.2.gz     services logging in the hour around boot 2 (the timeline must show them)
  syslog.3.gz     corrupt gzip (a warning, not fatal)
  kern.log.1      boot 3 up to just before its crash: the oops never reached the disk...
  var/crash/202611261200/vmcore-dmesg.txt   ...but kdump saved it (kernel clock only)
  kern.log        boot 4 (RFC 3339): hung_task_continue, also in the journal
  journal/<id>/   boot 4 written by systemd-journal-remote, read with journalctl
  var/lib/systemd/pstore/...   a pstore record of an unknown boot (softlockup_continue)
  messages        a monitoring agent quoting kernel errors (not kernel hits)
  installer/syslog  old installer log with a panic line: not read
"""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path
from typing import Any

import pytest
from test_logs_builders import (
    dmesg_text,
    kernel_journal_entries,
    kernel_lines,
    service_entry,
    set_mtime,
    syslog_text,
    utc,
    write_journal,
)

from crashcart.logs import LogScan, kernel_clock_timeline, scan, timeline
from crashcart.logs.timeline import format_time
from crashcart.recording import InputError

B1 = utc(2026, 11, 24, 8, 0, 0)
B2 = utc(2026, 11, 25, 10, 0, 0)
B3 = utc(2026, 11, 26, 12, 0, 0)
B4 = utc(2026, 11, 27, 6, 0, 0)
BOOT4_ID = "9a1b2c3d4e5f60718293a4b5c6d7e8f9"
MACHINE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EXT4 = "EXT4-fs error (device sda1): ext4_lookup:1855: inode #2: comm sh: iget: checksum invalid"
IO = "I/O error, dev sda, sector {} op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"
IO_REPEATS = 30


def _expected(qemu_corpus: Path) -> dict[str, Any]:
    return json.loads((qemu_corpus / "EXPECTED.json").read_text())


def _boot2_lines(qemu_corpus: Path) -> list[tuple[int, str]]:
    """gpf_list_poison_panic with a file-system error and a disk error storm before the GPF."""
    lines = kernel_lines(qemu_corpus, "gpf_list_poison_panic")
    gpf = next(k for k, (_us, msg) in enumerate(lines) if "general protection fault" in msg)
    before_us = lines[gpf - 1][0]
    extra = [(before_us - 500_000, EXT4)]
    extra += [(before_us - 400_000 + k * 1000, IO.format(2048 + 8 * k)) for k in range(IO_REPEATS)]
    return lines[: gpf - 1] + extra + lines[gpf - 1 :]


def _service_lines(boot: int) -> str:
    """Services in traditional syslog form from 2 h before boot 2 to 2 h after it."""
    import time

    out = []
    for offset in (-7200, -1800, -600, -60, 2, 7200):
        when = time.strftime("%b %d %H:%M:%S", time.gmtime(boot + offset))
        out.append(f"{when} web01 app[4242]: heartbeat at offset {offset}\n")
    return "".join(out)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, qemu_corpus: Path) -> Path:
    root = tmp_path_factory.mktemp("rescued") / "mnt"
    log = root / "var" / "log"
    log.mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")

    boot1 = kernel_lines(qemu_corpus, "warning_continue")
    p = log / "kern.log.3.xz"
    p.write_bytes(lzma.compress(syslog_text(boot1, B1, style="rfc3339").encode()))
    set_mtime(p, B1 + 3600)

    p = log / "kern.log.2.gz"
    p.write_bytes(gzip.compress(syslog_text(_boot2_lines(qemu_corpus), B2).encode()))
    set_mtime(p, B2 + 3600)
    p = log / "syslog.2.gz"
    p.write_bytes(gzip.compress(_service_lines(B2).encode()))
    set_mtime(p, B2 + 7300)
    p = log / "syslog.3.gz"
    p.write_bytes(b"\x1f\x8b" + b"\x00" * 300)  # a gzip header and garbage
    set_mtime(p, B1)

    boot3 = kernel_lines(qemu_corpus, "oops_null_panic")
    crash3 = next(k for k, (_us, msg) in enumerate(boot3) if msg.startswith("BUG: kernel NULL"))
    p = log / "kern.log.1"
    p.write_text(syslog_text(boot3[: crash3 - 5], B3))
    set_mtime(p, B3 + 60)
    dump = root / "var" / "crash" / "202611261200"
    dump.mkdir(parents=True)
    (dump / "vmcore-dmesg.txt").write_text(dmesg_text(boot3))

    boot4 = kernel_lines(qemu_corpus, "hung_task_continue")
    p = log / "kern.log"
    p.write_text(syslog_text(boot4, B4, style="rfc3339"))
    set_mtime(p, B4 + 600)
    entries = kernel_journal_entries(boot4, B4, BOOT4_ID)
    entries.append(service_entry(5_000_000, B4, BOOT4_ID, "nginx", 900, "worker started"))
    write_journal(log / "journal" / MACHINE_ID, entries)

    pstore = root / "var" / "lib" / "systemd" / "pstore" / "1795766400"
    pstore.mkdir(parents=True)
    record = "Oops#1 Part1\n" + dmesg_text(kernel_lines(qemu_corpus, "softlockup_continue"))
    (pstore / "dmesg.txt").write_text(record)

    p = log / "messages"
    p.write_text(
        # A monitoring agent quoting the kernel: hit words, but not the kernel speaking.
        "Nov 27 06:00:30 web01 check_disk[77]: CRITICAL: I/O error, dev sdb, sector 2048\n"
        "Nov 27 06:00:31 web01 logwatch[78]: seen: Kernel panic - not syncing: Fatal exception\n"
    )
    set_mtime(p, B4 + 600)
    (log / "installer").mkdir()
    (log / "installer" / "syslog").write_text(
        "Nov 20 10:00:00 debian kernel: [    1.000000] Kernel panic - not syncing: old\n"
    )
    return root


@pytest.fixture(scope="module")
def result(root: Path) -> Any:
    with scan([root]) as found:
        yield found


def _hits_of(result: LogScan, kind: str) -> list[Any]:
    return [h for h in result.hits if h.kind == kind]


def test_every_place_of_a_rescued_root_is_read_and_the_rest_ignored(
    result: LogScan, root: Path
) -> None:
    names = [str(Path(tl.name).relative_to(root)) for tl in result.files]
    assert names == [
        "var/log/kern.log.3.xz",
        "var/log/kern.log.2.gz",
        "var/log/kern.log.1",
        "var/log/kern.log",
        "var/log/syslog.2.gz",
        "var/log/messages",
        f"var/log/journal/{MACHINE_ID}",
        "var/crash/202611261200/vmcore-dmesg.txt",
        "var/lib/systemd/pstore/1795766400/dmesg.txt",
    ]
    # The corrupt rotation is a warning naming the file; the scan went on.
    assert any("syslog.3.gz" in w and "corrupt gzip" in w for w in result.warnings)


def test_hits_come_in_time_order_with_untimed_ones_last(result: LogScan) -> None:
    kinds = [h.kind for h in result.hits]
    assert kinds == [
        "warning",  # boot 1
        "warning",
        "fs_error",  # boot 2
        "io_error",
        "panic",
        "panic",  # boot 3, from vmcore-dmesg.txt
        "hung_task",  # boot 4
        "soft_lockup",  # the pstore record: no known boot
    ]
    times = [h.time for h in result.hits]
    timed = [t for t in times if t is not None]
    assert timed == sorted(timed)
    assert times[-1] is None
    assert times.index(None) == len(times) - 1


def test_the_ext4_error_and_the_panic_of_a_rotated_gz_are_found(
    result: LogScan, qemu_corpus: Path
) -> None:
    (fs,) = _hits_of(result, "fs_error")
    assert fs.file.endswith("var/log/kern.log.2.gz")
    assert EXT4 in fs.text
    assert fs.crash is None
    panic = next(h for h in result.hits if h.file.endswith("kern.log.2.gz") and h.kind == "panic")
    assert "general protection fault" in panic.text  # what started it
    assert panic.kinds == ["oops", "panic"]  # the panic line merged into the oops's report
    expected = _expected(qemu_corpus)["gpf_list_poison_panic"]
    assert panic.crash is not None
    assert panic.crash["function"] == expected["function_any_of"][0]
    assert panic.crash["module"] == expected["module"]
    assert expected["panic_contains"] in panic.crash["panic"]
    # Traditional syslog time: whole seconds, year from the file's mtime.
    assert format_time(panic.time) == "2026-11-25T10:00:03.000000Z"
    # The report's lines are the file's: the RIP line is inside it.
    assert panic.crash["start_line"] <= panic.line <= panic.crash["end_line"]


def test_an_xz_rotation_is_read_with_exact_rfc3339_times(
    result: LogScan, qemu_corpus: Path
) -> None:
    first, second = _hits_of(result, "warning")
    assert first.file.endswith("kern.log.3.xz")
    assert first.crash is not None and first.crash["function"] == "crashme_warning"
    us = next(us for us, msg in kernel_lines(qemu_corpus, "warning_continue") if "WARNING:" in msg)
    assert format_time(first.time) == format_time(B1 + us / 1e6)
    assert second.line > first.crash["end_line"]


def test_an_io_error_storm_is_one_hit_with_a_count(result: LogScan) -> None:
    (io,) = _hits_of(result, "io_error")
    assert io.repeats == IO_REPEATS - 1
    assert io.last_line == io.line + IO_REPEATS - 1
    assert "I/O error, dev sda, sector 2048" in io.text


def test_context_is_20_lines_before_and_5_after(result: LogScan) -> None:
    (fs,) = _hits_of(result, "fs_error")
    numbers = [n for n, _text in fs.context]
    assert numbers == list(range(fs.line - 20, fs.line + 6))
    assert dict(fs.context)[fs.line] == fs.text


def test_context_size_follows_before_and_after(root: Path) -> None:
    with scan([root / "var" / "log" / "kern.log.2.gz"], before=3, after=1) as found:
        (fs,) = _hits_of(found, "fs_error")
        assert [n for n, _t in fs.context] == [
            fs.line - 3,
            fs.line - 2,
            fs.line - 1,
            fs.line,
            fs.line + 1,
        ]


def test_vmcore_dmesg_gets_wall_time_from_the_boot_found_in_kern_log(
    result: LogScan, qemu_corpus: Path
) -> None:
    panic = next(h for h in result.hits if h.file.endswith("vmcore-dmesg.txt"))
    assert panic.kind == "panic"
    expected = _expected(qemu_corpus)["oops_null_panic"]
    assert panic.crash is not None
    assert panic.crash["function"] in expected["function_any_of"]
    assert panic.crash["kind"] in expected["kind_any_of"]
    us = next(
        us for us, msg in kernel_lines(qemu_corpus, "oops_null_panic") if msg.startswith("BUG:")
    )
    # kern.log.1 has whole-second times: the boot is known to within a second.
    assert panic.time is not None
    assert abs(panic.time - (B3 + us / 1e6)) <= 1.0
    vmcore = next(tl for tl in result.files if tl.name.endswith("vmcore-dmesg.txt"))
    assert vmcore.clock == "kernel"
    assert len(vmcore.boots) == 1 and vmcore.boots[0].wall is not None


def test_a_kernel_message_in_kern_log_and_the_journal_is_one_hit(
    result: LogScan, qemu_corpus: Path
) -> None:
    (hung,) = _hits_of(result, "hung_task")
    assert hung.file.endswith("var/log/kern.log")
    assert [Path(f).name for f, _n in hung.also] == [MACHINE_ID]
    expected = _expected(qemu_corpus)["hung_task_continue"]
    assert hung.crash is not None and hung.crash["function"] in expected["function_any_of"]
    us = next(us for us, msg in kernel_lines(qemu_corpus, "hung_task_continue") if "INFO:" in msg)
    assert format_time(hung.time) == format_time(B4 + us / 1e6)


def test_journal_hits_are_found_and_timed_on_their_own(root: Path, qemu_corpus: Path) -> None:
    with scan([root / "var" / "log" / "journal"]) as found:
        (hung,) = found.hits
        us = next(
            us for us, msg in kernel_lines(qemu_corpus, "hung_task_continue") if "INFO:" in msg
        )
        # The kernel's stamp on the boot's wall clock, exact to the microsecond.
        assert format_time(hung.time) == format_time(B4 + us / 1e6)
        assert hung.crash is not None and hung.crash["function"] == "crashme_hung_task"


def test_a_record_of_an_unknown_boot_has_no_time_and_comes_last(result: LogScan) -> None:
    last = result.hits[-1]
    assert last.file.endswith("pstore/1795766400/dmesg.txt")
    assert last.time is None
    assert last.crash is not None and last.crash["function"] == "crashme_spin"
    tl = next(tl for tl in result.files if tl.name == last.file)
    lines = kernel_clock_timeline(tl, last.line - 1, window=5.0)
    assert lines and all(line.time is None for line in lines)
    assert any(line.line == last.line for line in lines)


def test_other_programs_and_old_installer_logs_make_no_hits(result: LogScan) -> None:
    assert not any(h.file.endswith("messages") for h in result.hits)
    assert not any("installer" in tl.name for tl in result.files)


def test_timeline_merges_every_log_of_the_hour_before_the_crash(result: LogScan) -> None:
    panic = next(h for h in result.hits if h.file.endswith("kern.log.2.gz") and h.kind == "panic")
    assert panic.time is not None
    lines = timeline(result.files, panic.time)
    files = {Path(line.file).name for line in lines}
    assert files == {"kern.log.2.gz", "syslog.2.gz"}
    services = [line.text for line in lines if "heartbeat" in line.text]
    assert [s.rsplit(" ", 1)[1] for s in services] == ["-1800", "-600", "-60", "2"]
    assert [line.time for line in lines] == sorted(line.time for line in lines)  # type: ignore[misc]
    assert all(panic.time - 3600 <= line.time <= panic.time + 10 for line in lines)  # type: ignore[operator]
    # The crash itself is in it, with its file and line, and nothing of later boots.
    assert any(line.line == panic.line and line.file == panic.file for line in lines)
    assert not any("kern.log.1" in line.file for line in lines)


def test_timeline_window_is_respected(result: LogScan) -> None:
    panic = next(h for h in result.hits if h.file.endswith("kern.log.2.gz") and h.kind == "panic")
    lines = timeline(result.files, panic.time, window=120)  # type: ignore[arg-type]
    services = [line.text for line in lines if "heartbeat" in line.text]
    assert [s.rsplit(" ", 1)[1] for s in services] == ["-60", "2"]


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        scan([tmp_path / "nope"])


def test_a_single_corrupt_file_is_an_input_error(root: Path) -> None:
    with pytest.raises(InputError, match="corrupt gzip"):
        scan([root / "var" / "log" / "syslog.3.gz"])


def test_a_truncated_gzip_keeps_what_it_could_read(tmp_path: Path) -> None:
    text = "".join(
        f"Nov 26 10:00:{k % 60:02d} web01 kernel: [ {k:4d}.000000] line {k}\n" for k in range(3000)
    )
    text += "Nov 26 10:59:59 web01 kernel: [ 3000.000000] Kernel panic - not syncing: late\n"
    data = gzip.compress(text.encode())
    p = tmp_path / "kern.log.4.gz"
    p.write_bytes(data[: len(data) // 2])
    with scan([p]) as found:
        assert any("truncated" in w for w in found.warnings)
        assert 0 < len(found.files[0].log) < 3001


def test_new_year_rolls_the_year_over(tmp_path: Path) -> None:
    p = tmp_path / "kern.log"
    p.write_text(
        f"Dec 31 23:59:58 web01 kernel: [  100.000000] {EXT4}\n"
        f"Jan  1 00:00:01 web01 kernel: [  103.000000] {IO.format(8)}\n"
    )
    set_mtime(p, utc(2027, 1, 1, 0, 5, 0))
    with scan([p]) as found:
        assert [(h.kind, format_time(h.time)) for h in found.hits] == [
            ("fs_error", "2026-12-31T23:59:58.000000Z"),
            ("io_error", "2027-01-01T00:00:01.000000Z"),
        ]


def test_traditional_times_are_read_in_the_roots_zone(tmp_path: Path) -> None:
    root = tmp_path / "mnt"
    (root / "var" / "log").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    p = root / "var" / "log" / "kern.log"
    p.write_text("Nov 26 11:00:00 web01 kernel: [    5.000000] Kernel panic - not syncing: x\n")
    set_mtime(p, utc(2026, 11, 26, 12))
    with scan([root]) as found:
        assert format_time(found.hits[0].time) == "2026-11-26T10:00:00.000000Z"


def test_rfc3339_offsets_are_honoured(tmp_path: Path) -> None:
    p = tmp_path / "syslog"
    p.write_text(
        "2026-11-26T12:00:00.250000+02:00 web01 kernel: [ 5.000000] Kernel panic - not syncing: x\n"
    )
    with scan([p]) as found:
        assert format_time(found.hits[0].time) == "2026-11-26T10:00:00.250000Z"


def test_every_qemu_capture_as_kern_log_gives_the_expected_crash(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    """Syslog prefixes stripped, the region parsed: the same findings as `analyze` on the
    console capture (EXPECTED.json), for every capture."""
    mismatches: list[str] = []
    for name, expected in sorted(_expected(qemu_corpus).items()):
        p = tmp_path / name / "kern.log"
        p.parent.mkdir()
        p.write_text(syslog_text(kernel_lines(qemu_corpus, name), B2))
        set_mtime(p, B2 + 3600)
        with scan([p]) as found:
            crashes = [h.crash for h in found.hits if h.crash is not None]
        if expected.get("crash") is False:
            if crashes:
                mismatches.append(f"{name}: crash reported in a clean boot")
            continue
        if not crashes:
            mismatches.append(f"{name}: no crash found")
            continue
        first = crashes[0]
        got = (first["kind"], first["function"], first["module"])
        if first["kind"] not in expected["kind_any_of"]:
            mismatches.append(f"{name}: kind {got}")
        if expected["function_any_of"] and first["function"] not in expected["function_any_of"]:
            mismatches.append(f"{name}: function {got}")
        if first["module"] != expected["module"]:
            mismatches.append(f"{name}: module {got}")
        if expected["panic_contains"] and not any(
            expected["panic_contains"] in (c["panic"] or "") for c in crashes
        ):
            mismatches.append(f"{name}: panic reason")
        if {t["letter"] for t in first["taint"]} != set(expected["taint_letters"]):
            mismatches.append(f"{name}: taint {first['taint']}")
    assert mismatches == []
