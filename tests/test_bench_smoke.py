"""The benchmarks still work: a small generated log, and bench_analyze run in-process on it.

Only behaviour is asserted (what was embedded is found, the output parses); speed depends on the
machine, so the throughput is recorded (`print`, `record_property`) and never checked.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SIZE_MB = "2"
# Small gaps so ~2 MiB holds every capture at least once (16 embedded with seed 7).
CRASH_EVERY_KB = "100"
SEED = "7"


def generate(out: Path, shared: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(BENCH / "make_console_log.py"),
            str(out),
            "--size-mb",
            SIZE_MB,
            "--crash-every-kb",
            CRASH_EVERY_KB,
            "--seed",
            SEED,
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "CRASHCART_SHARED": str(shared)},
    )


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory, qemu_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("bench") / "console.log"
    generate(out, qemu_corpus.parents[1])
    return out


@pytest.fixture(scope="module")
def manifest(small_log: Path) -> dict[str, Any]:
    return json.loads(small_log.with_name(small_log.name + ".manifest.json").read_text())


@pytest.fixture
def bench_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    # The bench scripts import their sibling `_shared` the way a script run from bench/ does.
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture(scope="module")
def analyze_doc(small_log: Path) -> dict[str, Any]:
    """bench_analyze's --json output for the small log (run once: it also runs the CLI and grep)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.syspath_prepend(str(BENCH))
        bench_analyze = importlib.import_module("bench_analyze")
        bench_analyze.main([str(small_log), "--json", "--repeat", "1"])
    return json.loads(out.getvalue())


def test_generator_is_deterministic_and_says_what_it_embedded(
    small_log: Path, manifest: dict[str, Any], qemu_corpus: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again.log"
    done = generate(again, qemu_corpus.parents[1])
    assert again.read_bytes() == small_log.read_bytes()
    assert small_log.stat().st_size >= 2 * (1 << 20)
    assert manifest["size_bytes"] == small_log.stat().st_size
    assert manifest["lines"] == small_log.read_bytes().count(b"\n")
    # Every capture at least once, and the printed count is the manifest's.
    names = {p.stem for p in qemu_corpus.glob("*.log")}
    assert {c["name"] for c in manifest["captures"]} == names
    assert f"with {manifest['expected_crashes']} real crashes" in done.stdout


def test_generator_timestamps_rise_across_the_file(
    small_log: Path, manifest: dict[str, Any]
) -> None:
    # Within a capture, `dmesg` output replays older stamps, as on a real console; what must
    # rise is the clock from one part of the file to the next.
    lines = small_log.read_bytes().split(b"\n")
    stamp = re.compile(rb"^\[\s*(\d+\.\d{6})\]")

    def stamps(first: int, last: int) -> list[float]:
        found = (stamp.match(line) for line in lines[first - 1 : last])
        return [float(m.group(1)) for m in found if m]

    previous_end = 0
    for cap in manifest["captures"]:
        before = stamps(previous_end + 1, cap["first_line"] - 1)
        inside = stamps(cap["first_line"], cap["last_line"])
        assert before == sorted(before)
        assert max(before) < min(inside), cap["name"]
        previous_end = cap["last_line"]
    after = stamps(previous_end + 1, len(lines))
    assert max(stamps(1, previous_end)) < min(after)


def test_bench_analyze_finds_every_embedded_crash(
    analyze_doc: dict[str, Any], manifest: dict[str, Any], record_property: Any
) -> None:
    check = analyze_doc["check"]
    assert check["expected_crashes"] == manifest["expected_crashes"]
    for way, found in check["found_crashes"].items():
        assert found == manifest["expected_crashes"], way
    crash_problems = [p for p in check["problems"] if "reboot" not in p]
    assert crash_problems == []
    timings = analyze_doc["timings"]
    assert set(timings) >= {"analyze", "stream", "cli"}
    assert timings["cli"]["extra"]["peak_rss_mib"] > 0
    for name, t in timings.items():
        record_property(f"{name}_mib_per_s", round(t["mib_per_s"], 1))
        print(f"{name}: {t['mib_per_s']:.1f} MiB/s on {SIZE_MB} MiB (recorded, not asserted)")


def test_bench_analyze_reports_only_unexpected_reboots(
    analyze_doc: dict[str, Any], manifest: dict[str, Any]
) -> None:
    check = analyze_doc["check"]
    assert check["found_reboots"]["in-process"] == manifest["expected_reboots"]
    assert check["problems"] == []


def test_stream_latency_runs_on_one_capture(
    bench_module: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    qemu_corpus: Path,
) -> None:
    monkeypatch.setenv("CRASHCART_SHARED", str(qemu_corpus.parents[1]))
    latency = bench_module("bench_stream_latency")
    assert latency.main(["--capture", "multi_oops_then_panic", "--passes", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cap = doc["captures"]["multi_oops_then_panic"]
    assert cap["feed_line"]["p50_us"] > 0
    assert len(doc["crashes"]) >= 1
    assert all(c["completed_at"] >= c["header_line"] for c in doc["crashes"])


def test_bench_watch_records_a_flat_out_console_losslessly_and_measures_a_fleet() -> None:
    """bench_watch.py at a small size: every byte recorded (sha256); figures are only printed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_watch", Path(__file__).resolve().parents[1] / "bench" / "bench_watch.py"
    )
    assert spec is not None and spec.loader is not None
    bench_watch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_watch)
    flat = bench_watch.flat_out(8, bench_watch.quiet_console_bytes())
    assert flat["sha256_identical"] is True
    fleet = bench_watch.fleet(2, 2.0, bench_watch.quiet_console_bytes())
    assert fleet["recorded_mib"] > 0
    print(f"bench_watch smoke: flat out {flat['mb_per_s']} MiB/s, fleet of 2: {fleet}")


def test_bench_ingest_records_every_byte_and_writes_the_incidents(
    small_log: Path, manifest: dict[str, Any], record_property: Any
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_ingest.py"),
            str(small_log),
            "--pyte-mib",
            "0.25",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    session, pyte = doc["session"], doc["pyte"]
    # The session recorded the whole log (it asserts that itself) and wrote an incident for
    # every crash embedded in it.
    assert session["mib"] == round(small_log.stat().st_size / 2**20, 1)
    assert session["incidents"] >= manifest["expected_crashes"]
    assert pyte["mib"] in (0.2, 0.3)  # 0.25 MiB, rounded to one decimal
    for name, part in doc.items():
        record_property(f"{name}_mib_per_s", part["mib_per_s"])
        print(f"{name}: {part['mib_per_s']} MiB/s (recorded, not asserted)")
