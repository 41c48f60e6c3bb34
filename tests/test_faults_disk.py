"""The recording disk fills up (a small tmpfs mounted by the test): nothing on it is left
half-written, the console is held in memory, it is said loudly, and the recording goes on
(same folder once space is freed, or another one) with nothing received lost.

Mounting needs root (CI runs as root); elsewhere these tests skip, and under
CRASHCART_REQUIRE_LAB=1 they fail instead.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eventtap import open_raw, pace
from labtools import LAB_REQUIRED, Processes, require_commands, wait_for
from test_watch_serial import LINE_RATE, _socat, _watch
from tuitools import asyncio_test, replay_app, wait_until

from crashcart.incident import write_incident
from crashcart.kernel import analyze_bytes
from crashcart.recorder import Recorder
from crashcart.recording import load_console_bytes
from crashcart.terminal import ScreenTail
from tui.screens.ask_path import AskPathScreen
from tui.screens.confirm import ConfirmScreen

Mount = Callable[[str], Path]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Mount]:
    """Mounts a tmpfs of the given size (`"256k"`) under tmp_path; unmounted afterwards."""
    require_commands("mount", "umount")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "crashcart-test", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
            if LAB_REQUIRED:
                pytest.fail(message + " and CRASHCART_REQUIRE_LAB=1", pytrace=False)
            pytest.skip(message)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler is what the operator deletes later."""
    filler = disk / "filler"
    block = b"\0" * 4096
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def boot_lines(qemu_corpus: Path) -> list[bytes]:
    # From well after the BIOS banner (a banner after other output is a reboot), with a
    # multi-byte character in each line so that a cut would show in the .cast.
    lines = (qemu_corpus / "normal_boot_login.log").read_bytes().splitlines(keepends=True)
    return [line.rstrip(b"\r\n") + " ✓\r\n".encode() for line in lines[100:]]


def oops_of(qemu_corpus: Path) -> bytes:
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
    return capture[capture.index(b"[    3.366884]") :]


def assert_whole(folder: Path) -> None:
    """Every recording file under `folder` is whole: casts parse line by line with a header,
    events are JSON lines, and each .cast replays exactly its .log."""
    for cast in folder.rglob("*.cast"):
        lines = cast.read_text().splitlines()
        assert json.loads(lines[0])["version"] == 2, cast
        for line in lines[1:]:
            json.loads(line)
        log = cast.with_suffix(".log")
        if log.exists():
            # A file may end inside a UTF-8 character (its rest is in the next): that piece is
            # either left out of the .cast or stands there as U+FFFD.
            whole = codecs.getincrementaldecoder("utf-8")("replace").decode(log.read_bytes())
            replayed = load_console_bytes(cast).decode()
            assert replayed in (whole, whole + "\ufffd"), cast
    for events in folder.rglob("*.events.jsonl"):
        for line in events.read_text().splitlines():
            json.loads(line)


def recorded(folder: Path) -> bytes:
    """The console's .log files (not the incidents' copies) in the order they were written."""
    logs = sorted(folder.glob("*/*.log"), key=lambda p: p.stat().st_mtime_ns)
    return b"".join(p.read_bytes() for p in logs)


# -- the recorder --------------------------------------------------------------------------------
def test_a_full_disk_cuts_nothing_in_half_and_a_resume_loses_nothing(
    small_disk: Mount, qemu_corpus: Path
) -> None:
    disk = small_disk("256k")
    rec = Recorder(disk / "rec", "web01")
    lines = boot_lines(qemu_corpus)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (200 << 10))
    sent = bytearray()
    at = 1_700_000_000.0
    for n, line in enumerate(lines * 3):
        if n == 40:
            rec.mark("gap: line lost", at)
        rec.write(line, at)
        sent += line
        at += 0.01
        if rec.failure is not None and len(rec.spool.events) > 50:
            break
    assert rec.failure is not None and rec.failure.errno == errno.ENOSPC
    on_disk = rec.files[0].log.read_bytes()
    # The disk holds whole chunks, the start of what was sent; memory holds all the rest.
    assert sent.startswith(on_disk) and on_disk.endswith(b"\r\n")
    held = b"".join(e.data for e in rec.spool.events)
    assert on_disk + held == sent
    assert_whole(disk / "rec")
    # The operator frees space: the recording goes on in the same folder, memory first.
    filler.unlink()
    first_held = rec.spool.events[0].at
    resumed = rec.resume()
    rec.write(b"after the resume\r\n", at)
    rec.close()
    assert resumed.log.parent == disk / "rec"
    assert b"".join(f.log.read_bytes() for f in rec.files) == sent + b"after the resume\r\n"
    assert_whole(disk / "rec")
    # Times survive: the resumed .cast is timed from when memory started holding the console.
    header, first_event = map(json.loads, resumed.cast.read_text().splitlines()[:2])
    assert header["timestamp"] == int(first_held)
    assert header["timestamp"] + first_event[0] == pytest.approx(first_held, abs=1e-5)


def test_a_resume_onto_another_full_disk_changes_nothing(small_disk: Mount, tmp_path: Path) -> None:
    disk, other = small_disk("64k"), small_disk("64k")
    rec = Recorder(disk / "rec", "web01", spool_limit=40_000)
    fill(disk)
    chunk = b"x" * 999 + b"\n"
    for _ in range(60):  # 60 kB: more than memory may hold
        rec.write(chunk, 1.0)
    assert rec.failure is not None
    fill(other)
    with pytest.raises(OSError) as refused:
        rec.resume(other / "rescue")
    assert refused.value.errno == errno.ENOSPC
    # Nothing half-made there, and the recorder is as it was: failing, holding the console.
    written = [p for p in other.rglob("*") if p.is_file() and p.name != "filler"]
    assert [p for p in written if p.stat().st_size] == []
    assert not list(other.rglob("*.cast")) and not list(other.rglob("*.log"))
    assert rec.failure is not None and rec.spool.size == 40_000 and rec.spool.dropped == 20_000
    resumed = rec.resume(tmp_path / "roomy")
    rec.close()
    # What did not fit in memory is said, in the .cast and in events.jsonl.
    assert "gap: 20000 bytes lost" in resumed.cast.read_text()
    assert '"dropped": 20000' in (tmp_path / "roomy" / "web01.events.jsonl").read_text()
    assert resumed.log.read_bytes() == chunk * 40


def test_a_recorder_started_on_a_full_disk_leaves_no_headless_cast(small_disk: Mount) -> None:
    disk = small_disk("64k")
    (disk / "rec").mkdir()
    fill(disk)
    rec = Recorder(disk / "rec", "web01")
    rec.write(b"still heard\r\n", 5.0)
    assert rec.failure is not None and rec.files == []
    assert not list((disk / "rec").glob("*.cast")) and not list((disk / "rec").glob("*.log"))
    assert rec.extent().spooled[0].data == b"still heard\r\n"


def test_a_rotation_that_meets_a_full_disk_leaves_whole_files(small_disk: Mount) -> None:
    disk = small_disk("64k")
    rec = Recorder(disk / "rec", "web01", max_bytes=8000)
    chunk = "é".encode() * 500  # 1000 bytes, a character split at every odd cut
    sent = b""
    for n in range(200):
        rec.write(chunk[:999] if n % 2 else chunk[999:] + chunk[:999], float(n))
        sent += chunk[:999] if n % 2 else chunk[999:] + chunk[:999]
        if rec.failure is not None:
            break
    assert rec.failure is not None and len(rec.files) > 1
    assert_whole(disk / "rec")
    on_disk = b"".join(f.log.read_bytes() for f in rec.files)
    assert on_disk + b"".join(e.data for e in rec.spool.events) == sent


def test_an_incident_that_does_not_fit_leaves_no_half_folder(
    small_disk: Mount, tmp_path: Path, qemu_corpus: Path
) -> None:
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
    (report,) = analyze_bytes(capture)
    rec = Recorder(tmp_path / "rec", "web01")
    rec.write(capture, 1.0)
    screen = ScreenTail(80, 25)
    screen.feed(capture)
    disk = small_disk("64k")
    fill(disk)
    with pytest.raises(OSError):
        write_incident(disk / "incidents", "web01", report, recording=rec.extent(), screen=screen)
    assert list((disk / "incidents").iterdir()) == []
    rec.close()


# -- crashcart watch ------------------------------------------------------------------------------
@pytest.mark.lab
def test_watch_says_so_holds_the_console_and_catches_up_when_space_is_freed(
    small_disk: Mount, tmp_path: Path, processes: Processes, qemu_corpus: Path
) -> None:
    disk = small_disk("512k")
    a, b = tmp_path / "server-ttyS0", tmp_path / "console"
    _socat(processes, a, b)
    record = disk / "rec"
    proc = _watch(str(b), "--record", str(record), "--exit-on-crash", "--json")
    lines = boot_lines(qemu_corpus)
    first, second, oops = b"".join(lines[:30]), b"".join(lines[30:90]), oops_of(qemu_corpus)
    fd = open_raw(a)
    try:
        assert wait_for(lambda: recorded(record) == b"" and bool(list(record.glob("*/*.log"))), 20)
        pace(fd, first, LINE_RATE * 8)
        assert wait_for(lambda: recorded(record) == first, 10)
        filler = fill(disk)
        pace(fd, second + oops, LINE_RATE * 8)
        time.sleep(3.0)  # the crash is complete, its folder cannot be written
        assert proc.poll() is None  # still watching: the crash is only in memory
        assert second.startswith(recorded(record)[len(first) :])
        assert_whole(record)
        filler.unlink()  # the operator frees space
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(fd)
    assert proc.returncode == 3, err
    said = err.splitlines()
    assert any("recording failed: No space left on device" in s and "in memory" in s for s in said)
    assert any("detected, but its incident folder could not be written" in s for s in said)
    assert any("recording resumed in" in s for s in said)
    # Every byte received is on the disk, in order, and the crash's folder is whole.
    assert recorded(record) == first + second + oops
    assert_whole(record)
    crash = json.loads(out.splitlines()[0])
    assert crash["function"] == "crashme_null_deref"
    incident = Path(crash["incident"])
    assert (incident / "report.json").exists()
    assert (incident / "console.log").read_bytes().endswith(oops)
    assert load_console_bytes(incident / "console.cast").endswith(
        oops.decode("utf-8", "replace").encode()
    )


@pytest.mark.lab
def test_watch_with_a_fallback_moves_the_recording_there_at_once(
    small_disk: Mount, tmp_path: Path, processes: Processes, qemu_corpus: Path
) -> None:
    disk = small_disk("64k")
    (disk / "rec").mkdir()
    fill(disk)  # full before crashcart even starts
    a, b = tmp_path / "server-ttyS0", tmp_path / "console"
    _socat(processes, a, b)
    fallback = tmp_path / "fallback"
    proc = _watch(
        str(b), "--record", str(disk / "rec"), "--fallback", str(fallback), "--exit-on-crash"
    )
    oops = oops_of(qemu_corpus)
    fd = open_raw(a)
    try:
        assert wait_for(lambda: bool(list(fallback.glob("*/*.log"))), 20)
        pace(fd, oops, LINE_RATE * 8)
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(fd)
    assert proc.returncode == 3, err
    assert "recording moved to" in err and str(fallback) in err
    assert recorded(fallback) == oops
    assert_whole(fallback)
    assert str(fallback / "incidents") in out
    assert not list((disk / "rec").rglob("*.cast"))  # nothing half-made on the full disk
    for path in fallback.rglob("*"):  # as private as the folder it stands in for
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


# -- the TUI -------------------------------------------------------------------------------------
@asyncio_test
async def test_tui_shows_the_failure_and_saves_elsewhere_on_the_operators_word(
    small_disk: Mount, tmp_path: Path, qemu_corpus: Path
) -> None:
    disk = small_disk("64k")
    (disk / "rec").mkdir()
    fill(disk)
    app = replay_app(disk / "rec", qemu_corpus / "oops_null_panic.log")
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.panes[0]
        await wait_until(pilot, lambda: bool(pane.session and pane.session.unsaved), 20, "crash")
        await pilot.pause(0.6)  # the status line refreshes twice a second
        status = str(pane.query_one("#status").render())
        assert "REC FAILED: No space left on device" in status
        toasts = [str(n.message) for n in app._notifications]
        assert any("recording failed: No space left on device" in t for t in toasts)
        assert any("could not be written" in t for t in toasts)
        # Quitting now would lose it: the operator is asked, and "no" keeps everything.
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.press("n")
        # Save it elsewhere: the recording and the crash's folder go there.
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, AskPathScreen), 5, "the prompt")
        path_input = app.screen.query_one("#path")
        path_input.value = str(tmp_path / "rescue")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(pane.incidents), 10, "the incident folder")
        assert pane.incidents[0].parent == tmp_path / "rescue" / "incidents"
        assert recorded(tmp_path / "rescue") == (qemu_corpus / "oops_null_panic.log").read_bytes()
        await pilot.pause(0.6)
        assert "REC FAILED" not in str(pane.query_one("#status").render())
        assert pane.unwritten() == ""
