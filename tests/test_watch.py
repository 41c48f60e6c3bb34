"""`crashcart watch`, end to end as an operator runs it: real recordings replayed as consoles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WATCH = [sys.executable, "-m", "crashcart", "watch"]


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WATCH, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


INCIDENT_FILES = {
    "console.log",
    "console.cast",
    "screen.txt",
    "screen.svg",
    "oops.txt",
    "report.json",
    "report.md",
}


def test_every_crash_in_a_recording_gets_a_line_and_a_complete_incident(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    done = _run(
        [
            str(qemu_corpus / "multi_oops_then_panic.cast"),
            "--speed",
            "0",
            "--record",
            str(tmp_path),
            "--json",
        ]
    )
    assert done.returncode == 0, done.stderr
    lines = _json_lines(done.stdout)
    assert [x["kind"] for x in lines] == ["null_deref", "warning", "bug", "panic"]
    assert lines[0]["function"] == "crashme_null_deref" and lines[0]["module"] == "crashme"
    assert set(lines[0]) == {"console", "time", "kind", "title", "function", "module", "incident"}
    for line in lines:
        incident = Path(str(line["incident"]))
        assert {p.name for p in incident.iterdir()} == INCIDENT_FILES
    # The whole recording is kept byte for byte beside the incidents.
    logs = list((tmp_path / "multi_oops_then_panic").glob("*.log"))
    assert len(logs) == 1
    assert logs[0].read_bytes() == (qemu_corpus / "multi_oops_then_panic.log").read_bytes()


def test_exit_on_crash_exits_3_once_the_first_incident_is_complete(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    done = _run(
        [
            str(qemu_corpus / "multi_oops_then_panic.cast"),
            "--speed",
            "0",
            "--record",
            str(tmp_path),
            "--exit-on-crash",
            "--json",
        ]
    )
    assert done.returncode == 3, done.stderr
    lines = _json_lines(done.stdout)
    assert lines and lines[0]["kind"] == "null_deref"
    assert (Path(str(lines[0]["incident"])) / "report.json").is_file()


def test_text_output_is_one_line_per_crash(tmp_path: Path, qemu_corpus: Path) -> None:
    done = _run(
        [str(qemu_corpus / "oops_null_panic.cast"), "--speed", "0", "--record", str(tmp_path)]
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert (
        "null_deref: BUG: kernel NULL pointer dereference in crashme_null_deref [crashme]" in line
    )
    assert "\x1b" not in done.stdout + done.stderr


def test_on_crash_runs_the_command_with_the_incident_and_never_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    log = tmp_path / "hostile.log"
    # A crash whose header carries shell syntax: it must reach no command line.
    log.write_bytes(
        b"[    1.000000] BUG: kernel NULL pointer dereference, address: $(touch "
        + str(marker).encode()
        + b"); `touch "
        + str(marker).encode()
        + b"`\n"
        b"[    1.000100] Oops: 0002 [#1] SMP\n"
        b"[    1.000200] RIP: 0010:bad_func+0x11/0x21 [evil]\n"
        b"[    1.000300] Call Trace:\n"
        b"[    1.000400]  <TASK>\n"
        b"[    1.000500]  caller+0x4a/0x60 [evil]\n"
        b"[    1.000600]  </TASK>\n"
        b"[    1.000700] ---[ end trace 0000000000000000 ]---\n"
        b"login: \n"
    )
    seen = tmp_path / "hook-args.json"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import json, sys\nopen({str(seen)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    done = _run(
        [
            str(log),
            "--speed",
            "0",
            "--record",
            str(tmp_path / "rec"),
            "--on-crash",
            f"{sys.executable} {hook}",
        ]
    )
    assert done.returncode == 0, done.stderr
    args = json.loads(seen.read_text())
    assert len(args) == 1 and Path(args[0]).is_dir()
    assert Path(args[0]).parent == tmp_path / "rec" / "incidents"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gopher://host:70", "unknown console URL scheme 'gopher'"),
        ("socket://127.0.0.1:1", "127.0.0.1:1"),
        ("ipmi://admin:secret@bmc", "password in the URL"),
        ("/nonexistent/recording.cast", "recording.cast"),
    ],
)
def test_bad_urls_get_one_line_and_exit_2(tmp_path: Path, url: str, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CRASHCART_IPMI_PASSWORD"}
    done = subprocess.run(
        [*WATCH, url, "--record", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("crashcart: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "secret" not in done.stderr


def test_sigterm_flushes_and_closes_every_recording(tmp_path: Path, qemu_corpus: Path) -> None:
    source = qemu_corpus / "normal_boot_login.cast"
    proc = subprocess.Popen(
        [
            *WATCH,
            str(source),
            str(qemu_corpus / "oops_null_panic.cast"),
            "--speed",
            "1",
            "--record",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    logs: list[Path] = []
    while time.monotonic() < deadline:
        logs = [p for p in tmp_path.glob("*/*.log") if p.stat().st_size > 0]
        if len(logs) == 2:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(logs) == 2
    recorded = next(tmp_path.glob("normal_boot_login/*.log")).read_bytes()
    whole = (qemu_corpus / "normal_boot_login.log").read_bytes()
    # Everything received up to the signal is on disk, and nothing else.
    assert recorded and whole.startswith(recorded) and len(recorded) < len(whole)
    events = (tmp_path / "normal_boot_login" / "normal_boot_login.events.jsonl").read_text()
    assert '"state": "closed"' in events


def test_a_recording_that_cannot_be_written_is_an_error_not_a_clean_exit(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    # `incidents` is a file, so the crash's incident folder cannot be made: that must show (at
    # once, and again at exit, exit 1), while the console is recorded on to the end.
    record = tmp_path / "rec"
    record.mkdir()
    (record / "incidents").write_text("not a folder")
    source = qemu_corpus / "oops_null_panic.log"
    proc = _run(["--record", str(record), "--speed", "0", str(source)])
    assert proc.returncode == 1, proc.stderr
    said = proc.stderr.splitlines()
    unsaved = [line for line in said if "incident folder could not be written" in line]
    assert len(unsaved) == 1 and "(Not a directory)" in unsaved[0]
    assert said[-1] == "crashcart: oops_null_panic: 1 crash folder(s) never written to disk"
    (log,) = (record / "oops_null_panic").glob("*.log")
    assert log.read_bytes() == source.read_bytes()
