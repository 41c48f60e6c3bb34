"""`crashcart report INCIDENT --format md|json|html` on a real incident folder.

The incident is the real crashme capture written by `write_incident`, plus the optional files
other parts of crashcart add (screen.txt, logs.json, hardware.json, runbook.json), some of them
carrying hostile console text: escape sequences, HTML, Markdown links and fences.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from crashcart import cli_report
from crashcart.incident import write_incident
from crashcart.kernel import analyze_bytes
from crashcart.recording import InputError
from crashcart.runbook import RunbookState, Settings, load_runbook

CAPTURE = "gpf_list_poison_panic"
ESC = "\x1b"
HOSTILE_SCREEN = (
    "login: \x1b[31mroot\x1b[0m\n"
    "<script>alert('screen')</script>\n"
    "```\n"
    "[click](http://evil.example/) ![img](http://evil.example/x.png)\n"
    "\x1b]0;retitled\x07\x9b2Jbell\x07\n"
)


def report_cli(argv: list[str]) -> int:
    """`crashcart report ...` through the subcommand's own parser pieces."""
    parser = argparse.ArgumentParser(prog="crashcart")
    cli_report.add_parser(parser.add_subparsers(dest="command"))
    return cli_report.run(parser.parse_args(argv))


def render(folder: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert report_cli(["report", str(folder), "--format", fmt]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


@pytest.fixture
def bare(tmp_path: Path, qemu_corpus: Path) -> Path:
    """An incident as `watch` writes it without a recorder or screen: report.json, oops.txt."""
    report = analyze_bytes((qemu_corpus / f"{CAPTURE}.log").read_bytes())[0]
    assert report.module == "crashme"
    return write_incident(tmp_path, "web01", report, recording=None, screen=None, at=1_700_000_000)


@pytest.fixture
def full(bare: Path) -> Path:
    (bare / "screen.txt").write_text(HOSTILE_SCREEN)
    (bare / "hardware.json").write_text(
        json.dumps(
            {
                "host": "web01",
                "checks": [
                    {"name": "memory", "verdict": "fail", "evidence": "EDAC MC0: 3 UE <b>DIMM</b>"},
                    {"name": "disks", "verdict": "pass", "evidence": ["sda PASSED", "sdb PASSED"]},
                ],
            }
        )
    )
    hits = [
        {
            "file": "/var/log/kern.log",
            "line": 812 + n,
            "time": 1_699_999_990 + n,
            "kind": "gpf",
            "text": f"general protection fault \x1b[1mhit {n}\x1b[0m <img src=x onerror=alert(1)>",
            "context": ["before line", "after | line"],
            "crash": {"title": "general protection fault in crashme_gpf"},
        }
        for n in range(105)
    ]
    (bare / "logs.json").write_text(
        json.dumps(
            {
                "files": ["/var/log/kern.log", {"path": "/var/log/syslog"}],
                "hits": hits,
                "timeline": [
                    {
                        "time": 1_699_999_000,
                        "source": "dpkg.log",
                        "kind": "upgrade",
                        "text": "[k](http://evil.example/) | x",
                    },
                    {"time": 1_700_000_000, "source": "console", "kind": "crash", "text": "gpf"},
                ],
            }
        )
    )
    state = RunbookState.load(bare)
    state.settings = Settings(family="debian", os_id="debian")
    state.save(bare)
    steps, state = load_runbook(bare)  # the plan now has the Debian commands
    isolate = next(s for s in steps if s.id == "isolate_module")
    state.record_run(
        "isolate_module",
        isolate.commands[0],
        "ssh",
        destination="root@web01",
        exit_status=0,
        at=1_700_000_500,
    )
    state.mark("isolate_module", "done", "blacklisted\n\x1b[2Jrebooted <b>ok</b>", at=1_700_000_600)
    state.mark("secure_evidence", "skipped", "nothing in pstore", at=1_700_000_100)
    state.save(bare)
    return bare


def test_markdown_has_everything_a_ticket_needs(
    full: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(full, "md", capsys)
    assert out.startswith("# general protection fault in crashme\\_gpf\n")
    assert "| Guilty function | `crashme_gpf` |" in out
    assert "| Module | `crashme` |" in out
    assert "| Kernel | `6.1.0-56-amd64` |" in out
    assert "| Panic | Fatal exception |" in out
    assert "| Detected | 2023-11-14 22:13:20 UTC |" in out
    assert "- **O**: externally-built (out-of-tree) module was loaded" in out
    assert "  crashme_do+0x4a/0x60 [crashme]" in out
    assert "Kernel panic - not syncing: Fatal exception" in out  # oops.txt
    assert "| memory | **fail** | EDAC MC0: 3 UE \\<b\\>DIMM\\</b\\> |" in out
    assert "| disks | **pass** | sda PASSED; sdb PASSED |" in out
    assert "## Log hits (105)" in out
    assert "- ... 5 more (see `crashcart report --format json`)" in out
    assert (
        "| 2023-11-14 21:56:40 UTC | dpkg.log | upgrade | \\[k\\](http://evil.example/) \\| x |"
        in out
    )
    assert (
        "- [x] **Blacklist the culprit module** (isolate the component): done "
        "2023-11-14T22:23:20Z" in out
    )
    assert "  > blacklisted" in out and "  > rebooted \\<b\\>ok\\</b\\>" in out
    assert "- [-] **Secure the evidence** (secure evidence): skipped" in out
    assert (
        "  - 2023-11-14T22:21:40Z ssh root@web01, exit 0: `printf 'blacklist %s\\ninstall %s "
        "/bin/false\\n' crashme crashme > /etc/modprobe.d/crashcart-blacklist-crashme.conf`"
    ) in out


def test_markdown_cannot_be_hijacked_by_console_text(
    full: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(full, "md", capsys)
    assert ESC not in out and "\x07" not in out and "\x9b" not in out
    # The screen sits in a fence longer than the ``` it contains, so it cannot close it early.
    screen = out.split("## Screen when the crash completed\n\n", 1)[1]
    assert screen.startswith("````text\nlogin: root\n<script>alert('screen')</script>\n```\n")
    assert "\n````\n" in screen
    # Outside code, console text cannot become HTML, a link or a table column.
    hits = [line for line in out.splitlines() if "<img" in line]
    assert len(hits) == 100  # the hits shown; each inside a code span, where it is plain text
    assert all(re.search(r": `[^`]*<img src=x onerror=alert\(1\)>`$", line) for line in hits)
    assert "[k](http" not in out and "\\[k\\](http://evil.example/)" in out
    for line in out.splitlines():
        if line.startswith("| ") and "Evidence" not in line:
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 4, 5)


def test_json_has_everything_and_no_escapes(full: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = render(full, "json", capsys)
    assert out.isascii() and "\\u001b" not in out and ESC not in out
    doc = json.loads(out)
    assert doc["incident"] == full.name
    assert doc["console"] == "web01"
    assert doc["detected_at"] == 1_700_000_000
    assert doc["crash"]["module"] == "crashme"
    assert doc["crash"]["function"] == "crashme_gpf"
    assert doc["screen"][0] == "login: root"
    assert doc["screen"][4] == "bell"
    assert doc["oops"][-1].endswith("---[ end Kernel panic - not syncing: Fatal exception ]---")
    assert len(doc["logs"]["hits"]) == 105  # JSON keeps them all
    assert doc["logs"]["hits"][0]["text"] == (
        "general protection fault hit 0 <img src=x onerror=alert(1)>"
    )
    assert doc["hardware"]["checks"][0]["verdict"] == "fail"
    steps = {s["id"]: s for s in doc["runbook"]["steps"]}
    assert doc["runbook"]["settings"]["family"] == "debian"
    assert steps["isolate_module"]["status"] == "done"
    assert steps["isolate_module"]["notes"] == "blacklisted\nrebooted <b>ok</b>"
    assert steps["isolate_module"]["runs"][0]["exit_status"] == 0
    assert steps["isolate_module"]["commands"][1]["shell"] == "update-initramfs -u -k all"
    assert steps["secure_evidence"]["status"] == "skipped"
    assert steps["replace_hardware"]["applicable"] is True  # memory failed
    assert steps["revert_kernel"]["status"] == "skipped"


def test_html_escapes_everything(full: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The title itself is console text: make it hostile too.
    report = json.loads((full / "report.json").read_text())
    report["crash"]["title"] = "BUG <script>alert('title')</script>\x1b[2J & more"
    (full / "report.json").write_text(json.dumps(report))
    out = render(full, "html", capsys)
    assert out.startswith("<!DOCTYPE html>")
    assert ESC not in out and "\x07" not in out and "\x9b" not in out
    assert "<script" not in out and "<img" not in out and "<b>DIMM" not in out
    assert (
        "<title>BUG &lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt; &amp; more</title>" in out
    )
    assert "&lt;script&gt;alert(&#x27;screen&#x27;)&lt;/script&gt;" in out
    assert "onerror=alert(1)&gt;" in out and "&lt;img src=x" in out
    assert '<td class="fail">fail</td>' in out
    assert "<i>rebooted &lt;b&gt;ok&lt;/b&gt;</i>" in out
    assert "crashme_gpf" in out and "6.1.0-56-amd64" in out
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'\"" in out


@pytest.mark.parametrize("fmt", ["md", "json", "html"])
def test_optional_files_may_be_missing(
    bare: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = render(bare, fmt, capsys)
    assert "crashme_gpf" in out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["screen"] is None and doc["logs"] is None and doc["hardware"] is None
        assert doc["runbook"]["settings"] is None
        statuses = {s["id"]: s["status"] for s in doc["runbook"]["steps"]}
        assert statuses["isolate_module"] == "pending"
        assert statuses["replace_hardware"] == "skipped"
    else:
        assert "No steps recorded yet (no runbook.json)" in out
        assert "Log hits" not in out and "Hardware checks" not in out
    assert not (bare / "runbook.json").exists()  # rendering never writes to the incident


def test_bad_input_is_one_line(tmp_path: Path, bare: Path) -> None:
    cases: list[tuple[Path, str]] = [(tmp_path / "missing", "no such incident folder")]
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    cases.append((plain, "not a directory"))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((empty, "no report.json"))
    for path, expected in cases:
        with pytest.raises(InputError, match=expected) as caught:
            report_cli(["report", str(path)])
        assert "\n" not in str(caught.value)

    for name, content, expected in [
        ("logs.json", "{not json", "logs.json: corrupt JSON"),
        ("hardware.json", "[1, 2]", "hardware.json: not the expected JSON object"),
        ("runbook.json", "\xff\xfe", "runbook.json: corrupt JSON"),
        ("report.json", '{"console": "web01"}', "no crash object"),
        ("report.json", "{", "report.json: corrupt JSON"),
    ]:
        target = bare / name
        backup = target.read_bytes() if target.exists() else None
        target.write_bytes(content.encode("latin-1"))
        with pytest.raises(InputError, match=re.escape(expected)) as caught:
            report_cli(["report", str(bare), "--format", "json"])
        assert "\n" not in str(caught.value)
        if backup is None:
            target.unlink()
        else:
            target.write_bytes(backup)


def test_unknown_format_is_a_usage_error(bare: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        report_cli(["report", str(bare), "--format", "pdf"])
    assert caught.value.code == 2


def test_progress_saved_by_the_runbook_shows_in_the_report(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = RunbookState.load(bare)
    state.mark("configure_kdump", "done", "crashkernel=256M reserved", at=1_700_001_000)
    state.save(bare)
    out = render(bare, "md", capsys)
    assert "- [x] **Configure kdump** (configure kdump): done 2023-11-14T22:30:00Z" in out
    assert "  > crashkernel=256M reserved" in out
