"""How crash lines are drawn: which parts of a real kernel line get which colour."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.strip import Strip

from tui.emulator import Emulator
from tui.highlight import STYLES, Role, classify, spans


def _styled(text: str, role: Role) -> dict[str, str]:
    """The text under each span, by style name."""
    names = {id(style): name for name, style in STYLES.items()}
    return {text[s:e]: names[id(style)] for s, e, style in spans(text, role)}


def test_frame_parts_are_coloured_and_unreliable_frames_dimmed() -> None:
    line = "[    3.920283]  crashme_direct_write+0x8e/0xd0 [crashme]"
    role = classify(line[15:], is_header=False)
    assert role is Role.FRAME
    assert _styled(line, role) == {
        "crashme_direct_write": "function",
        "+0x8e/0xd0": "offset",
        "[crashme]": "module",
    }
    unreliable = "[    3.920283]  ? filp_close+0x5b/0x70"
    assert classify(unreliable[15:], is_header=False) is Role.UNRELIABLE_FRAME
    assert _styled(unreliable, Role.UNRELIABLE_FRAME) == {"? filp_close+0x5b/0x70": "unreliable"}


def test_rip_line_names_the_register_and_the_guilty_location() -> None:
    line = "[    3.926468] RIP: 0010:crashme_gpf+0x1d/0x25 [crashme]"
    role = classify(line[15:], is_header=False)
    assert role is Role.REGISTERS
    styled = _styled(line, role)
    assert styled["RIP"] == "register_name"
    assert styled["crashme_gpf"] == "function" and styled["[crashme]"] == "module"


def test_register_pairs_and_taint_letters() -> None:
    line = "[    3.926807] RAX: dead000000000122 RBX: 0000000000000000 RCX: c0000000ffffefff"
    styled = _styled(line, classify(line[15:], is_header=False))
    assert styled["RAX"] == "register_name" and styled["dead000000000122"] == "register_value"
    assert styled["RCX"] == "register_name"
    cpu = "[    3.920066] CPU: 1 PID: 109 Comm: sh Tainted: G           OE      6.1.0-56-amd64 #1"
    assert classify(cpu[15:], is_header=False) is Role.TAINT
    assert _styled(cpu, Role.TAINT) == {"Tainted: G           OE": "taint"}


def test_panic_and_module_list() -> None:
    panic = "[    3.927627] Kernel panic - not syncing: Fatal exception"
    assert classify(panic[15:], is_header=False) is Role.PANIC
    assert _styled(panic, Role.PANIC) == {"Kernel panic - not syncing: Fatal exception": "panic"}
    mods = "[    3.920283] Modules linked in: crashme(OE) e1000"
    assert classify(mods[15:], is_header=False) is Role.MODULES
    assert _styled(mods, Role.MODULES) == {"Modules linked in:": "modules_label"}


def test_emulator_never_draws_control_characters() -> None:
    # C1 controls (0x9b is CSI on an 8-bit terminal) and DEL must not become strip text.
    emulator = Emulator(40, 3, lambda _: None)
    emulator.queue("a\u009b31mb\u007fc\u0085d".encode())
    emulator.process()
    text = emulator.strip(0).text + emulator.strip(1).text  # NEL (0x85) moved to row 2
    assert not any(0x80 <= ord(ch) < 0xA0 or ord(ch) in (0x7F, 0x1B) for ch in text)
    assert "abc" in text  # CSI, DEL and NEL acted on or dropped, never drawn


def test_zero_width_characters_do_not_blank_the_rest_of_a_line() -> None:
    emulator = Emulator(30, 3, lambda _: None)
    emulator.queue("ab\u200bcd efgh\ufeffij".encode())
    emulator.process()
    assert emulator.text_rows()[0] == "ab\ufffdcd efgh\ufffdij"


def test_scrollback_lines_keep_colours_and_drop_every_other_escape() -> None:
    from tui.ansi import styled_line

    text = styled_line(
        b"\x1b[1;31mred\x1b[0m \x1b]8;;http://x.invalid/\x1b\\link\x1b]8;;\x1b\\"
        b" \x1b]0;title\x07\x1b[97;44mA\x1b[49mB\x1b[38;2;1;2;3mT\r"
    )
    assert text.plain == "red link AB" + "T"
    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles == {
        "red": "bold red",
        "A": "bright_white on blue",
        "B": "bright_white",
        "T": "#010203",
    }
    assert all(span.style.link is None for span in text.spans)  # type: ignore[union-attr]


# -- the row cache follows scrolls exactly -----------------------------------------------------

_PIECES = [
    b"plain line\r\n",
    b"\x1b[31mred\x1b[0m and \x1b[1;44mbold on blue\x1b[0m\r\n",
    b"no newline ",
    b"\n",
    b"\r\n",
    b"\x1b[2;4r",  # scroll region rows 2-4
    b"\x1b[r",  # whole screen again
    b"\x1b[6;1H",  # cursor to the last row
    b"\x1b[1;1H",
    b"\x1bM",  # reverse index
    b"\x1b[2K",
    b"\x1b[J",
    b"\x1b[3L",
    b"\x1b[2M",
    "wide \u4e2d\u6587 text\r\n".encode(),
    b"x" * 25 + b"\r\n",  # wraps
]


@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_cached_rows_equal_freshly_drawn_rows(batches: list[list[bytes]]) -> None:
    # The emulator moves its cached rows with each scroll instead of redrawing them all;
    # after any mix of output, scroll regions and edits, every cached row must be the row a
    # fresh draw of the same cells gives.
    emulator = Emulator(20, 6, lambda _: None)
    for batch in batches:
        emulator.queue(b"".join(batch))
        emulator.process()
        for y in range(emulator.rows):
            fresh = Strip(emulator._segments(y), emulator.columns)
            assert list(emulator.strip(y)) == list(fresh), (y, batch)
