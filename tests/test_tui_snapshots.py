"""SVG snapshots of the main screens at 120x40 (pytest-textual-snapshot).

The snapshots live in tests/__snapshots__/; after an intended change to a screen, look at the
new pictures and accept them with `pytest tests/test_tui_snapshots.py --snapshot-update`.
`screenshots/make_screenshots.py` draws the same scenes for the README.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tuitools import SCENES, SIZE, stable_names

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_screen_matches_snapshot(
    scene: str, snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qemu_corpus: Path
) -> None:  # type: ignore[no-untyped-def]
    # Paths on screen are relative to a fixed folder name, so the picture does not depend on
    # where pytest put tmp_path.
    monkeypatch.chdir(tmp_path)
    make_app, run_before = SCENES[scene]
    with stable_names():
        assert snap_compare(make_app(Path("rec")), terminal_size=SIZE, run_before=run_before)
