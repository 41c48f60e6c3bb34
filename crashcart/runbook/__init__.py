"""Guided mitigation: the recovery runbook for one incident, without any UI.

- `steps`: the procedure as data and `build_runbook()`, the plan for one crash;
- `commands`: the commands per distribution family, and the checks on every value in them;
- `state`: progress saved in the incident's runbook.json;
- `execute`: running a command over ssh or typing it into a console, only once confirmed.

`load_runbook(incident)` is the usual entry point: the plan and the saved progress of a folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crashcart.recording import InputError
from crashcart.runbook.commands import Command, Distro, UnsafeValue, detect_distro
from crashcart.runbook.execute import (
    ExecuteError,
    RunResult,
    run_over_ssh,
    type_into_console,
    type_into_console_async,
)
from crashcart.runbook.state import RunbookState, read_json
from crashcart.runbook.steps import PROCEDURE, Settings, Step, build_runbook

__all__ = [
    "PROCEDURE",
    "Command",
    "Distro",
    "ExecuteError",
    "RunResult",
    "RunbookState",
    "Settings",
    "Step",
    "UnsafeValue",
    "build_runbook",
    "detect_distro",
    "load_runbook",
    "run_over_ssh",
    "type_into_console",
    "type_into_console_async",
]


def load_runbook(incident: Path) -> tuple[list[Step], RunbookState]:
    """The plan for an incident folder (from report.json, hardware.json and the saved settings)
    and its progress. InputError when the folder has no readable report.json."""
    report = read_json(incident / "report.json")
    if report is None:
        raise InputError(f"{incident}: no report.json (not an incident folder)")
    crash = report.get("crash") if isinstance(report, Mapping) else None
    if not isinstance(crash, Mapping):
        raise InputError(f"{incident / 'report.json'}: no crash object in it")
    hardware = read_json(incident / "hardware.json")
    state = RunbookState.load(incident)
    hw: Mapping[str, Any] | None = hardware if isinstance(hardware, Mapping) else None
    return build_runbook(crash, hardware=hw, settings=state.settings), state
