"""The parser against 360 real public crash logs (syzkaller's test data), scored by the corpus's
own `score.py`, with the bar the issue set: detection F1 >= 0.98, at most 3 false positives on the
logs without a crash, kind agreement >= 0.95, guilty-function agreement >= 0.85.

The logs are read in place from ../shared; nothing of them is copied into the repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

F1_MIN = 0.98
FALSE_POSITIVES_MAX = 3
KIND_MIN = 0.95
GUILTY_FUNCTION_MIN = 0.85


@dataclass(frozen=True)
class Scored:
    summary: dict[str, Any]  # score.py --summary-json
    printed: str  # score.py's own human summary


def ratio(pair: list[int]) -> float:
    """score.py writes agreement as [agreeing, scored]."""
    agreeing, scored = pair
    return agreeing / scored if scored else 0.0


@pytest.fixture(scope="module")
def scored(
    syzkaller_corpus: Path, repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Scored:
    work = tmp_path_factory.mktemp("syzkaller-score")
    adapter = work / "crashcart_adapter.py"
    adapter.write_text(
        textwrap.dedent(
            f"""\
            import sys

            sys.path.insert(0, {str(repo_root)!r})

            from crashcart.kernel import analyze_bytes


            def analyze(path):
                with open(path, "rb") as fh:
                    return {{"crashes": [r.to_dict() for r in analyze_bytes(fh.read())]}}
            """
        )
    )
    summary_path = work / "summary.json"
    command = [
        sys.executable,
        str(syzkaller_corpus / "score.py"),
        "--split",
        "dev",
        "--callable",
        f"{adapter}:analyze",
        "--callable-input",
        "path",
        "--summary-json",
        str(summary_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    return Scored(json.loads(summary_path.read_text()), done.stdout)


@pytest.fixture()
def summary(scored: Scored) -> dict[str, Any]:
    return scored.summary


def test_the_whole_dev_split_was_scored(scored: Scored, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():  # score.py's summary belongs in the CI log, pass or fail
        print("\n" + scored.printed)
    summary = scored.summary
    assert summary["files"] == 360
    assert summary["negatives"] > 0
    assert not summary["errors"], f"the parser raised or timed out: {summary['errors']}"


def test_crashes_are_detected_with_f1_of_at_least_0_98(
    summary: dict[str, Any], record_property: Any
) -> None:
    detection = summary["detection"]
    record_property("detection", json.dumps(detection))
    assert detection["f1"] >= F1_MIN, detection


def test_logs_without_a_crash_raise_at_most_three_false_alarms(summary: dict[str, Any]) -> None:
    assert summary["detection"]["fp"] <= FALSE_POSITIVES_MAX, summary["detection"]


def test_the_crash_kind_agrees_on_at_least_95_percent(
    summary: dict[str, Any], record_property: Any
) -> None:
    record_property("kind", summary["kind"])
    assert ratio(summary["kind"]) >= KIND_MIN, summary["kind"]


def test_the_guilty_function_agrees_on_at_least_85_percent(
    summary: dict[str, Any], record_property: Any
) -> None:
    record_property("guilty_function", summary["guilty_function"])
    assert ratio(summary["guilty_function"]) >= GUILTY_FUNCTION_MIN, summary["guilty_function"]


def test_no_module_is_invented_for_logs_without_modules(summary: dict[str, Any]) -> None:
    spurious, scored = summary["spurious_module"]
    assert scored > 0
    assert spurious == 0
