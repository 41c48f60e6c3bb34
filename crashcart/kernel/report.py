"""The crash report: what the parser concluded about one crash, in the JSON contract's shape.

The field names and their meaning are fixed by DESIGN.md (`analyze --json`); scripts and the
incident folder depend on them, so add fields rather than rename them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Frame:
    """One call-trace line: `? func+0x1a/0x40 [module]` or `func+0x1a/0x40 mm/slub.c:123`."""

    function: str
    offset: str | None = None
    size: str | None = None
    module: str | None = None
    reliable: bool = True
    source: str | None = None  # `file.c:NN` when the kernel (or syzkaller) already symbolised it
    section: str | None = None  # "task", "irq", "softirq", "nmi" for <TASK>/<IRQ>/... sections

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "function": self.function,
            "offset": self.offset,
            "size": self.size,
            "module": self.module,
            "reliable": self.reliable,
        }
        if self.source:
            out["source"] = self.source
        if self.section:
            out["section"] = self.section
        return out


@dataclass(slots=True)
class TaintFlag:
    letter: str
    meaning: str

    def to_dict(self) -> dict[str, str]:
        return {"letter": self.letter, "meaning": self.meaning}


@dataclass(slots=True)
class CrashReport:
    """One crash carved out of a console stream.

    `start_line`/`end_line` are 1-based line numbers in the input stream. `lines` holds the carved
    block itself (what `oops.txt` of an incident contains), already stripped of timestamps' noise
    only in the sense that console escapes are removed; timestamps are kept.
    """

    kind: str
    title: str
    message: str
    panic: str | None = None
    function: str | None = None
    module: str | None = None
    rip: str | None = None
    tainted: str | None = None
    taint: list[TaintFlag] = field(default_factory=list)
    kernel: str | None = None
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    hardware: str | None = None
    registers: dict[str, str] = field(default_factory=dict)
    call_trace: list[Frame] = field(default_factory=list)
    modules_linked_in: list[str] = field(default_factory=list)
    code: str | None = None
    start_line: int = 0
    end_line: int = 0
    truncated: bool = False
    arch: str | None = None
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md `analyze --json` object (plus `code`, `truncated`, `arch`)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "message": self.message,
            "panic": self.panic,
            "function": self.function,
            "module": self.module,
            "rip": self.rip,
            "tainted": self.tainted,
            "taint": [t.to_dict() for t in self.taint],
            "kernel": self.kernel,
            "cpu": self.cpu,
            "pid": self.pid,
            "comm": self.comm,
            "hardware": self.hardware,
            "registers": dict(self.registers),
            "call_trace": [f.to_dict() for f in self.call_trace],
            "modules_linked_in": list(self.modules_linked_in),
            "code": self.code,
            "arch": self.arch,
            "truncated": self.truncated,
            "start_line": self.start_line,
            "end_line": self.end_line,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CrashReport:
        """A report back from its `to_dict` object (a logs hit, an incident's report.json)."""
        fields = {k: doc.get(k) for k in _SCALAR_FIELDS if k in doc}
        return cls(
            **fields,
            taint=[TaintFlag(t["letter"], t["meaning"]) for t in doc.get("taint") or []],
            registers=dict(doc.get("registers") or {}),
            call_trace=[Frame(**f) for f in doc.get("call_trace") or []],
            modules_linked_in=list(doc.get("modules_linked_in") or []),
        )

    @property
    def text(self) -> str:
        """The carved crash block, one console line per line (what `oops.txt` holds)."""
        return "\n".join(self.lines) + ("\n" if self.lines else "")


# The fields of `to_dict` that are plain values (the rest are rebuilt by `from_dict`).
_SCALAR_FIELDS = (
    "kind", "title", "message", "panic", "function", "module", "rip", "tainted", "kernel",
    "cpu", "pid", "comm", "hardware", "code", "arch", "truncated", "start_line", "end_line",
)  # fmt: skip
