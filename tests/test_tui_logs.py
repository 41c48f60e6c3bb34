"""The logs pane on a rescue-mounted root built from real QEMU captures: the hits are listed
in time order, choosing one shows its file at that line, a crash hit opens in the crash panel."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from test_logs_builders import kernel_lines, syslog_text, utc
from textual.widgets import Input, OptionList, Static
from tuitools import DEMO, SIZE, asyncio_test, replay_app, replay_finished, wait_until

from crashcart.report_render import load_incident, render
from tui.screens.logs import LogsScreen, TimelineScreen
from tui.widgets.crash_panel import CrashPanel
from tui.widgets.log_view import LogView

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def mounted_root(root: Path, qemu_corpus: Path) -> Path:
    """var/log/kern.log.1.gz: a boot with a WARNING; var/log/kern.log: a boot that panicked."""
    log = root / "var" / "log"
    log.mkdir(parents=True)
    older = syslog_text(kernel_lines(qemu_corpus, "warning_continue"), utc(2026, 11, 25, 9))
    (log / "kern.log.1.gz").write_bytes(gzip.compress(older.encode()))
    newer = syslog_text(kernel_lines(qemu_corpus, "oops_null_panic"), utc(2026, 11, 26, 3))
    (log / "kern.log").write_text(newer)
    return root


@asyncio_test
async def test_logs_pane_lists_hits_and_opens_the_crash(tmp_path: Path, qemu_corpus: Path) -> None:
    root = mounted_root(tmp_path / "mnt", qemu_corpus)
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        await pilot.press("l")
        assert isinstance(app.screen, LogsScreen)
        screen = app.screen
        path = screen.query_one("#logs-path", Input)
        path.value = str(root)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.result is not None, 30, "the scan")
        assert screen.result is not None
        hits = screen.result.hits
        kinds = [hit.kind for hit in hits]
        # In time order: the older boot's WARNING (from the .gz) before the newer boot's crash.
        assert kinds.index("warning") < next(i for i, k in enumerate(kinds) if k != "warning")
        listed = screen.query_one("#logs-hits", OptionList)
        assert listed.option_count == len(hits)

        crash_at = next(
            i for i, h in enumerate(hits) if h.crash is not None and h.kind != "warning"
        )
        listed.highlighted = crash_at
        await pilot.pause(0.3)
        hit = hits[crash_at]
        view = screen.query_one("#logs-view", LogView)
        assert view.logfile is not None and view.hit_line == hit.line - 1
        drawn = view.render_line(view.hit_line - view.scroll_offset.y).text
        assert hit.text.strip()[:30] in drawn
        panel = screen.query_one("#logs-crash", CrashPanel)
        assert panel.display
        fields = str(panel.query_one("#crash-fields", Static).render())
        assert "crashme_null_deref" in fields

        # The hour before the crash, across the logs, and saved for the report.
        listed.focus()
        await pilot.press("t")
        assert isinstance(app.screen, TimelineScreen)
        lines = app.screen.lines
        assert lines and all(line.time is not None for line in lines)
        assert lines == sorted(lines, key=lambda line: line.time)
        assert all(hit.time - 3600 <= line.time <= hit.time + 10 for line in lines)
        assert not any("warning" in line.file for line in lines)  # the day before is out
        await pilot.press("escape")
        (incident,) = app.panes[0].incidents
        saved = json.loads((incident / "logs.json").read_text())
        assert len(saved["hits"]) == len(hits) and len(saved["timeline"]) == len(lines)
        report = render(load_incident(incident), "md")
        report = report.replace("\\_", "_")  # Markdown escapes underscores
        assert "crashme_null_deref" in report and "kern.log" in report

        await pilot.press("escape")
        assert not isinstance(app.screen, LogsScreen)


@asyncio_test
async def test_logs_pane_says_what_is_wrong_with_a_bad_path(tmp_path: Path) -> None:
    app = replay_app(tmp_path / "rec", DEMO)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        screen.query_one("#logs-path", Input).value = str(tmp_path / "nowhere")
        await pilot.press("enter")
        status = screen.query_one("#logs-status")
        await wait_until(pilot, lambda: "error" in str(status.render()), 10, "the error")
        assert "nowhere" in str(status.render())
        assert screen.result is None
