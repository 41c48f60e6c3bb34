"""The human report and the text cleaning that keeps console bytes off the operator's terminal."""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from crashcart.kernel import CrashReport, Frame, TaintFlag
from crashcart.safetext import clean
from crashcart.textreport import count_lines, render_reports

SGR = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = (
    "\x1b]0;owned\x07\x1b[2J\x1bP+q\x1b\\\x9b31m\x07\x00\u202etxt.exe\x7f[bold]x[/bold] :smile:"
)


def controls(text: str) -> set[str]:
    return {ch for ch in text if unicodedata.category(ch) == "Cc"} - {"\n"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("\x1b]0;title\x07after", "after"),
        ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bP+q544e\x1b\\rest", "rest"),
        ("\x9b2Jcsi8", "csi8"),
        ("\x1bcreset", "reset"),
        ("a\tb", "a b"),
        ("bell\x07\x08\x00\x7f", "bell"),
        ("\u202eevil\u202c", "evil"),
        ("caf\u00e9 \u2603 \u00a0nbsp", "caf\u00e9 \u2603 \u00a0nbsp"),
        ("lone \udcff surrogate", "lone  surrogate"),
        ("unterminated \x1b[", "unterminated "),
    ],
)
def test_clean(raw: str, shown: str) -> None:
    assert clean(raw) == shown


@given(st.text())
def test_clean_leaves_no_control_characters(text: str) -> None:
    cleaned = clean(text)
    assert not {ch for ch in cleaned if unicodedata.category(ch) in ("Cc", "Cs")}
    assert clean(cleaned) == cleaned


def hostile_report() -> CrashReport:
    return CrashReport(
        kind="gpf",
        title="general protection fault " + HOSTILE,
        message="message " + HOSTILE,
        panic="Fatal exception " + HOSTILE,
        function="victim" + HOSTILE,
        module="mod" + HOSTILE,
        rip="0010:victim+0x1d/0x25 " + HOSTILE,
        tainted="G OE" + HOSTILE,
        taint=[TaintFlag("O", "out-of-tree " + HOSTILE)],
        kernel="6.1.0" + HOSTILE,
        cpu=1,
        pid=109,
        comm="sh" + HOSTILE,
        hardware="QEMU " + HOSTILE,
        call_trace=[
            Frame("caller" + HOSTILE, "0x4a", "0x60", "crashme" + HOSTILE, True),
            Frame(
                "noise", "0x5b", "0x70", None, False, source="fs/open.c:1" + HOSTILE, section="irq"
            ),
        ],
        modules_linked_in=["crashme(OE)" + HOSTILE],
        start_line=3,
        end_line=9,
        truncated=True,
    )


def render(reports: list[CrashReport], lines: int, *, colour: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=colour,
        color_system="standard" if colour else None,
        width=100,
        highlight=False,
        markup=False,
        emoji=False,
    )
    render_reports(console, reports, lines)
    return out.getvalue()


def test_hostile_fields_never_reach_the_terminal() -> None:
    text = render([hostile_report()], 10, colour=False)
    assert not controls(text), controls(text)
    assert "\u202e" not in text
    assert "[bold]x[/bold] :smile:" in text  # printed literally: no markup, no emoji
    for expected in ("Crash 1/1: gpf", "Fatal exception", "victim", "Comm sh", "out-of-tree"):
        assert expected in text
    assert "cut short" in text


def test_coloured_output_carries_only_our_sgr() -> None:
    text = render([hostile_report()], 10, colour=True)
    assert "\x1b" in text  # colour is on
    assert not controls(SGR.sub("", text))


def test_unreliable_frames_are_dimmed_and_marked() -> None:
    text = render([hostile_report()], 10, colour=True)
    line = next(line for line in text.splitlines() if "noise" in line)
    assert "\x1b[2m" in line or ";2m" in line or "[2;" in line
    assert "? " in SGR.sub("", line)
    assert "<IRQ>" in text


def test_no_crash() -> None:
    assert render([], 3, colour=False).strip() == "No crash found in 3 lines."


def test_summary_counts_crashes() -> None:
    text = render([hostile_report(), hostile_report()], 20, colour=False)
    assert "Crash 2/2" in text and text.strip().endswith("2 crashes found in 20 lines.")


@pytest.mark.parametrize(
    ("data", "lines"), [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\r\nb", 2), (b"\n\n", 2)]
)
def test_count_lines(data: bytes, lines: int) -> None:
    assert count_lines(data) == lines
