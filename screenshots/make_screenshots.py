"""Regenerate screenshots/*.svg: every main screen of the console app at 120x40.

    .venv/bin/python screenshots/make_screenshots.py

The scenes are the ones the snapshot tests check (tests/tuitools.py SCENES): the bundled demo
recording replayed to its end, plus a real normal boot from ../shared/corpus/qemu for the tabs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from tuitools import SCENES, SIZE, stable_names  # noqa: E402


async def draw(name: str, out: Path) -> None:
    make_app, run_before = SCENES[name]
    app = make_app(Path("rec"))
    async with app.run_test(size=SIZE) as pilot:
        await run_before(pilot)
        out.write_text(app.export_screenshot(title=f"crashcart — {name}"))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, stable_names():
        os.chdir(tmp)  # recordings of the replays go to a throwaway folder
        for name in SCENES:
            out = HERE / f"{name}.svg"
            asyncio.run(draw(name, out))
            print(f"wrote {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
