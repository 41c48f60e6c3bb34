"""The parser as a stream: what a user watching a live console (or replaying one) notices.

Console bytes arrive in whatever pieces the transport delivers; the reports must not depend on
that. Crashes must start, grow and complete in order, end where the kernel stopped talking, and
still be reported when the console was cut off in the middle of one.
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path
from typing import Any

import pytest

from crashcart.kernel import (
    CrashCompleted,
    CrashGrew,
    CrashParser,
    CrashReport,
    CrashStarted,
    ParserEvent,
    analyze_bytes,
    analyze_text,
)

CAPTURES = (
    "ansi_shell_then_sysrq_crash",
    "bug_continue",
    "gpf_list_poison_panic",
    "hung_task_continue",
    "multi_oops_then_panic",
    "normal_boot_login",
    "oom_panic",
    "oops_null_panic",
    "proprietary_module_oops_continue",
    "softlockup_continue",
    "stack_overflow_panic",
    "sysrq_crash",
    "vfs_no_root",
    "warning_continue",
)


def capture(qemu_corpus: Path, name: str) -> bytes:
    return (qemu_corpus / f"{name}.log").read_bytes()


def capture_lines(qemu_corpus: Path, name: str) -> list[str]:
    """The capture as text lines, without their line ends."""
    return capture(qemu_corpus, name).decode("utf-8", "replace").replace("\r\n", "\n").split("\n")


def line_number(lines: list[str], needle: str, last: bool = False) -> int:
    numbers = [n for n, line in enumerate(lines, 1) if needle in line]
    assert numbers, needle
    return numbers[-1] if last else numbers[0]


def seen(reports: list[CrashReport]) -> list[dict[str, Any]]:
    """Everything a user sees of the reports: the JSON and the carved block."""
    return [{**r.to_dict(), "lines": r.lines} for r in reports]


def fed_whole(data: bytes) -> list[CrashReport]:
    parser = CrashParser()
    parser.feed(data)
    parser.close()
    return parser.reports


def fed_by_line(data: bytes) -> list[CrashReport]:
    parser = CrashParser()
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        parser.feed_line(line)
    parser.close()
    return parser.reports


def fed_in_chunks(data: bytes, rng: random.Random) -> tuple[list[CrashReport], list[ParserEvent]]:
    parser = CrashParser()
    events: list[ParserEvent] = []
    pos = 0
    while pos < len(data):
        size = rng.randint(1, 4096)
        events += parser.feed(data[pos : pos + size])
        pos += size
    events += parser.close()
    return parser.reports, events


# ------------------------------------------------------------------------------------------------
# Chunking, line ends, prefixes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CAPTURES)
def test_line_by_line_feeding_gives_the_same_reports_as_the_whole_capture(
    qemu_corpus: Path, name: str
) -> None:
    data = capture(qemu_corpus, name)
    assert seen(fed_by_line(data)) == seen(fed_whole(data))


@pytest.mark.parametrize("name", CAPTURES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_byte_chunks_give_the_same_reports_as_the_whole_capture(
    qemu_corpus: Path, name: str, seed: int
) -> None:
    data = capture(qemu_corpus, name)
    chunked, _ = fed_in_chunks(data, random.Random(seed))
    assert seen(chunked) == seen(fed_whole(data))


def test_one_byte_at_a_time_gives_the_same_reports(qemu_corpus: Path) -> None:
    data = capture(qemu_corpus, "multi_oops_then_panic")
    parser = CrashParser()
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
    parser.close()
    assert seen(parser.reports) == seen(fed_whole(data))


@pytest.mark.parametrize("name", CAPTURES)
def test_lf_line_ends_give_the_same_reports_as_crlf(qemu_corpus: Path, name: str) -> None:
    crlf = capture(qemu_corpus, name)
    assert b"\r\n" in crlf  # the serial captures really are CRLF
    assert seen(analyze_bytes(crlf.replace(b"\r\n", b"\n"))) == seen(analyze_bytes(crlf))


def _with_prefix(line: str, level: str, caller: str | None) -> str:
    """`[    3.368140] text` -> `<4>[    3.368140][  T110] text` (CONFIG_PRINTK_CALLER)."""
    m = re.match(r"(\[\s*\d+\.\d+\])(.*)", line)
    if m is None:
        return line
    return f"{level}{m.group(1)}{f'[{caller}]' if caller else ''}{m.group(2)}"


@pytest.fixture(scope="module")
def null_oops_lines(qemu_corpus: Path) -> list[str]:
    """The NULL-deref oops=panic block of oops_null_panic.log (lines 366-436), plain."""
    return capture_lines(qemu_corpus, "oops_null_panic")[365:436]


@pytest.mark.parametrize(
    ("level", "caller"),
    [("<4>", None), ("", "  T110"), ("<4>", "  T110"), ("<0>", "    C1")],
    ids=["level", "task-caller", "level-and-task-caller", "emerg-and-cpu-caller"],
)
def test_printk_levels_and_caller_ids_do_not_change_the_report(
    null_oops_lines: list[str], level: str, caller: str | None
) -> None:
    plain = analyze_text("\n".join(null_oops_lines) + "\n")
    prefixed = analyze_text(
        "\n".join(_with_prefix(line, level, caller) for line in null_oops_lines) + "\n"
    )
    assert [r.to_dict() for r in prefixed] == [r.to_dict() for r in plain]
    assert prefixed[0].function == "crashme_null_deref"


def test_level_prefix_without_timestamps_does_not_change_the_report(
    null_oops_lines: list[str],
) -> None:
    bare = [re.sub(r"^\[\s*\d+\.\d+\] ?", "", line) for line in null_oops_lines]
    plain = analyze_text("\n".join(bare) + "\n")
    with_level = analyze_text("\n".join("<4>" + line for line in bare) + "\n")
    assert [r.to_dict() for r in with_level] == [r.to_dict() for r in plain]
    assert plain[0].kind == "null_deref" and plain[0].panic == "Fatal exception"


# ------------------------------------------------------------------------------------------------
# Events
# ------------------------------------------------------------------------------------------------


def test_events_start_grow_and_complete_each_crash_in_order(qemu_corpus: Path) -> None:
    reports, events = fed_in_chunks(capture(qemu_corpus, "multi_oops_then_panic"), random.Random(7))
    assert len(reports) == 4
    started = [e for e in events if isinstance(e, CrashStarted)]
    completed = [e for e in events if isinstance(e, CrashCompleted)]
    assert [e.crash_id for e in started] == [e.crash_id for e in completed]
    assert [e.crash_id for e in started] == sorted({e.crash_id for e in started})
    assert [e.report for e in completed] == reports
    for start, done in zip(started, completed, strict=True):
        mine = [e for e in events if getattr(e, "crash_id", None) == start.crash_id]
        assert mine[0] is start and mine[-1] is done
        grew = [e for e in mine if isinstance(e, CrashGrew)]
        assert grew, "a crash report grows line by line"
        assert all(isinstance(e, CrashGrew) for e in mine[1:-1])
        assert done.report.start_line <= start.line <= done.report.end_line
        assert [g.line for g in grew] == sorted(g.line for g in grew)
        assert all(start.line < g.line <= done.report.end_line for g in grew)


def test_a_crash_is_completed_before_the_next_one_starts(qemu_corpus: Path) -> None:
    _, events = fed_in_chunks(capture(qemu_corpus, "warning_continue"), random.Random(3))
    kinds = [type(e).__name__ for e in events if not isinstance(e, CrashGrew)]
    assert kinds == ["CrashStarted", "CrashCompleted", "CrashStarted", "CrashCompleted"]


def test_crash_started_says_the_kind_and_header_as_soon_as_the_header_arrives(
    null_oops_lines: list[str],
) -> None:
    parser = CrashParser()
    header_index = next(i for i, line in enumerate(null_oops_lines) if "BUG: kernel NULL" in line)
    for line in null_oops_lines[:header_index]:
        assert parser.feed_line(line) == []
    (event,) = parser.feed_line(null_oops_lines[header_index])
    assert isinstance(event, CrashStarted)
    assert event.kind == "null_deref"
    assert event.header == "BUG: kernel NULL pointer dereference, address: 0000000000000010"
    assert event.line == header_index + 1
    assert parser.in_crash


# ------------------------------------------------------------------------------------------------
# Several crashes, and where each ends
# ------------------------------------------------------------------------------------------------


def test_two_crashes_in_one_stream_give_two_reports_in_order(qemu_corpus: Path) -> None:
    lines = capture_lines(qemu_corpus, "warning_continue")
    first, second = analyze_bytes(capture(qemu_corpus, "warning_continue"))
    assert (first.kind, second.kind) == ("warning", "warning")
    assert first.end_line < second.start_line
    assert first.end_line == line_number(lines, "---[ end trace")
    assert second.end_line == line_number(lines, "---[ end trace", last=True)
    # The second warning happened on a kernel the first one had tainted.
    assert ("W" in second.tainted, "W" in first.tainted) == (True, False)


def test_different_crashes_in_one_stream_keep_their_own_kinds_in_order(
    qemu_corpus: Path,
) -> None:
    reports = analyze_bytes(capture(qemu_corpus, "multi_oops_then_panic"))
    assert [r.kind for r in reports] == ["null_deref", "warning", "bug", "panic"]
    assert [r.function for r in reports[:3]] == [
        "crashme_null_deref",
        "crashme_warning",
        "crashme_bug",
    ]
    ends = [(r.start_line, r.end_line) for r in reports]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ends))


def test_concatenated_captures_report_both_crashes(qemu_corpus: Path) -> None:
    warning = capture(qemu_corpus, "warning_continue")
    sysrq = capture(qemu_corpus, "sysrq_crash")
    alone = analyze_bytes(sysrq)[0]
    reports = analyze_bytes(warning + sysrq)
    assert [r.kind for r in reports if r.kind != "reboot"] == ["warning", "warning", "panic"]
    last = reports[-1]
    offset = warning.count(b"\n")
    assert (last.start_line, last.end_line) == (alone.start_line + offset, alone.end_line + offset)


@pytest.mark.parametrize(
    ("name", "last_line_of_crash", "first_line_after"),
    [
        ("warning_continue", "---[ end trace", "init: trigger process exited"),
        ("softlockup_continue", "</TASK>", "crashme: spin finished"),
        ("hung_task_continue", "</TASK>", "heartbeat 16"),
        ("bug_continue", "4.007363] CR2:", "Segmentation fault"),  # end of the register re-dump,
    ],
)
def test_a_crash_that_scrolls_on_into_normal_output_ends_before_it(
    qemu_corpus: Path, name: str, last_line_of_crash: str, first_line_after: str
) -> None:
    lines = capture_lines(qemu_corpus, name)
    report = analyze_bytes(capture(qemu_corpus, name))[0]
    crash_start = line_number(lines, report.message)
    last = next(
        n for n, line in enumerate(lines, 1) if n > crash_start and last_line_of_crash in line
    )
    assert report.end_line == last
    assert report.end_line < line_number(lines, first_line_after)
    assert not any(first_line_after in line for line in report.lines)
    assert report.truncated is False


# ------------------------------------------------------------------------------------------------
# Cut off in the middle
# ------------------------------------------------------------------------------------------------


def _cut_after(data: bytes, needle: bytes) -> bytes:
    at = data.index(needle)
    return data[: data.index(b"\n", at) + 1]


@pytest.mark.parametrize(
    ("name", "kind", "function"),
    [
        ("oops_null_panic", "null_deref", "crashme_null_deref"),
        ("gpf_list_poison_panic", "gpf", "crashme_gpf"),
        ("warning_continue", "warning", "crashme_warning"),
        ("softlockup_continue", "soft_lockup", "crashme_spin"),
        ("hung_task_continue", "hung_task", "crashme_hung_task"),
        ("sysrq_crash", "panic", "sysrq_handle_crash"),
    ],
)
def test_a_crash_cut_off_mid_trace_is_reported_as_truncated_with_what_was_there(
    qemu_corpus: Path, name: str, kind: str, function: str
) -> None:
    data = _cut_after(capture(qemu_corpus, name), b"vfs_write+0xc7/0x3f0")
    (report,) = analyze_bytes(data)
    assert report.truncated is True
    assert (report.kind, report.function) == (kind, function)
    assert report.end_line == data.count(b"\n")
    assert report.call_trace[-1].function == "vfs_write"


def test_a_crash_cut_off_in_the_middle_of_a_line_keeps_the_lines_before_it(
    qemu_corpus: Path,
) -> None:
    data = capture(qemu_corpus, "oops_null_panic")
    whole_lines = _cut_after(data, b"vfs_write+0xc7/0x3f0")
    (report,) = analyze_bytes(whole_lines + b"[    3.371164]  ksys_wr")
    assert report.truncated is True
    assert report.function == "crashme_null_deref"
    assert [f.function for f in report.call_trace][:4] == [
        "crashme_do",
        "crashme_direct_write",
        "full_proxy_write",
        "vfs_write",
    ]


def test_a_crash_cut_off_right_after_its_header_is_still_reported(qemu_corpus: Path) -> None:
    data = _cut_after(capture(qemu_corpus, "oops_null_panic"), b"BUG: kernel NULL pointer")
    (report,) = analyze_bytes(data)
    assert (report.kind, report.truncated) == ("null_deref", True)
    assert report.start_line == report.end_line == data.count(b"\n")


@pytest.mark.parametrize("name", ["sysrq_crash", "oops_null_panic", "vfs_no_root", "oom_panic"])
def test_a_crash_that_said_its_last_word_is_not_truncated(qemu_corpus: Path, name: str) -> None:
    assert all(not r.truncated for r in analyze_bytes(capture(qemu_corpus, name)))


# ------------------------------------------------------------------------------------------------
# Other CPUs talking in the middle of a crash
# ------------------------------------------------------------------------------------------------


def _interleave(lines: list[str], other: str, every: int, stop: str) -> list[str]:
    """Insert `other` after every `every`-th line, up to (not past) the line containing `stop`."""
    out: list[str] = []
    stopped = False
    for i, line in enumerate(lines):
        stopped = stopped or stop in line
        out.append(line)
        if not stopped and i % every == every - 1:
            out.append(other.format(i=i))
    return out


@pytest.mark.parametrize("with_caller_ids", [False, True], ids=["plain", "caller-ids"])
def test_another_cpus_lines_inside_a_crash_do_not_change_what_it_is(
    null_oops_lines: list[str], with_caller_ids: bool
) -> None:
    if with_caller_ids:
        lines = [_with_prefix(line, "", "  T110") for line in null_oops_lines]
        other = "[    3.37{i:04d}][    T1] systemd[1]: Started Session {i} of User root."
    else:
        lines = list(null_oops_lines)
        other = "[    3.37{i:04d}] e1000 0000:00:03.0 eth0: NIC Link is Up 1000 Mbps Full Duplex"
    mixed = _interleave(lines, other, every=3, stop="---[ end trace")
    (alone,) = analyze_text("\n".join(lines) + "\n")
    (report,) = analyze_text("\n".join(mixed) + "\n")
    assert (report.kind, report.function, report.module) == (
        "null_deref",
        "crashme_null_deref",
        "crashme",
    )
    assert report.rip == alone.rip
    assert [f.to_dict() for f in report.call_trace] == [f.to_dict() for f in alone.call_trace]
    assert report.registers == alone.registers
    assert report.panic == "Fatal exception"
    assert report.end_line == len(mixed)


def test_another_tasks_line_after_end_trace_does_not_split_off_the_panic(
    null_oops_lines: list[str],
) -> None:
    # With caller ids the parser can tell T1's line is not the oops's; the register re-dump and
    # the panic that follow `---[ end trace` are still the oops's epilogue.
    lines = [_with_prefix(line, "", "  T110") for line in null_oops_lines]
    end = next(i for i, line in enumerate(lines) if "---[ end trace" in line)
    lines.insert(end + 1, "[    3.381600][    T1] systemd[1]: Started Session 3 of User root.")
    (report,) = analyze_text("\n".join(lines) + "\n")
    assert report.panic == "Fatal exception"


# ------------------------------------------------------------------------------------------------
# A console that goes quiet
# ------------------------------------------------------------------------------------------------


def test_flush_idle_completes_a_crash_that_ended_with_end_trace(qemu_corpus: Path) -> None:
    data = _cut_after(capture(qemu_corpus, "warning_continue"), b"---[ end trace")
    parser = CrashParser()
    events = parser.feed(data)
    assert parser.in_crash
    assert not any(isinstance(e, CrashCompleted) for e in events)
    (done,) = parser.flush_idle()
    assert isinstance(done, CrashCompleted)
    assert done.report.kind == "warning"
    assert done.report.end_line == data.count(b"\n")
    assert done.report.truncated is False
    assert not parser.in_crash
    assert parser.close() == []
    assert parser.reports == [done.report]


def test_flush_idle_leaves_a_crash_open_while_its_trace_is_still_coming(
    qemu_corpus: Path,
) -> None:
    data = capture(qemu_corpus, "oops_null_panic")
    head = _cut_after(data, b"vfs_write+0xc7/0x3f0")
    parser = CrashParser()
    parser.feed(head)
    assert parser.flush_idle() == []
    assert parser.in_crash
    parser.feed(data[len(head) :])
    parser.close()
    assert seen(parser.reports) == seen(analyze_bytes(data))


def test_flush_idle_without_a_crash_does_nothing(qemu_corpus: Path) -> None:
    parser = CrashParser()
    parser.feed(capture(qemu_corpus, "normal_boot_login"))
    assert parser.flush_idle() == []
    assert parser.close() == []
