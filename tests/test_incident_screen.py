"""An incident's screen is the screen the crash left, even when the crash and what followed it
arrived in one large chunk (a console server flushing its buffer, a replay at full speed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tuitools import SIZE, asyncio_test, replay_app, replay_finished

from connectors import open_connector
from crashcart.session import Session

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def one_chunk_recording(tmp_path: Path, qemu_corpus: Path) -> Path:
    """A .cast whose single output event is a real panic followed by a real normal boot."""
    data = (qemu_corpus / "oops_null_panic.log").read_bytes()
    data += (qemu_corpus / "normal_boot_login.log").read_bytes()
    cast = tmp_path / "burst.cast"
    header = {"version": 2, "width": 80, "height": 25}
    event = [0.5, "o", data.decode("utf-8", "replace")]
    cast.write_text(json.dumps(header) + "\n" + json.dumps(event) + "\n")
    return cast


def test_headless_incident_screen_shows_the_crash_not_what_followed(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    cast = one_chunk_recording(tmp_path, qemu_corpus)

    async def scenario() -> Session:
        conn = open_connector(str(cast), speed=0)
        await conn.open()
        session = Session(conn, tmp_path / "rec")
        await session.run()
        return session

    session = asyncio.run(scenario())
    (incident,) = session.incidents
    screen = (incident / "screen.txt").read_text()
    assert "Kernel panic - not syncing" in screen
    assert "login:" not in screen and "Power down" not in screen


@asyncio_test
async def test_tui_incident_screen_shows_the_crash_not_what_followed(
    tmp_path: Path, qemu_corpus: Path
) -> None:
    cast = one_chunk_recording(tmp_path, qemu_corpus)
    app = replay_app(tmp_path / "rec", cast)
    async with app.run_test(size=SIZE) as pilot:
        await replay_finished(pilot, app)
        pane = app.panes[0]
        (incident,) = pane.incidents
        screen = (incident / "screen.txt").read_text()
        assert "Kernel panic - not syncing" in screen
        assert "Power down" not in screen
        # ... while the live screen went on to show the rest.
        assert any("Power down" in row for row in pane.view.screen_rows())
