"""The incident folder: everything about one crash, written the moment it is detected.

    INCIDENT/ console.log  console.cast  screen.txt  screen.svg  oops.txt  report.json  report.md

`console.*` are the recording so far (the bytes that led up to the crash), `screen.*` the
emulated screen when the crash completed, `oops.txt` the whole carved block however far it
scrolled. The folder is 0700 and its files 0600; report.json is written last, so a folder with a
report.json is complete.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import IO, Any

from crashcart.kernel.report import CrashReport
from crashcart.recorder import RecordingExtent, cast_line, make_private_dir, open_private
from crashcart.terminal import ScreenSource


def incident_dir_name(console: str, report: CrashReport, at: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(at))
    kind = re.sub(r"[^a-z0-9_]+", "_", report.kind.lower())
    return f"{stamp}-{console}-{kind}"


def write_incident(
    root: Path,
    console: str,
    report: CrashReport,
    *,
    recording: RecordingExtent | None,
    screen: ScreenSource | None,
    at: float | None = None,
    source: str | None = None,
) -> Path:
    """Write the incident folder under `root`; returns its path.

    On OSError (a full disk) the half-written folder is removed again, so that a folder there
    is always a whole one; the caller still has everything in memory to try elsewhere.
    """
    now = time.time() if at is None else at
    folder = _new_folder(make_private_dir(root) / incident_dir_name(console, report, now))
    try:
        if recording is not None:
            _write_recording(recording, folder)
        if screen is not None:
            _write_screen(screen, folder, f"{console}: {report.title}")
        _write_text(folder / "oops.txt", report.text)
        meta = {"console": console, "source": source, "detected_at": now}
        _write_text(folder / "report.md", render_markdown(report, meta))
        payload: dict[str, Any] = {**meta, "crash": report.to_dict()}
        _write_last(folder / "report.json", json.dumps(payload, indent=1) + "\n")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def write_capture(
    root: Path,
    console: str,
    *,
    recording: RecordingExtent | None,
    screen: ScreenSource,
    at: float | None = None,
    source: str | None = None,
) -> Path:
    """A capture taken by hand (no crash): the screen and the recording so far.

    `CAPTURE/ screen.txt screen.svg console.log console.cast capture.json`, with the same
    permissions as an incident; capture.json is written last.
    """
    now = time.time() if at is None else at
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    folder = _new_folder(make_private_dir(root) / f"{stamp}-{console}-capture")
    try:
        if recording is not None:
            _write_recording(recording, folder)
        _write_screen(screen, folder, f"{console}: screen capture")
        meta = {"console": console, "source": source, "captured_at": now}
        _write_last(folder / "capture.json", json.dumps(meta, indent=1) + "\n")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _new_folder(base: Path) -> Path:
    """`base`, or `base-2`, `base-3`... if taken (two crashes in one second), created 0700."""
    folder = base
    n = 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return make_private_dir(folder)


def _write_recording(recording: RecordingExtent, folder: Path) -> None:
    # The recording itself reaches the disk first: an incident must not outlive its evidence.
    # fsync works on any descriptor of the file, so the recorder's own ones are left alone.
    on_disk = [recording.logs[-1][0]] if recording.logs else []
    for path in (*on_disk, *([recording.cast] if recording.cast else [])):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _copy_log_tail(recording, folder / "console.log")
    _copy_cast_tail(recording, folder / "console.cast")


def _write_screen(screen: ScreenSource, folder: Path, title: str) -> None:
    rows = screen.render()  # once: pyte is the slow part of an incident
    _write_text(folder / "screen.txt", screen.text(rows))
    _write_text(folder / "screen.svg", screen.svg(title, rows))


def _write_last(path: Path, text: str) -> None:
    """The file that says the folder is complete: written whole or not at all."""
    partial = path.with_name(f".{path.name}.partial")
    _write_text(partial, text)
    partial.replace(path)


# How much of the recording an incident keeps: about 25,000 lines of console, the whole
# lead-up to a crash. A crash loop writes an incident every few seconds, and copying the whole
# recording each time would be quadratic; the full recording stays beside the incidents.
INCIDENT_RECORDING_TAIL = 2 << 20


def _copy_log_tail(recording: RecordingExtent, dest: Path) -> None:
    """The last INCIDENT_RECORDING_TAIL bytes of the recording: its files (across rotation),
    then what memory held while the disk had failed."""
    memory = b"".join(event.data for event in recording.spooled)[-INCIDENT_RECORDING_TAIL:]
    remaining = INCIDENT_RECORDING_TAIL - len(memory)
    parts: list[tuple[Path, int, int]] = []
    for path, size in reversed(recording.logs):
        if remaining <= 0:
            break
        take = min(size, remaining)
        parts.append((path, size - take, take))
        remaining -= take
    with open_private(dest, "wb") as out:
        for path, offset, length in reversed(parts):
            with path.open("rb") as src:
                src.seek(offset)
                _copy_exactly(src, out, length)
        out.write(memory)


def _copy_cast_tail(recording: RecordingExtent, dest: Path) -> None:
    """The .cast's header and its events up to its extent, the last INCIDENT_RECORDING_TAIL
    bytes, then the events memory held (timed from the same start)."""
    with open_private(dest, "wb") as out:
        if recording.cast is None:
            out.write(recording.cast_header.encode())
        else:
            size = recording.cast_size
            with recording.cast.open("rb") as src:
                header = src.readline()
                out.write(header)
                start = max(len(header), size - INCIDENT_RECORDING_TAIL)
                src.seek(start)
                if start > len(header):
                    start += len(src.readline())  # resume at an event boundary
                _copy_exactly(src, out, max(size - start, 0))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for event in recording.spooled:
            text = decoder.decode(event.data)
            if text or event.label is not None:
                out.write(cast_line(event, text, recording.cast_started).encode())


def _copy_exactly(src: IO[bytes], out: IO[bytes], length: int) -> None:
    """`length` bytes (or what there is): the file may have grown since its extent was taken."""
    while length > 0:
        block = src.read(min(length, 1 << 20))
        if not block:
            return
        out.write(block)
        length -= len(block)


def _write_text(path: Path, text: str) -> None:
    with open_private(path, "w") as f:
        f.write(text)


def render_markdown(report: CrashReport, meta: dict[str, Any]) -> str:
    """A report a person can paste into a ticket."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(meta.get("detected_at", 0)))
    lines = [f"# {report.title}", ""]
    rows = [
        ("Console", meta.get("console")),
        ("Detected", when),
        ("Kind", report.kind),
        ("Panic", report.panic),
        ("Guilty function", report.function),
        ("Module", report.module),
        ("RIP", report.rip),
        ("Kernel", report.kernel),
        ("CPU / PID / Comm", _join(report.cpu, report.pid, report.comm)),
        ("Hardware", report.hardware),
        ("Tainted", report.tainted),
        (
            "Lines",
            f"{report.start_line}-{report.end_line}" + (" (truncated)" if report.truncated else ""),
        ),
    ]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in rows if v not in (None, "")]
    if report.taint:
        lines += ["", "## Taint", ""]
        lines += [f"- **{t.letter}**: {t.meaning}" for t in report.taint]
    if report.call_trace:
        lines += ["", "## Call trace", "", "```"]
        for f in report.call_trace:
            loc = f.function + (f"+{f.offset}/{f.size}" if f.offset and f.size else "")
            lines.append(
                ("? " if not f.reliable else "  ") + loc + (f" [{f.module}]" if f.module else "")
            )
        lines.append("```")
    if report.modules_linked_in:
        lines += ["", "## Modules linked in", "", " ".join(report.modules_linked_in)]
    lines += ["", "## Console", "", "```", *report.lines, "```", ""]
    return "\n".join(lines)


def _join(*values: object) -> str | None:
    parts = [str(v) for v in values if v is not None]
    return " / ".join(parts) if parts else None


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
