"""bench/bench_tui.py still measures what it says, in its quick mode.

The app runs headless with real sockets on 127.0.0.1 and a real replay. Only behaviour is
asserted: the screen really ends on the end of the input, every paced line gives a positive
latency sample, the RSS figures are recorded. The figures themselves depend on the machine and
its load, so they are printed and saved with `record_property`, never checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_tui(qemu_corpus: Path) -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        # The bench imports its sibling `_shared` the way a script run from bench/ does, and
        # finds the corpus (also for the make_console_log.py child) through CRASHCART_SHARED.
        mp.syspath_prepend(str(BENCH))
        mp.setenv("CRASHCART_SHARED", str(qemu_corpus.parents[1]))
        module = importlib.import_module("bench_tui")
        yield module


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    """What each test measured, for the table printed at the end."""
    return {}


def _record(record_property: Any, prefix: str, figures: dict[str, Any], keys: list[str]) -> None:
    for key in keys:
        record_property(f"{prefix}_{key}", figures[key])
    print(f"{prefix}: " + ", ".join(f"{k}={figures[k]}" for k in keys) + " (not asserted)")


@pytest.mark.parametrize("source", ["captures", "busy"])
def test_burst_ends_with_the_end_of_the_input_on_screen(
    bench_tui: ModuleType, results: dict[str, Any], record_property: Any, source: str
) -> None:
    size = bench_tui.QUICK["burst_bytes"]
    b = bench_tui.burst(size, source)
    results.setdefault("burst", {})[source] = b
    # Every byte reached the console, and the input's last line is drawn right above the
    # cursor, with nothing queued behind it.
    assert b["bytes"] >= size
    assert b["received_bytes"] == b["bytes"]
    assert b["end_on_screen"] is True
    above_cursor, cursor_row = b["rows_to_cursor"][-2:]
    assert "crashcart-bench: end of input" in above_cursor
    assert cursor_row == ""
    assert b["frames"] >= 1
    assert b["seconds_to_quiet"] > 0
    assert b["fed_bytes"] > 0
    # The burst was parsed too: each crash in it got its incident folder.
    assert b["crashes"] == b["incidents"]
    if source == "captures":
        assert b["crashes"] >= 1
    _record(
        record_property,
        f"burst_{source}",
        b,
        ["seconds_to_quiet", "fps", "frames", "worst_loop_stall_ms", "crashes"],
    )


def test_latency_samples_every_paced_line(
    bench_tui: ModuleType, results: dict[str, Any], record_property: Any
) -> None:
    lat = bench_tui.latency(bench_tui.QUICK["latency_seconds"])
    results["latency"] = lat
    # About 11520 bytes/s for the run's length, and a positive time for every line: when its
    # tag showed on screen, or (a line that scrolled off between two redraws after a stall)
    # when a later line's did.
    assert lat["bytes"] > 0.8 * bench_tui.LINE_RATE * bench_tui.QUICK["latency_seconds"]
    assert lat["lines_sent"] > 100
    assert lat["lines_timed"] == lat["lines_sent"]
    assert 0 < lat["lines_seen"] <= lat["lines_sent"]
    samples = lat["samples_ms"]
    assert len(samples) == lat["lines_timed"]
    assert all(s > 0 for s in samples)
    assert samples == sorted(samples)
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["skipped_bytes"] == 0  # at line rate nothing is fast-forwarded
    _record(
        record_property,
        "latency",
        lat,
        ["p50_ms", "p95_ms", "p99_ms", "max_ms", "paint_p99_ms", "cpu_percent", "fps"],
    )


def test_memory_records_rss_over_a_whole_replay(
    bench_tui: ModuleType, results: dict[str, Any], record_property: Any
) -> None:
    m = bench_tui.memory(bench_tui.QUICK["memory_mib"])
    results["memory"] = m
    assert m["bytes"] >= bench_tui.QUICK["memory_mib"] * bench_tui.MIB
    assert m["received_bytes"] == m["bytes"]
    assert m["end_on_screen"] is True
    assert m["rss_samples"] >= 2
    assert 0 < m["rss_start_mib"] <= m["rss_peak_mib"]
    assert m["rss_after_mib"] > 0
    assert m["crashes"] >= 1
    assert m["crashes"] == m["incidents"]
    _record(
        record_property,
        "memory",
        m,
        ["rss_start_mib", "rss_peak_mib", "rss_after_mib", "mib_per_s", "disk_used_mib"],
    )


def test_table_gives_a_verdict_for_every_bar(
    bench_tui: ModuleType, results: dict[str, Any]
) -> None:
    if set(results) != {"burst", "latency", "memory"}:
        pytest.skip("needs the three measurements above")
    text = bench_tui.table(results)
    print(text)
    verdicts = [ok for *_, ok in bench_tui.rows(results) if ok]
    # Two bars per burst source, one for latency, one for memory.
    assert len(verdicts) == 2 * len(results["burst"]) + 2
    assert all(v in ("PASS", "FAIL") for v in verdicts)
