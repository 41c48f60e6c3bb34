"""The recorder keeps every byte, with timing, privately; incidents are complete folders."""

from __future__ import annotations

import hashlib
import json
import random
import stat
import time
from pathlib import Path

from crashcart.incident import write_incident
from crashcart.kernel import analyze_bytes
from crashcart.recorder import Recorder
from crashcart.recording import load_console_bytes
from crashcart.terminal import ScreenTail


def _chunks(data: bytes, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 700)
        out.append(data[i : i + n])
        i += n
    return out


def test_log_is_byte_identical_and_cast_replays_the_same_bytes(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    data = (qemu_corpus / "ansi_shell_then_sysrq_crash.log").read_bytes()
    rec = Recorder(tmp_path / "rec", "web01")
    for i, chunk in enumerate(_chunks(data)):
        rec.write(chunk, at=1000.0 + i * 0.01)
    rec.close()
    files = rec.files[0]
    assert hashlib.sha256(files.log.read_bytes()).digest() == hashlib.sha256(data).digest()
    # The .cast is a valid asciicast v2 whose output events rebuild the stream (UTF-8 text).
    assert load_console_bytes(files.cast) == data.decode("utf-8", "replace").encode()
    header = json.loads(files.cast.read_text().splitlines()[0])
    assert header["version"] == 2 and header["width"] == 80


def test_multibyte_characters_split_across_chunks_survive_in_the_cast(tmp_path: Path) -> None:
    text = "Grüße — ✓ 日本語\n".encode()
    rec = Recorder(tmp_path, "box")
    for b in text:
        rec.write(bytes([b]), at=1.0)
    rec.close()
    assert load_console_bytes(rec.files[0].cast).decode() == text.decode()


def test_files_are_private_and_folders_0700(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "rec" / "box", "box")
    rec.write(b"login: root\r\nPassword: hunter2\r\n")
    rec.close()
    assert stat.S_IMODE((tmp_path / "rec" / "box").stat().st_mode) == 0o700
    for path in (rec.files[0].log, rec.files[0].cast, tmp_path / "rec/box/box.events.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_rotation_by_size_keeps_every_byte_in_order(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, "box", max_bytes=1000)
    payload = b"".join(b"line %05d\n" % i for i in range(1000))
    for chunk in _chunks(payload):
        rec.write(chunk)
    rec.close()
    assert len(rec.files) > 5
    joined = b"".join(f.log.read_bytes() for f in rec.files)
    assert joined == payload
    assert all(f.log.stat().st_size < 1000 + 700 for f in rec.files)


def test_gap_markers_go_to_the_cast_and_events_not_into_the_log(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, "box")
    rec.write(b"before\n", at=10.0)
    rec.mark("gap: device vanished", at=12.0, started=10.5, ended=12.0)
    rec.write(b"after\n", at=12.1)
    rec.close()
    assert rec.files[0].log.read_bytes() == b"before\nafter\n"
    events = [json.loads(x) for x in rec.files[0].cast.read_text().splitlines()[1:]]
    assert [e[1] for e in events] == ["o", "m", "o"]
    assert events[1][2] == "gap: device vanished"
    logged = [json.loads(x) for x in (tmp_path / "box.events.jsonl").read_text().splitlines()]
    assert logged[0]["event"] == "gap: device vanished" and logged[0]["started"] == 10.5


def test_incident_folder_holds_the_whole_story(tmp_path: Path, qemu_corpus: Path) -> None:
    data = (qemu_corpus / "oops_null_panic.log").read_bytes()
    rec = Recorder(tmp_path / "rec", "web01")
    screen = ScreenTail()
    rec.write(data, at=5.0)
    screen.feed(data)
    report = analyze_bytes(data)[0]
    folder = write_incident(
        tmp_path / "incidents", "web01", report, recording=rec.extent(), screen=screen
    )
    rec.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "console.log",
            "console.cast",
            "screen.txt",
            "screen.svg",
            "oops.txt",
            "report.json",
            "report.md",
        ]
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert (folder / "console.log").read_bytes() == data
    doc = json.loads((folder / "report.json").read_text())
    assert doc["console"] == "web01"
    assert doc["crash"]["function"] == "crashme_null_deref"
    oops = (folder / "oops.txt").read_text()
    assert "BUG: kernel NULL pointer dereference" in oops and "Fatal exception" in oops
    # The screen shows the end of the panic, as the operator saw it.
    assert "end Kernel panic - not syncing: Fatal exception" in (folder / "screen.txt").read_text()
    assert (folder / "screen.svg").read_text().lstrip().startswith("<svg")
    md = (folder / "report.md").read_text()
    assert "crashme_null_deref" in md and "| Module | crashme |" in md


def test_a_restart_in_the_same_folder_keeps_the_earlier_recording_and_events(
    tmp_path: Path,
) -> None:
    first = Recorder(tmp_path, "box")
    first.write(b"first run\n", at=1.0)
    first.mark("disconnected: cable pulled", at=2.0, state="disconnected")
    first.close()
    second = Recorder(tmp_path, "box")
    second.write(b"second run\n", at=3.0)
    second.mark("closed: recording ended", at=4.0, state="closed")
    second.close()
    assert first.files[0].log.read_bytes() == b"first run\n"
    assert second.files[0].log != first.files[0].log
    events = [json.loads(line)["event"] for line in (tmp_path / "box.events.jsonl").open()]
    assert events == ["disconnected: cable pulled", "closed: recording ended"]


def test_files_started_in_the_same_second_sort_in_the_order_written(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, "box", max_bytes=10)
    now = time.time()
    for n in range(12):  # twelve rotations within a second of the first file's
        rec.write(f"chunk {n:02d}\n".encode(), at=now)
    rec.close()
    by_name = sorted(tmp_path.glob("*.log"))
    assert b"".join(p.read_bytes() for p in by_name) == b"".join(
        f"chunk {n:02d}\n".encode() for n in range(12)
    )
