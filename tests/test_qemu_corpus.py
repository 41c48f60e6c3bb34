"""Real Debian kernels crashing under QEMU: what `crashcart analyze` must say about each capture.

EXPECTED.json (shared/corpus/qemu) is the contract for these captures: the first crash's kind and
guilty function, its module, some crash's panic reason and the taint letters. NAME.expected.json is
a person's reading of the same capture (where the crash starts and ends).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from crashcart.kernel import CrashReport, analyze_bytes
from crashcart.kernel.taint import taint_letters
from crashcart.recording import load_console_bytes


def _expected_at_import() -> dict[str, dict[str, Any]]:
    """EXPECTED.json read at collection time, so that each capture gets its own test id."""
    override = os.environ.get("CRASHCART_SHARED")
    shared = Path(override) if override else Path(__file__).resolve().parents[2] / "shared"
    # (the same place as conftest.py's `shared_dir`; the fixtures decide skip or fail)
    try:
        return json.loads((shared / "corpus" / "qemu" / "EXPECTED.json").read_text())
    except OSError:
        return {}  # the fixtures below skip (or fail under CRASHCART_REQUIRE_LAB=1)


EXPECTED = _expected_at_import()
NAMES = sorted(EXPECTED)
CRASHING = sorted(name for name, want in EXPECTED.items() if want.get("crash", True))

_CACHE: dict[Path, list[CrashReport]] = {}


def reports_of(path: Path) -> list[CrashReport]:
    if path not in _CACHE:
        _CACHE[path] = analyze_bytes(path.read_bytes())
    return _CACHE[path]


def crash_reports(path: Path) -> list[CrashReport]:
    """The crashes of a capture (an unexpected reboot is not one of the contract's kinds)."""
    return [r for r in reports_of(path) if r.kind != "reboot"]


def person_blocks(qemu_corpus: Path, name: str) -> list[tuple[int, int]]:
    """The crash blocks a person marked in NAME.expected.json, adjacent events merged (an oops
    and the panic printed right after it are one block on the screen)."""
    reading = json.loads((qemu_corpus / f"{name}.expected.json").read_text())
    blocks: list[tuple[int, int]] = []
    for event in reading["events"]:
        start, end = event["start_line"], event["end_line"]
        if blocks and start <= blocks[-1][1] + 1:
            blocks[-1] = (blocks[-1][0], max(end, blocks[-1][1]))
        else:
            blocks.append((start, end))
    return blocks


def first_crash(qemu_corpus: Path, name: str) -> CrashReport:
    crashes = crash_reports(qemu_corpus / f"{name}.log")
    assert crashes, f"{name}: no crash found"
    return crashes[0]


@pytest.mark.parametrize("name", CRASHING)
def test_first_crash_has_the_expected_kind(qemu_corpus: Path, name: str) -> None:
    assert first_crash(qemu_corpus, name).kind in EXPECTED[name]["kind_any_of"]


@pytest.mark.parametrize("name", CRASHING)
def test_first_crash_blames_the_expected_function(qemu_corpus: Path, name: str) -> None:
    want = EXPECTED[name]["function_any_of"]
    function = first_crash(qemu_corpus, name).function
    if want is None:
        assert function is None  # OOM, a missing root fs: no function belongs in the title
    else:
        assert function in want


@pytest.mark.parametrize("name", CRASHING)
def test_first_crash_names_the_expected_module(qemu_corpus: Path, name: str) -> None:
    assert first_crash(qemu_corpus, name).module == EXPECTED[name]["module"]


@pytest.mark.parametrize("name", CRASHING)
def test_some_crash_gives_the_panic_reason(qemu_corpus: Path, name: str) -> None:
    want = EXPECTED[name]["panic_contains"]
    panics = [r.panic for r in crash_reports(qemu_corpus / f"{name}.log") if r.panic]
    if want is None:
        assert panics == [], "the kernel did not panic in this capture"
    else:
        assert any(want in p for p in panics), panics


@pytest.mark.parametrize("name", CRASHING)
def test_first_crash_has_the_expected_taint_letters(qemu_corpus: Path, name: str) -> None:
    first = first_crash(qemu_corpus, name)
    want = EXPECTED[name]["taint_letters"]
    assert taint_letters(first.tainted) == want
    assert "".join(t.letter for t in first.taint) == want
    assert all(t.meaning for t in first.taint)


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(CRASHING)))
def test_a_capture_without_a_crash_reports_nothing(qemu_corpus: Path, name: str) -> None:
    assert reports_of(qemu_corpus / f"{name}.log") == []


def test_the_corpus_was_read_at_collection_with_its_negative_case(qemu_corpus: Path) -> None:
    # The parametrized tests above are empty when EXPECTED.json could not be read at collection
    # time; this one uses the fixture, so a missing corpus is a skip (or, in CI, a failure).
    assert json.loads((qemu_corpus / "EXPECTED.json").read_text()) == EXPECTED
    assert EXPECTED["normal_boot_login"] == {"crash": False}


@pytest.mark.parametrize("name", NAMES)
def test_the_recording_gives_the_same_reports_as_the_raw_log(qemu_corpus: Path, name: str) -> None:
    from_log = [r.to_dict() for r in reports_of(qemu_corpus / f"{name}.log")]
    cast_bytes = load_console_bytes(qemu_corpus / f"{name}.cast")
    from_cast = [r.to_dict() for r in analyze_bytes(cast_bytes)]
    assert from_cast == from_log


@pytest.mark.parametrize("name", CRASHING)
def test_each_crash_block_brackets_its_header_line(qemu_corpus: Path, name: str) -> None:
    path = qemu_corpus / f"{name}.log"
    log_lines = path.read_bytes().decode("utf-8", "replace").split("\n")
    for report in crash_reports(path):
        assert 1 <= report.start_line <= report.end_line <= len(log_lines)
        assert len(report.lines) == report.end_line - report.start_line + 1
        # The header is the kernel's own first line of the report: find it in the raw log.
        header_line = next(
            (
                n
                for n in range(report.start_line, report.end_line + 1)
                if report.message in log_lines[n - 1]
            ),
            None,
        )
        assert header_line is not None, f"{report.message!r} not within the block"
        assert report.message in report.lines[header_line - report.start_line]


@pytest.mark.parametrize("name", CRASHING)
def test_crash_blocks_lie_within_the_blocks_a_person_marked(qemu_corpus: Path, name: str) -> None:
    blocks = person_blocks(qemu_corpus, name)
    for report in crash_reports(qemu_corpus / f"{name}.log"):
        assert any(start <= report.start_line <= report.end_line <= end for start, end in blocks), (
            f"{report.kind} at {report.start_line}-{report.end_line}, person: {blocks}"
        )


@pytest.mark.parametrize("name", CRASHING)
def test_every_block_a_person_marked_is_found_and_ends_where_they_said(
    qemu_corpus: Path, name: str
) -> None:
    crashes = crash_reports(qemu_corpus / f"{name}.log")
    for start, end in person_blocks(qemu_corpus, name):
        inside = [r for r in crashes if start <= r.start_line <= end]
        assert inside, f"nothing reported in lines {start}-{end}"
        assert inside[-1].end_line == end
