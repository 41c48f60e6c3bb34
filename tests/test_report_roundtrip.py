"""A crash report survives its JSON form: what a logs hit or an incident stores can be shown
again in the crash panel with every field."""

from __future__ import annotations

import json
from pathlib import Path

from crashcart.kernel import analyze_bytes
from crashcart.kernel.report import CrashReport


def test_every_qemu_capture_report_round_trips_through_json(qemu_corpus: Path) -> None:
    seen = 0
    for log in sorted(qemu_corpus.glob("*.log")):
        for report in analyze_bytes(log.read_bytes()):
            doc = json.loads(json.dumps(report.to_dict()))
            again = CrashReport.from_dict(doc)
            assert again.to_dict() == report.to_dict(), log.name
            seen += 1
    assert seen >= 14
