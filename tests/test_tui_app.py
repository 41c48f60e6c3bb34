"""The console app driven by Pilot on replays of real QEMU captures: what an operator sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.color import Color
from textual.widgets import DataTable, Static
from tuitools import DEMO, SIZE, asyncio_test, replay_app, replay_finished, wait_until

from tui.highlight import STYLES
from tui.screens.help import HelpScreen
from tui.screens.sysrq import SysrqScreen
from tui.widgets.crash_panel import CrashPanel

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _row_with(rows: list[str], needle: str) -> int:
    for y, row in enumerate(rows):
        if needle in row:
            return y
    raise AssertionError(f"{needle!r} is not on the screen:\n" + "\n".join(rows))


def _styles_of(strip, text: str) -> list:  # type: ignore[no-untyped-def]
    """Styles of the segments that carry `text` (or part of it) in a rendered row."""
    return [seg.style for seg in strip if seg.text.strip() and seg.text.strip() in text]


@asyncio_test
async def test_demo_panic_is_highlighted_explained_and_captured(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        pane = app.panes[0]
        view = pane.view

        # The panic line is on the screen, drawn in the panic colours.
        rows = view.screen_rows()
        y = _row_with(rows, "Kernel panic - not syncing: Fatal exception")
        panic_styles = _styles_of(
            view.render_line(y), "Kernel panic - not syncing: Fatal exception"
        )
        assert any(s is not None and s.bgcolor == STYLES["panic"].bgcolor for s in panic_styles)
        # A module in a frame is drawn in the warning colour on the RIP line.
        y = _row_with(rows, "RIP: 0010:crashme_gpf")
        module_styles = _styles_of(view.render_line(y), "[crashme]")
        assert any(s is not None and s.color == Color.parse("yellow") for s in module_styles)

        # The crash panel opened and explains the crash.
        panel = pane.query_one(CrashPanel)
        assert panel.display and not panel.has_class("-hidden")
        fields = str(panel.query_one("#crash-fields", Static).render())
        for expected in (
            "gpf",
            "general protection fault in crashme_gpf",
            "crashme_gpf",
            "crashme",
            "Fatal exception",
            "externally-built (out-of-tree) module",
            "6.1.0-56-amd64",
            "QEMU Standard PC",
        ):
            assert expected in fields, expected
        registers = panel.query_one("#crash-registers", DataTable)
        names = [str(registers.get_row_at(i)[0]) for i in range(registers.row_count)]
        assert "RIP" in names and "RAX" in names and "CR2" in names
        trace = panel.query_one("#crash-trace", DataTable)
        functions = [str(trace.get_row_at(i)[1]) for i in range(trace.row_count)]
        assert functions[:2] == ["crashme_do", "crashme_direct_write"], functions
        assert str(trace.get_row_at(0)[3]) == "[crashme]"

        # The incident folder has every file, with the screen as it was drawn.
        assert pane.status.crashes == 1
        (incident,) = pane.incidents
        names = sorted(p.name for p in incident.iterdir())
        assert names == [
            "console.cast",
            "console.log",
            "oops.txt",
            "report.json",
            "report.md",
            "screen.svg",
            "screen.txt",
        ]
        report = json.loads((incident / "report.json").read_text())
        assert report["crash"]["function"] == "crashme_gpf"
        assert report["crash"]["module"] == "crashme"
        screen_txt = (incident / "screen.txt").read_text()
        assert "Kernel panic - not syncing: Fatal exception" in screen_txt
        assert screen_txt.splitlines() == [r.rstrip() for r in view.screen_rows()]
        svg = (incident / "screen.svg").read_text()
        assert svg.startswith("<svg") and "Kernel&#160;panic" in svg
        assert "#870000" in svg  # the panic line's highlight (dark_red) made it into the picture
        assert (incident / "console.log").read_bytes() == DEMO_BYTES()
        assert (incident.stat().st_mode & 0o777) == 0o700
        assert all((p.stat().st_mode & 0o777) == 0o600 for p in incident.iterdir())


def DEMO_BYTES() -> bytes:
    from crashcart.recording import load_console_bytes

    return load_console_bytes(DEMO)


@asyncio_test
async def test_scrollback_search_and_jump_to_crash(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        pane = app.panes[0]
        await pilot.press("left_square_bracket")
        scrollback = pane.scrollback
        assert scrollback.has_focus
        # Every line of the session is there, not just a screenful.
        assert len(pane.store) > 400
        first = pane.store.line_bytes(0)
        assert b"SeaBIOS" in first or len(first) >= 0

        await pilot.press("slash")
        for key in "end trace":
            await pilot.press("space" if key == " " else key)
        await pilot.press("enter")
        assert scrollback.current is not None
        assert b"end trace" in pane.store.line_bytes(scrollback.current)
        await pilot.pause(0.1)
        assert 0 <= scrollback.current - scrollback.scroll_offset.y < scrollback.size.height
        line = scrollback.render_line(scrollback.current - scrollback.scroll_offset.y)
        assert "end trace" in line.text

        await pilot.press("g")  # top, then the next crash header
        scrollback.current = None
        await pilot.press("c")
        header = pane.panel.entries[1].line
        assert scrollback.current == header - 1
        await pilot.pause(0.1)
        assert 0 <= scrollback.current - scrollback.scroll_offset.y < scrollback.size.height
        assert b"general protection fault" in pane.store.line_bytes(header - 1)
        drawn = scrollback.render_line(scrollback.current - scrollback.scroll_offset.y)
        assert any(
            seg.style is not None and seg.style.bgcolor == STYLES["header"].bgcolor for seg in drawn
        )

        await pilot.press("escape")
        assert pane.view.has_focus


@asyncio_test
async def test_manual_capture_writes_the_screen(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        await pilot.press("s")
        pane = app.panes[0]
        await wait_until(pilot, lambda: bool(pane.captures), 5, "the capture")
        (capture,) = pane.captures
        assert capture.parent == tmp_path / "rec" / "captures"
        text = (capture / "screen.txt").read_text()
        assert text.splitlines() == [r.rstrip() for r in pane.view.screen_rows()]
        assert (capture / "screen.svg").read_text().startswith("<svg")
        assert json.loads((capture / "capture.json").read_text())["console"] == pane.connector.name
        # The toast says where it went.
        assert any(str(capture) in str(n.message) for n in app._notifications)


@asyncio_test
async def test_help_lists_every_command(tmp_path: Path) -> None:
    from tui.keymap import COMMANDS

    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(str(widget.render()) for widget in app.screen.query(Static))
        rendered = app.export_screenshot()
        for command in COMMANDS:
            assert command.title.replace(" ", "&#160;") in rendered or command.title in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@asyncio_test
async def test_sysrq_palette_says_a_recording_cannot_take_break(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, SysrqScreen), 5, "the palette")
        assert "a recording cannot be sent a BREAK" in app.export_screenshot().replace(
            "&#160;", " "
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, SysrqScreen)


@asyncio_test
async def test_replay_controls_pause_speed_and_seek_to_crash(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO, speed=1.0)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.panes[0]
        await wait_until(pilot, lambda: pane.status.bytes_in > 0, 10, "the first bytes")
        await pilot.press("space")
        assert pane.connector.paused and "paused" in pane.status.replay
        held = pane.status.bytes_in
        await pilot.pause(0.5)
        assert pane.status.bytes_in == held  # nothing plays while paused
        await pilot.press("plus")
        assert pane.connector.speed == 2.0
        await pilot.press("minus", "minus")
        assert pane.connector.speed == 0.5
        # Seek: full speed until the crash starts, then back to the chosen speed.
        await pilot.press("greater_than_sign")
        await wait_until(pilot, lambda: pane.status.crashes == 1, 10, "the crash")
        assert pane.connector.speed == 0.5
        assert "to next crash" not in pane.status.replay


@asyncio_test
async def test_two_consoles_in_tabs_badge_the_one_that_crashed(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    boot = qemu_corpus / "normal_boot_login.log"
    app = replay_app(tmp_path / "rec", boot, DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        from textual.widgets import TabbedContent

        tabs = app.query_one(TabbedContent)
        labels = [str(tabs.get_tab(f"tab-{i}").label) for i in range(2)]
        assert "crashed" not in labels[0]
        assert labels[1].endswith("● crashed")
        assert app.panes[0].status.crashes == 0 and app.panes[1].status.crashes == 1
        await pilot.press("t")
        assert tabs.active == "tab-1"


@asyncio_test
async def test_scrollback_never_draws_tabs_or_bidi_controls_from_crash_lines(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    # A crash line as the parser keeps it (TAB and bidi controls survive its cleaning) is
    # drawn with those characters replaced: on a terminal they move the cursor or reorder text.
    data = (qemu_corpus / "oops_null_panic.log").read_bytes()
    data = data.replace(b"Modules linked in:", "Modules linked in:\t\u202e".encode(), 1)
    log = tmp_path / "tricky.log"
    log.write_bytes(data)
    app = replay_app(tmp_path / "rec", log)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        pane = app.panes[0]
        await pilot.press("left_square_bracket")
        await pilot.pause(0.1)
        scrollback = pane.scrollback
        number = next(n for n, line in pane.highlights.by_number.items() if "\u202e" in line.text)
        scrollback.show_line(number - 1)
        await pilot.pause(0.1)
        drawn = scrollback.render_line(number - 1 - scrollback.scroll_offset.y).text
        assert "Modules linked in:" in drawn
        assert "\t" not in drawn and "\u202e" not in drawn


@asyncio_test
async def test_export_report_writes_ticket_files_into_the_incident(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        pane = app.panes[0]
        await pilot.press("e")
        await wait_until(pilot, lambda: len(pane.exports) == 2, 10, "the exported report")
        (incident,) = pane.incidents
        md, html = pane.exports
        assert (md, html) == (incident / "ticket.md", incident / "ticket.html")
        assert "# general protection fault in crashme\\_gpf" in md.read_text()  # Markdown-escaped
        page = html.read_text()
        assert "crashme_gpf" in page and "<script" not in page.lower()
        assert (md.stat().st_mode & 0o777) == 0o600
        await wait_until(
            pilot,
            lambda: any("ticket.md" in str(n.message) for n in app._notifications),
            5,
            "the toast",
        )
