"""Properties of the parser over inputs nobody wrote by hand: line noise from a dying box, a
console at the wrong baud rate, escape-sequence storms, captures cut at any byte, delivered in any
chunks. The parser must never raise, never let control characters into a report, stay linear in
the size of its input, and still find the real crash among the garbage.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crashcart.kernel import CrashParser, CrashReport, analyze_bytes
from crashcart.kernel.lines import MAX_LINE_CHARS

REPO = Path(__file__).resolve().parents[1]

# CRASHCART_FUZZ_EXAMPLES=5000 for a deep run; the default keeps this file at a few seconds.
EXAMPLES = int(os.environ.get("CRASHCART_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(
    max_examples=max(EXAMPLES // 5, 20), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Pieces of what a console shows around a crash, so that the fuzzer gets into the parser's
# crash states instead of only its skip path.
FRAGMENTS: tuple[bytes, ...] = (
    b"BUG: kernel NULL pointer dereference, address: 0000000000000010",
    b"BUG: ",
    b"BUG: unable to handle page fault for address: ffffc90000a3f000",
    b"general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1]",
    b"kernel BUG at mm/slub.c:72!",
    b"invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
    b"Oops: 0002 [#1] PREEMPT SMP NOPTI",
    b"WARNING: CPU: 0 PID: 103 at drivers/x.c:79 crashme_warning+0x20/0x30 [crashme]",
    b"------------[ cut here ]------------",
    b"=" * 66,
    b"BUG: KASAN: slab-use-after-free in crashme_uaf+0x5c/0x70 [crashme]",
    b"Read of size 8 at addr ffff888004a1c2a8 by task sh/103",
    b"WARNING: possible circular locking dependency detected",
    b"sh/103 is trying to acquire lock:",
    b"(lock){+.+.}-{3:3}, at: crashme_lock_ab+0x3e/0x90 [crashme]",
    b"rcu: INFO: rcu_preempt self-detected stall on CPU",
    b"watchdog: BUG: soft lockup - CPU#0 stuck for 9s! [sh:100]",
    b"INFO: task sh:95 blocked for more than 5 seconds.",
    b"memhog invoked oom-killer: gfp_mask=0x140dca, order=0, oom_score_adj=0",
    b"Out of memory: Killed process 98 (memhog) total-vm:185484kB",
    b"mce: [Hardware Error]: CPU 3: Machine Check Exception: 5 Bank 7: be00000000800400",
    b"EDAC MC0: 1 UE memory read error on DIMM#0",
    b"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010",
    b"Internal error: Oops: 0000000096000046 [#1] PREEMPT SMP",
    b"pc : crashme_null_deref+0x1c/0x30 [crashme]",
    b"lr : crashme_do+0x58/0x80 [crashme]",
    b"x29: ffff80000a5dbc90 x28: ffff0000c1f1a940",
    b"CPU: 1 PID: 110 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2",
    b"CPU: 0 UID: 0 PID: 212 Comm: sh Kdump: loaded Not tainted 6.12.9-amd64 #1",
    b"Tainted: [O]=OOT_MODULE, [E]=UNSIGNED_MODULE",
    b"      Tainted: G           OE      6.1.0-56-amd64 #1 Debian 6.1.192-2",
    b"Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
    b"RIP: 0010:crashme_null_deref+0x11/0x21 [crashme]",
    b"RIP: 0033:0x47b7a0",
    b"Code: c7 04 25 <c7> 04 25 10 00",
    b"RSP: 0018:ffffd2f5c04fba10 EFLAGS: 00000246",
    b"CR2: 0000000000000010 CR3: 00000000022da000 CR4: 00000000000006e0",
    b"Call Trace:",
    b" <TASK>",
    b" </TASK>",
    b" <IRQ>",
    b" </IRQ>",
    b" crashme_do+0x4a/0x60 [crashme]",
    b" ? exit_to_user_mode_prepare+0x44/0x240",
    b" __dump_stack lib/dump_stack.c:77 [inline]",
    b"Modules linked in: crashme(OE) e1000",
    b"---[ end trace 0000000000000000 ]---",
    b"Kernel panic - not syncing: Fatal exception",
    b"Kernel panic - not syncing: ",
    b"---[ end Kernel panic - not syncing: Fatal exception ]---",
    b"SeaBIOS (version 1.16.2-debian-1.16.2-1)",
    b"Linux version 6.1.0-56-amd64",
    b"reboot: Restarting system",
    b"[    3.371164] ",
    b"<4>",
    b"[  T110]",
    b"[    C1]",
    b"\r\n",
    b"\n",
    b"\n",
    b"\r",
    b"\x1b[0m",
    b"\x1b[01;32m",
    b"\x1b]0;title\x07",
    b"\x1bP",
    b"\x1b",
    b"\x9b",
    b"\xff\xfe\xc3",
    b"\x00",
    b"\t",
    b"    ",
)

console_bytes = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=24)), max_size=120
).map(b"".join)

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def documented_kinds() -> set[str]:
    """The kinds docs/contracts.md promises (`kind` row of the CRASH table, additions included)."""
    row = next(
        line
        for line in (REPO / "docs" / "contracts.md").read_text().splitlines()
        if line.startswith("| `kind` |")
    )
    listed, _, additions = row.split("one of:", 1)[1].partition("*additions:*")
    kinds = {word.strip() for word in listed.split("|")[0].strip().rstrip(";").split(",")}
    return kinds | set(re.findall(r"`([a-z][a-z0-9_]*)`", additions))


KINDS = documented_kinds()


def feed_all(chunks: list[bytes]) -> tuple[list[CrashReport], CrashParser]:
    parser = CrashParser()
    for chunk in chunks:
        parser.feed(chunk)
    parser.close()
    return parser.reports, parser


def check_sane(reports: list[CrashReport], total_lines: int | None = None) -> None:
    """What must hold for any report of any input."""
    for report in reports:
        assert report.kind in KINDS, report.kind
        assert 1 <= report.start_line <= report.end_line
        if total_lines is not None:
            assert report.end_line <= total_lines
        assert len(report.lines) == report.end_line - report.start_line + 1
        for line in report.lines:
            assert "\x1b" not in line and not _CONTROL.search(line), repr(line)
            assert len(line) <= MAX_LINE_CHARS
        blob = json.dumps(report.to_dict(), ensure_ascii=False)
        assert "\x1b" not in blob


def line_count(data: bytes) -> int:
    """Lines as the parser counts them: `\\n`-terminated, plus an unterminated last one."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def whole(data: bytes) -> list[dict[str, object]]:
    return [{**r.to_dict(), "lines": r.lines} for r in analyze_bytes(data)]


class Capture(bytes):
    """A QEMU capture's bytes, shown by name in hypothesis' failure reports (not 30 kB of log)."""

    name: str

    def __new__(cls, path: Path) -> Capture:
        capture = super().__new__(cls, path.read_bytes())
        capture.name = path.name
        return capture

    def __repr__(self) -> str:
        return f"<capture {self.name}>"


@pytest.fixture(scope="module")
def oops_capture(qemu_corpus: Path) -> bytes:
    return Capture(qemu_corpus / "oops_null_panic.log")


@pytest.fixture(scope="module")
def multi_capture(qemu_corpus: Path) -> bytes:
    return Capture(qemu_corpus / "multi_oops_then_panic.log")


@pytest.fixture(scope="module")
def warning_capture(qemu_corpus: Path) -> bytes:
    return Capture(qemu_corpus / "warning_continue.log")


def test_the_documented_kinds_were_read_from_the_contract() -> None:
    assert {"null_deref", "init_killed", "other", "int3", "workqueue_lockup", "reboot"} <= KINDS
    assert "one" not in KINDS and "string" not in KINDS


# ------------------------------------------------------------------------------------------------
# Never raise, never leak control characters
# ------------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_raise(data: bytes) -> None:
    reports, _ = feed_all([data])
    check_sane(reports, line_count(data))


@FUZZ
@given(data=console_bytes)
def test_console_like_noise_never_raises_and_reports_stay_clean(data: bytes) -> None:
    reports, _ = feed_all([data])
    check_sane(reports, line_count(data))


@FUZZ
@given(chunks=st.lists(console_bytes, max_size=8))
def test_noise_fed_in_pieces_with_idle_flushes_never_raises(chunks: list[bytes]) -> None:
    parser = CrashParser()
    for chunk in chunks:
        parser.feed(chunk)
        parser.flush_idle()  # the console going quiet between pieces
    parser.close()
    check_sane(parser.reports)


@FUZZ
@given(lines=st.lists(st.text(max_size=80), max_size=60))
def test_any_text_lines_fed_one_by_one_never_raise(lines: list[str]) -> None:
    parser = CrashParser()
    for line in lines:
        parser.feed_line(line)
    parser.close()
    check_sane(parser.reports, len(lines))


# ------------------------------------------------------------------------------------------------
# Garbage around a real crash
# ------------------------------------------------------------------------------------------------


def _line_starts(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]


@FEW
@given(garbage=console_bytes, where=st.integers(min_value=0, max_value=363))
def test_garbage_before_a_crash_does_not_change_it(
    oops_capture: bytes, garbage: bytes, where: int
) -> None:
    # Lines 365-366 of the capture stay between the garbage and the oops (header at 367).
    (real,) = analyze_bytes(oops_capture)
    at = _line_starts(oops_capture)[where]
    spliced = oops_capture[:at] + garbage + b"\n" + oops_capture[at:]
    shift = garbage.count(b"\n") + 1
    reports = analyze_bytes(spliced)
    check_sane(reports, line_count(spliced))
    expected = {
        **real.to_dict(),
        "start_line": real.start_line + shift,
        "end_line": real.end_line + shift,
    }
    assert reports[-1].to_dict() == expected


@FEW
@given(garbage=console_bytes, where=st.integers(min_value=0, max_value=10**6))
def test_garbage_after_a_crash_does_not_change_it(
    warning_capture: bytes, garbage: bytes, where: int
) -> None:
    first = analyze_bytes(warning_capture)[0]
    # At least one normal line ("init: trigger process exited") separates it from the garbage.
    starts = _line_starts(warning_capture)[first.end_line + 1 :]
    at = starts[where % len(starts)]
    spliced = warning_capture[:at] + garbage + b"\n" + warning_capture[at:]
    reports = analyze_bytes(spliced)
    check_sane(reports, line_count(spliced))
    assert reports[0].to_dict() == first.to_dict()


@FEW
@given(garbage=st.binary(min_size=1, max_size=2048))
def test_random_bytes_inside_the_trace_never_raise_and_the_crash_is_found(
    oops_capture: bytes, garbage: bytes
) -> None:
    at = oops_capture.index(b"vfs_write+0xc7/0x3f0")
    at = oops_capture.index(b"\n", at) + 1
    reports = analyze_bytes(oops_capture[:at] + garbage + b"\n" + oops_capture[at:])
    assert any(r.kind == "null_deref" for r in reports)
    check_sane(reports)


# ------------------------------------------------------------------------------------------------
# Truncation and chunking
# ------------------------------------------------------------------------------------------------


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**9))
def test_a_capture_cut_at_any_byte_never_raises_and_keeps_what_it_saw(
    multi_capture: bytes, cut: int
) -> None:
    data = multi_capture[: cut % (len(multi_capture) + 1)]
    reports = analyze_bytes(data)
    check_sane(reports, line_count(data))
    if b"BUG: kernel NULL pointer dereference" in data:  # enough of the header to know it
        assert reports and reports[0].kind == "null_deref"
    elif b"BUG" not in data:
        assert reports == []


@FEW
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=16),
    name=st.sampled_from(["oops_null_panic", "multi_oops_then_panic", "oom_panic", "vfs_no_root"]),
)
def test_any_chunking_of_a_capture_equals_feeding_it_whole(
    qemu_corpus: Path, sizes: list[int], name: str
) -> None:
    data = (qemu_corpus / f"{name}.log").read_bytes()
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    reports, _ = feed_all(chunks)
    assert [{**r.to_dict(), "lines": r.lines} for r in reports] == whole(data)


@FUZZ
@given(data=console_bytes, cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=12))
def test_any_chunking_of_noise_equals_feeding_it_whole(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    reports, _ = feed_all(chunks)
    assert [{**r.to_dict(), "lines": r.lines} for r in reports] == whole(data)


@FUZZ
@given(data=console_bytes)
# Found by the long fuzz run (bench/fuzz): an empty printk line, then a BIOS banner. Fed whole
# it was a reboot, fed line by line it was not: the two paths judged "the console said
# something" differently.
@example(data=b"[    3.371164] \r\nSeaBIOS (version 1.16.2-debian-1.16.2-1)")
def test_feeding_noise_line_by_line_equals_feeding_it_whole(data: bytes) -> None:
    parser = CrashParser()
    lines = data.decode("utf-8", "replace").split("\n")
    for line in lines[:-1] if lines[-1] == "" else lines:
        parser.feed_line(line)
    parser.close()
    assert [{**r.to_dict(), "lines": r.lines} for r in parser.reports] == whole(data)


def test_an_overlong_line_gives_the_same_line_numbers_however_it_arrives(
    oops_capture: bytes,
) -> None:
    # The parser caps pending bytes at 64 kB; a longer line must not become two lines only when
    # it happens to arrive in pieces (live) rather than whole (analyze).
    data = b"\x00garbage" * 12_500 + b"\n" + oops_capture  # a 100 kB line, then the capture
    chunked, _ = feed_all([data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert [(r.kind, r.start_line) for r in chunked] == [
        (r.kind, r.start_line) for r in analyze_bytes(data)
    ]


# ------------------------------------------------------------------------------------------------
# Floods and absurd lines
# ------------------------------------------------------------------------------------------------

ESCAPE_PIECES: tuple[bytes, ...] = (
    b"\x1b[",
    b"\x1b]",
    b"\x1b",
    b"\x9b",
    b"\x07",
    b"0;31m",
    b"?25l",
    b"6n",
    b"\x1bP",
    b"\x1b\\",
    b"\x1b[2K",
    b"\x00",
    b"\r",
    b"\n",
    b"BUG: ",
    b"Call Trace:",
)
escape_flood = st.lists(st.sampled_from(ESCAPE_PIECES), min_size=1, max_size=400).map(b"".join)


@FUZZ
@given(flood=escape_flood)
def test_escape_sequence_floods_inside_a_crash_stay_out_of_the_report(
    oops_capture: bytes, flood: bytes
) -> None:
    at = oops_capture.index(b"Call Trace:")
    data = oops_capture[:at] + flood + oops_capture[at:]
    reports = analyze_bytes(data)
    check_sane(reports, line_count(data))
    assert any(r.kind == "null_deref" for r in reports)


def test_every_crash_line_wrapped_in_colour_codes_gives_clean_lines(oops_capture: bytes) -> None:
    coloured = b"".join(
        b"\x1b[1;31m" + line.rstrip(b"\r") + b"\x1b[0m\x1b[K\r\n"
        for line in oops_capture.split(b"\n")
    )
    (plain,) = analyze_bytes(oops_capture)
    (report,) = analyze_bytes(coloured)
    check_sane([report])
    assert report.lines == plain.lines
    assert (report.kind, report.function, report.rip) == (plain.kind, plain.function, plain.rip)


@pytest.mark.parametrize(
    "line",
    [
        b"A" * 100_000,
        b"\x1b[" * 50_000,
        (b"BUG: " + b"x" * 95) * 1_000,
        bytes(random.Random(5).randbytes(100_000)).replace(b"\n", b" "),
    ],
    ids=["letters", "escapes", "bug-words", "random"],
)
def test_a_100kb_line_without_newline_is_cut_and_never_raises(
    oops_capture: bytes, line: bytes
) -> None:
    for data in (line, line + oops_capture, oops_capture + line):
        reports = analyze_bytes(data)
        check_sane(reports)
        if data is not line:
            assert any(r.kind == "null_deref" for r in reports)


# ------------------------------------------------------------------------------------------------
# Linear time
# ------------------------------------------------------------------------------------------------


def _noisy_log(size: int, crash: bytes) -> bytes:
    """Console noise with a real crash every ~32 kB: plain lines, lines that mention marker words
    without being crashes, escape sequences and random bytes."""
    rng = random.Random(size)
    words = [b"eth0", b"link", b"up", b"BUG", b"INFO:", b"WARNING", b"Oops", b"panic", b"0x1f"]
    out = bytearray()
    while len(out) < size:
        for _ in range(300):
            kind = rng.random()
            if kind < 0.6:
                out += b"[%5d.%06d] " % (rng.randrange(99999), rng.randrange(10**6))
                out += b" ".join(rng.choice(words) for _ in range(rng.randrange(1, 14)))
            elif kind < 0.8:
                out += b"\x1b[0;3%dm%s\x1b[0m" % (
                    rng.randrange(8),
                    rng.randbytes(20).hex().encode(),
                )
            else:
                out += rng.randbytes(rng.randrange(1, 200)).replace(b"\n", b".")
            out += b"\r\n"
        out += crash
    return bytes(out[:size])


def _best_time(data: bytes, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        analyze_bytes(data)
        best = min(best, time.perf_counter() - start)
    return best


def test_analysis_time_grows_linearly_with_the_input(oops_capture: bytes) -> None:
    start = oops_capture.index(b"[    3.366884]")
    crash = oops_capture[start:]
    small = _noisy_log(256 * 1024, crash)
    large = _noisy_log(4 * 256 * 1024, crash)
    found_small = sum(r.kind == "null_deref" for r in analyze_bytes(small))
    found_large = sum(r.kind == "null_deref" for r in analyze_bytes(large))
    assert found_small >= 5 and found_large >= 4 * found_small - 1  # the crashes are all found
    ratio = _best_time(large) / max(_best_time(small), 1e-3)
    assert ratio < 10, f"4x the input took {ratio:.1f}x the time"


def test_register_lines_full_of_line_noise_are_read_in_linear_time() -> None:
    # `func+0xoff/0xsize` is searched for in RIP/pc/lr lines; on a long word a naive search
    # retries from every character (quadratic: ~0.3 s per 4 kB line).
    header = b"BUG: kernel NULL pointer dereference, address: 0000000000000010\n"
    noise = b"".join(prefix + b"a" * 4000 + b"\n" for prefix in (b"RIP: ", b"pc : ", b"lr : ") * 4)
    start = time.perf_counter()
    (report,) = analyze_bytes(header + noise)
    assert report.kind == "null_deref"
    assert time.perf_counter() - start < 0.25  # linear: ~10 ms; quadratic: over a second
