"""Runbook progress in the incident's runbook.json: what was done, skipped, noted, run, and when.

Recovery stretches over reboots of the crashed box and of crashcart itself, so every change is
saved at once: written to a temporary file beside it (0600, like everything in an incident: the
notes may name hosts and accounts) and renamed over runbook.json, so a crash while saving leaves
the previous version, never half a file. The operator's choices (distribution, known-good kernel
...) are saved too, so the same plan is rebuilt after a restart.

    {"version": 1, "created_at": "...Z", "updated_at": "...Z",
     "settings": {"family": "debian", "os_id": "debian", "known_good_kernel": null, ...},
     "steps": {"isolate_module": {"status": "done", "notes": "...", "updated_at": "...Z",
                                  "runs": [{"at", "how", "destination", "where", "command",
                                            "exit_status"}]}}}
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crashcart.recorder import open_private
from crashcart.recording import InputError
from crashcart.runbook.commands import Command
from crashcart.runbook.steps import STEP_IDS, Settings, Step

__all__ = [
    "STATE_FILE",
    "STATUSES",
    "RunRecord",
    "RunbookState",
    "StepProgress",
    "utc_stamp",
]

STATE_FILE = "runbook.json"
STATE_VERSION = 1
STATUSES = ("pending", "done", "skipped")
HOW = ("ssh", "console")


def utc_stamp(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


@dataclass(slots=True)
class RunRecord:
    """A command the operator confirmed: typed into a console or run over ssh."""

    at: str
    how: str  # "ssh" or "console"
    command: str
    where: str  # the command's "target" or "rescue"
    destination: str | None = None  # the ssh host or console name
    exit_status: int | None = None  # over ssh only: a console gives no status back

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "how": self.how,
            "destination": self.destination,
            "where": self.where,
            "command": self.command,
            "exit_status": self.exit_status,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord | None:
        at, how, command = data.get("at"), data.get("how"), data.get("command")
        if not (isinstance(at, str) and how in HOW and isinstance(command, str)):
            return None
        where = data.get("where")
        destination = data.get("destination")
        status = data.get("exit_status")
        return cls(
            at,
            how,
            command,
            where if isinstance(where, str) else "target",
            destination if isinstance(destination, str) else None,
            status if isinstance(status, int) and not isinstance(status, bool) else None,
        )


@dataclass(slots=True)
class StepProgress:
    status: str = "pending"
    notes: str = ""
    updated_at: str | None = None
    runs: list[RunRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "notes": self.notes,
            "updated_at": self.updated_at,
            "runs": [r.to_dict() for r in self.runs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepProgress | None:
        status = data.get("status", "pending")
        if status not in STATUSES:
            return None
        notes = data.get("notes")
        updated = data.get("updated_at")
        runs = data.get("runs")
        records = (
            [
                r
                for r in (RunRecord.from_dict(x) for x in runs if isinstance(x, Mapping))
                if r is not None
            ]
            if isinstance(runs, list)
            else []
        )
        return cls(
            status,
            notes if isinstance(notes, str) else "",
            updated if isinstance(updated, str) else None,
            records,
        )


@dataclass(slots=True)
class RunbookState:
    settings: Settings = field(default_factory=Settings)
    steps: dict[str, StepProgress] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_stamp)
    updated_at: str | None = None

    # -- changes -------------------------------------------------------------------------------
    def progress(self, step_id: str) -> StepProgress:
        if step_id not in STEP_IDS:
            raise KeyError(f"unknown runbook step {step_id!r}")
        return self.steps.setdefault(step_id, StepProgress())

    def mark(
        self, step_id: str, status: str, notes: str | None = None, *, at: float | None = None
    ) -> StepProgress:
        """Set a step's status (pending, done, skipped) and, if given, replace its notes."""
        if status not in STATUSES:
            raise ValueError(f"unknown step status {status!r}: one of {', '.join(STATUSES)}")
        entry = self.progress(step_id)
        entry.status = status
        if notes is not None:
            entry.notes = notes
        entry.updated_at = self.updated_at = utc_stamp(at)
        return entry

    def record_run(
        self,
        step_id: str,
        command: Command,
        how: str,
        *,
        destination: str | None = None,
        exit_status: int | None = None,
        at: float | None = None,
    ) -> RunRecord:
        if how not in HOW:
            raise ValueError(f"unknown way of running {how!r}: ssh or console")
        entry = self.progress(step_id)
        record = RunRecord(
            utc_stamp(at), how, command.shell, command.where, destination, exit_status
        )
        entry.runs.append(record)
        entry.updated_at = self.updated_at = record.at
        return record

    def status_of(self, step: Step) -> str:
        """What the operator set; else skipped when the plan says not applicable, else pending."""
        entry = self.steps.get(step.id)
        if entry is not None and (entry.status != "pending" or entry.updated_at):
            return entry.status
        return "pending" if step.applicable else "skipped"

    # -- the file ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "settings": self.settings.to_dict(),
            "steps": {k: v.to_dict() for k, v in self.steps.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunbookState:
        """Tolerant of entries it does not know (a newer crashcart may have written them)."""
        settings = data.get("settings")
        steps: dict[str, StepProgress] = {}
        raw_steps = data.get("steps")
        if isinstance(raw_steps, Mapping):
            for step_id, raw in raw_steps.items():
                if step_id in STEP_IDS and isinstance(raw, Mapping):
                    entry = StepProgress.from_dict(raw)
                    if entry is not None:
                        steps[step_id] = entry
        created = data.get("created_at")
        updated = data.get("updated_at")
        return cls(
            Settings.from_dict(settings) if isinstance(settings, Mapping) else Settings(),
            steps,
            created if isinstance(created, str) else utc_stamp(),
            updated if isinstance(updated, str) else None,
        )

    @classmethod
    def load(cls, incident: Path) -> RunbookState:
        """The saved progress, or a fresh state when there is none yet."""
        data = read_json(incident / STATE_FILE)
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InputError(f"{incident / STATE_FILE}: not a runbook (expected a JSON object)")
        return cls.from_dict(data)

    def save(self, incident: Path) -> Path:
        path = incident / STATE_FILE
        tmp = incident / f".{STATE_FILE}.tmp"
        with open_private(tmp, "w") as out:
            out.write(json.dumps(self.to_dict(), indent=1) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return path


def read_json(path: Path) -> Any | None:
    """A JSON file's content; None when it does not exist; InputError (one line) otherwise."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise InputError(f"{path}: corrupt JSON (not UTF-8)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}: corrupt JSON ({exc})") from None
