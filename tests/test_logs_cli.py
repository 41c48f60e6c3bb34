"""`crashcart logs` as the operator sees it: text and JSON output, --timeline, bad input,
hostile bytes in a log, absurdly long lines."""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_logs_builders import kernel_lines, set_mtime, syslog_text, utc

from crashcart import cli_logs
from crashcart.recording import InputError

BOOT = utc(2026, 11, 25, 10, 0, 0)
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# What must never reach the operator's terminal: ESC, BEL, C1 controls (CSI, OSC, DCS, ST) and
# bidirectional overrides.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def run_logs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="crashcart")
    commands = parser.add_subparsers(dest="command")
    cli_logs.add_parser(commands)
    args = parser.parse_args(["logs", *argv])
    status = cli_logs.run(args)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def logs(tmp_path: Path, qemu_corpus: Path) -> Path:
    folder = tmp_path / "log"
    folder.mkdir()
    kern = folder / "kern.log.1.gz"
    kern.write_bytes(
        gzip.compress(
            syslog_text(kernel_lines(qemu_corpus, "gpf_list_poison_panic"), BOOT).encode()
        )
    )
    set_mtime(kern, BOOT + 600)
    syslog = folder / "syslog"
    syslog.write_text(
        "Nov 25 09:30:00 web01 backup[99]: snapshot of /srv started\n"
        "Nov 25 10:00:01 web01 backup[99]: snapshot 40% done\n"
        "Nov 25 10:05:00 web01 backup[99]: snapshot finished\n"
    )
    set_mtime(syslog, BOOT + 600)
    return folder


def test_text_output_lists_the_hit_with_its_crash_and_context(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_logs([str(logs)], capsys)
    assert status == 0
    assert err == ""
    assert "Logs read (2):" in out
    header = re.search(r"^#1  PANIC  2026-11-25 10:00:03 UTC  kern\.log\.1\.gz:(\d+)$", out, re.M)
    assert header is not None, out
    line = int(header.group(1))
    assert "    crash: gpf in crashme_gpf [crashme]; panic: Fatal exception" in out
    assert re.search(rf"^    > {line} \| .*general protection fault", out, re.M)
    assert re.search(rf"^      {line - 20} \| ", out, re.M)  # 20 lines of context before
    assert not re.search(rf"^      {line - 21} \| ", out, re.M)
    assert "1 hit in" in out


def test_json_shape(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run_logs([str(logs), "--json", "--before", "2", "--after", "1"], capsys)
    assert status == 0
    doc: dict[str, Any] = json.loads(out)
    assert out.isascii()
    assert [Path(f["path"]).name for f in doc["files"]] == ["kern.log.1.gz", "syslog"]
    assert doc["files"][0]["compression"] == "gzip"
    (hit,) = doc["hits"]
    for key in ("file", "line", "time", "kind", "text", "context", "crash"):
        assert key in hit
    assert hit["kind"] == "panic"
    assert ISO_UTC.match(hit["time"])
    assert [c["line"] for c in hit["context"]] == list(range(hit["line"] - 2, hit["line"] + 2))
    assert hit["crash"]["function"] == "crashme_gpf"
    assert hit["crash"]["call_trace"][0]["function"] == "crashme_do"


def test_timeline_prints_every_log_of_the_hour_before(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _err = run_logs([str(logs), "--timeline", "1"], capsys)
    assert status == 0
    assert out.startswith("Timeline of the 3600 s before hit #1 (panic at 2026-11-25 10:00:03")
    assert "syslog:1  Nov 25 09:30:00 web01 backup[99]: snapshot of /srv started" in out
    assert "syslog:2  Nov 25 10:00:01 web01 backup[99]: snapshot 40% done" in out
    assert "snapshot finished" not in out  # after the crash
    body = out.splitlines()[1:]
    stamps = [line[2:28] for line in body]
    assert stamps == sorted(stamps)
    # The backup line at 10:00:01 sits among the kernel lines of that second, in time order.
    backup = next(k for k, line in enumerate(body) if "40% done" in line)
    assert "10:00:01" in body[backup - 1] and "kern.log.1.gz" in body[backup - 1]
    assert any(line.startswith("> ") and "general protection fault" in line for line in body)


def test_timeline_json(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _status, out, _err = run_logs(
        [str(logs), "--timeline", "1", "--json", "--window", "60"], capsys
    )
    doc = json.loads(out)
    assert doc["hit"]["index"] == 1
    assert doc["window"] == 60
    files = {Path(line["file"]).name for line in doc["timeline"]}
    assert files == {"kern.log.1.gz", "syslog"}
    assert not any("09:30:00" in line["text"] for line in doc["timeline"])  # outside 60 s
    assert all(ISO_UTC.match(line["time"]) for line in doc["timeline"])


def test_timeline_of_a_hit_that_does_not_exist_is_an_input_error(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InputError, match="only 1 hit"):
        run_logs([str(logs), "--timeline", "2"], capsys)


def test_missing_path_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        run_logs([str(tmp_path / "absent")], capsys)


def test_a_corrupt_file_among_others_is_a_warning(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (logs / "kern.log.2.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    status, out, err = run_logs([str(logs)], capsys)
    assert status == 0
    assert "#1  PANIC" in out
    (warning,) = err.splitlines()
    assert warning.startswith("crashcart: warning: ")
    assert "kern.log.2.gz: corrupt gzip data" in warning


def test_hostile_bytes_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "kern\x1b[31m.log"
    lines = [
        f"Nov 25 10:00:0{k} web01 kernel: [    {k}.000000] driver says \x1b]0;owned\x07hi"
        for k in range(5)
    ]
    lines.append(
        "Nov 25 10:00:06 web01 kernel: [    6.000000] Kernel panic - not syncing: "
        "\x1b[2J\x1b[31mred\x1bP+q\x1b\\ \u202egnp.exe \u009b31m \x07\x08done"
    )
    lines.append("Nov 25 10:00:07 web01 kernel: [    7.000000] \x9d8;;http://x\x9c after")
    evil.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b"\x9b\xff raw C1\n")
    set_mtime(evil, BOOT + 600)
    for argv in ([str(evil)], [str(evil), "--timeline", "1"], [str(evil), "--json"]):
        _status, out, _err = run_logs(argv, capsys)
        assert "Kernel panic" in out
        if "--json" in argv:
            assert out.isascii()
            doc = json.loads(out)
            texts = [doc["hits"][0]["text"], *(c["text"] for c in doc["hits"][0]["context"])]
            assert not any(FORBIDDEN.search(t) for t in texts)
        else:
            assert FORBIDDEN.search(out) is None, repr(FORBIDDEN.search(out))
    assert "red" in out and "done" in out  # the words survive, the controls do not


def test_a_100kb_line_does_not_break_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kern.log"
    flood = "Nov 25 10:00:01 web01 kernel: [    1.000000] " + "x" * 100_000
    panic = (
        "Nov 25 10:00:02 web01 kernel: [    2.000000] Kernel panic - not syncing: " + "y" * 100_000
    )
    log.write_text("\n".join([flood, panic, "Nov 25 10:00:03 web01 kernel: [    3.000000] end"]))
    set_mtime(log, BOOT + 600)
    status, out, _err = run_logs([str(log), "--json"], capsys)
    assert status == 0
    (hit,) = json.loads(out)["hits"]
    assert hit["kind"] == "panic" and hit["line"] == 2
    assert 0 < len(hit["text"]) <= 4096  # shown cut, not 100 kB per line
    assert [c["line"] for c in hit["context"]] == [1, 2, 3]
    assert all(len(c["text"]) <= 4096 for c in hit["context"])
    assert hit["context"][2]["text"].endswith("end")  # last line without a newline
    status, out, _err = run_logs([str(log)], capsys)
    assert status == 0 and max(len(line) for line in out.splitlines()) < 4200
