"""The real `crashcart demo` binary in a real terminal: a 120x40 tmux pane of our own.

The demo replays the bundled QEMU capture in real time; the kernel's general protection fault
starts ~9.096 s into it and its `---[ end Kernel panic` line arrives at ~9.105 s. This test reads
those times from the .cast itself and checks, from the outside only (what tmux shows, what lands
in the record folder, the exit status):

- the crash panel shows the crash (`Crashes`, kind `gpf`, function `crashme_gpf`) and the incident
  folder's report.json (written last) exists within INCIDENT_BUDGET seconds of the replayed panic;
- the incident's screen.txt shows the panic line;
- `q` quits with exit status 0 and the recording `.log` is the bundled recording, byte for byte.

tmux runs on a private socket in tmp_path (`-S`), without any tmux.conf, and is killed through
that socket only. Without tmux the test skips (fails under CRASHCART_REQUIRE_LAB=1).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labtools import require_commands

from crashcart.cli import DEMO_CAPTURE, demo_recording
from crashcart.recording import load_console_bytes

pytestmark = pytest.mark.lab  # needs tmux

COLUMNS, ROWS = 120, 40
# From the replayed `---[ end Kernel panic` line to report.json on disk, and the panel on screen.
INCIDENT_BUDGET = 5.0
PANIC_END = b"---[ end Kernel panic"
# The panel once the crash is complete (the crash list says "#1 gpf: ..." from its first line).
PANEL_DETAILS = (
    re.compile(r"\bkind +gpf\b"),
    re.compile(r"\bfunction +crashme_gpf\b"),
    re.compile(r"\bRegisters\b"),
)


def crashcart_argv() -> list[str]:
    """The installed console script beside this interpreter, else `python -m crashcart`."""
    script = Path(sys.executable).with_name("crashcart")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "crashcart"]


def cast_time_of(cast: Path, needle: bytes) -> float:
    """Recording time (s) of the output event that completes the first `needle`."""
    lines = cast.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2, "the demo recording is asciicast v2 (absolute event times)"
    seen = b""
    for line in lines[1:]:
        if not line.strip():
            continue
        stamp, code, text = json.loads(line)
        if code != "o":
            continue
        seen = (seen + text.encode("utf-8", "surrogateescape"))[-4 * len(needle) :]
        if needle in seen:
            return float(stamp)
    raise AssertionError(f"{needle!r} is not in {cast}")


def read_json(path: Path, timeout: float = 5.0) -> dict[str, object]:
    """A JSON file another process may still be writing (it is not written atomically)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Tmux:
    """One tmux server on a socket of our own; every command names that socket."""

    def __init__(self, binary: str, socket: Path) -> None:
        self.binary = binary
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    def capture(self) -> str:
        done = self.run("capture-pane", "-p", "-t", "demo", check=False)
        return done.stdout if done.returncode == 0 else ""

    def alive(self) -> bool:
        return self.run("has-session", "-t", "demo", check=False).returncode == 0

    def kill_server(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.run("kill-server", check=False)


def test_demo_in_tmux_shows_the_crash_writes_the_incident_and_quits(tmp_path: Path) -> None:
    tools = require_commands("tmux")
    demo_cast = Path(demo_recording())
    assert demo_cast.name == DEMO_CAPTURE
    panic_at = cast_time_of(demo_cast, PANIC_END)
    assert 8.0 < panic_at < 11.0, f"the demo's panic moved to {panic_at:.3f} s; update the doc"
    expected_bytes = load_console_bytes(demo_cast)

    record = tmp_path / "rec"
    status_file = tmp_path / "status"
    inner = shlex.join(
        [
            "env",
            "-u",
            "COLUMNS",
            "-u",
            "LINES",
            "TERM=xterm-256color",
            f"XDG_DATA_HOME={tmp_path / 'xdg'}",
            *crashcart_argv(),
            "demo",
            "--record",
            str(record),
        ]
    )
    # The pane's shell writes the exit status, then exits: the pane (and the server) go away.
    command = f"{inner}; echo $? > {shlex.quote(str(status_file))}"
    tmux = Tmux(tools["tmux"], tmp_path / "tmux.sock")
    launched = time.monotonic()
    tmux.run("new-session", "-d", "-s", "demo", "-x", str(COLUMNS), "-y", str(ROWS), command)
    try:
        incidents = record / "incidents"
        deadline = launched + panic_at + INCIDENT_BUDGET + 20.0  # past budget: only to measure
        seen: dict[str, float] = {}  # what first showed when (s after launch)
        screen = ""
        while time.monotonic() < deadline and len(seen) < 3:
            screen = tmux.capture()
            now = time.monotonic() - launched
            if "panel" not in seen and "Crashes" in screen and re.search(r"#1 gpf\b", screen):
                seen["panel"] = now
            if "details" not in seen and all(p.search(screen) for p in PANEL_DETAILS):
                seen["details"] = now
            if "report.json" not in seen and any(incidents.glob("*-gpf/report.json")):
                seen["report.json"] = now
            if not tmux.alive():
                break
            time.sleep(0.05)
        print(f"\npanic replayed at {panic_at:.3f} s of the recording")
        for what, at in seen.items():
            print(f"{what}: {at:.2f} s after launch, {at - panic_at:+.2f} s after the panic")
        assert "panel" in seen, f"the crash panel never opened:\n{screen}"
        assert "details" in seen, f"the crash panel never showed crashme_gpf:\n{screen}"
        assert "report.json" in seen, f"no incident report.json under {incidents}"
        for what, at in seen.items():
            assert at - panic_at <= INCIDENT_BUDGET, (
                f"{what} {at - panic_at:.2f} s after the replayed panic (budget {INCIDENT_BUDGET})"
            )

        (folder,) = incidents.glob("*-gpf")
        for name in ("console.log", "console.cast", "screen.txt", "screen.svg", "oops.txt"):
            assert (folder / name).is_file(), f"{folder.name} lacks {name}"
        assert "Kernel panic - not syncing" in (folder / "screen.txt").read_text(encoding="utf-8")
        crash = read_json(folder / "report.json")["crash"]
        assert (crash["kind"], crash["function"]) == ("gpf", "crashme_gpf"), crash

        tmux.run("send-keys", "-t", "demo", "q")
        quit_sent = time.monotonic()
        while time.monotonic() - quit_sent < 10 and not status_file.exists():
            time.sleep(0.05)
        assert status_file.exists(), f"still running 10 s after q:\n{tmux.capture()}"
        print(f"exited {time.monotonic() - quit_sent:.2f} s after q")
        status = ""
        while time.monotonic() - quit_sent < 12 and not status:  # the shell is writing it
            status = status_file.read_text().strip()
            time.sleep(0.02)
        assert status == "0", f"crashcart exited with status {status!r}"
        gone = time.monotonic()
        while time.monotonic() - gone < 5 and tmux.alive():
            time.sleep(0.05)
        assert not tmux.alive(), "the pane stayed open after crashcart exited"
    finally:
        tmux.kill_server()

    logs = [p for p in record.rglob("*.log") if incidents not in p.parents]
    assert len(logs) == 1, f"expected one recording, found {logs}"
    recorded = logs[0].read_bytes()
    assert recorded == expected_bytes, (
        f"{logs[0]}: {len(recorded)} bytes, the bundled recording has {len(expected_bytes)}"
    )
