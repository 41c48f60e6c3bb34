"""bench/bench_logs.py still works: a small run in-process, its planted events all found.

Speed depends on the machine and its load, so the figures are recorded (`record_property`,
printed) and never asserted; what is asserted is behaviour: the planted oopses, panics and
I/O errors are the hits, and the generated file is gone afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_bench_logs_small_run_finds_what_it_planted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    bench_logs = importlib.import_module("bench_logs")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench_logs.main(
            ["--size", "24", "--every", "4", "--json", "--tmpdir", str(tmp_path)]
        )
    figures = json.loads(out.getvalue())
    assert status == 0
    assert figures["check_ok"] is True
    assert figures["planted"] >= 5
    assert figures["hits"] == {"io_error": figures["planted"], "panic": figures["planted"]}
    assert figures["search_lines"] == figures["planted"]
    assert figures["lines"] > 100_000
    assert list(tmp_path.iterdir()) == []  # the generated log was deleted
    for key in ("open_s", "index_s", "search_mib_s", "search_cold_mib_s", "hits_mib_s"):
        record_property(key, round(figures[key], 3))
    print(
        f"24 MiB: open {figures['open_s'] * 1000:.1f} ms, index {figures['index_s']:.3f} s, "
        f"search {figures['search_mib_s']:.0f} MiB/s, hits {figures['hits_mib_s']:.0f} MiB/s "
        "(recorded, not asserted)"
    )
