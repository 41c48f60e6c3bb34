"""The human-readable `crashcart analyze` report, rendered with Rich.

Every string that came from the console goes through `safetext.clean()` and into a Rich `Text`
(never markup), so a hostile log cannot put escape sequences or Rich markup on the operator's
terminal. Lines are printed with soft wrapping so a piped report is not hard-wrapped at 80 columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from crashcart.kernel import CrashReport, Frame
from crashcart.safetext import clean

__all__ = ["count_lines", "format_frame", "render_reports", "stdout_console"]

_LABEL_WIDTH = 10
_INDENT = "  "


class _ReportConsole(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit(1) on its own; let the CLI handle a closed stdout like any other write.
        raise BrokenPipeError


def stdout_console() -> Console:
    """A Console for reports: no markup, emoji or auto-highlighting of console-derived text."""
    return _ReportConsole(highlight=False, markup=False, emoji=False)


def count_lines(data: bytes) -> int:
    """Lines in a console stream, counting a final line without its newline."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _field(label: str, *parts: Text | str) -> Text:
    line = Text(_INDENT)
    line.append(f"{label:<{_LABEL_WIDTH}}", style="bold")
    for part in parts:
        line.append(part if isinstance(part, Text) else Text(clean(part)))
    return line


def format_frame(frame: Frame) -> Text:
    """One call-trace frame as the kernel prints it; unreliable (`?`) frames dimmed."""
    text = Text()
    if not frame.reliable:
        text.append("? ")
    text.append(clean(frame.function), style="" if not frame.reliable else "bold")
    if frame.offset:
        text.append(clean(f"+{frame.offset}" + (f"/{frame.size}" if frame.size else "")))
    if frame.module:
        text.append(" ")
        text.append(clean(f"[{frame.module}]"), style="magenta")
    if frame.source:
        text.append(" ")
        text.append(clean(frame.source), style="cyan")
    if not frame.reliable:
        text.stylize("dim")
    return text


def _identity(report: CrashReport) -> Text | None:
    parts: list[str] = []
    if report.kernel:
        parts.append(report.kernel)
    for label, value in (("CPU", report.cpu), ("PID", report.pid), ("Comm", report.comm)):
        if value is not None and value != "":
            parts.append(f"{label} {value}")
    return _field("Kernel", "   ".join(parts)) if parts else None


def _call_trace(frames: Sequence[Frame]) -> Iterable[Text]:
    unreliable = sum(1 for f in frames if not f.reliable)
    heading = Text(_INDENT)
    heading.append("Call trace", style="bold")
    note = f" ({len(frames)} frames" + (f", {unreliable} unreliable '?'" if unreliable else "")
    heading.append(note + ")", style="dim")
    yield heading
    section: str | None = None
    for frame in frames:
        if frame.section and frame.section != section:
            yield Text(clean(f"{_INDENT * 2}<{frame.section.upper()}>"), style="dim")
        section = frame.section
        yield Text(_INDENT * 2) + format_frame(frame)


def _crash_lines(report: CrashReport) -> Iterable[Text]:
    title = Text(_INDENT)
    title.append(clean(report.title or report.message or report.kind), style="bold red")
    yield title
    if report.message and report.message != report.title:
        yield _field("Message", report.message)
    if report.panic:
        yield _field("Panic", Text(clean(report.panic), style="bold red"))
    if report.function:
        guilty = Text(clean(report.function), style="bold yellow")
        if report.module:
            guilty.append(" ")
            guilty.append(clean(f"[{report.module}]"), style="magenta")
        yield _field("Function", guilty)
    if report.rip:
        yield _field("RIP", report.rip)
    identity = _identity(report)
    if identity is not None:
        yield identity
    if report.hardware:
        yield _field("Hardware", report.hardware)
    if report.tainted or report.taint:
        yield _field("Tainted", report.tainted or "".join(t.letter for t in report.taint))
        for flag in report.taint:
            meaning = Text(" " * (len(_INDENT) + _LABEL_WIDTH))
            meaning.append(clean(flag.letter), style="bold")
            meaning.append("  " + clean(flag.meaning))
            yield meaning
    if report.call_trace:
        yield from _call_trace(report.call_trace)
    if report.modules_linked_in:
        modules = Text(_INDENT)
        modules.append("Modules linked in: ", style="bold")
        modules.append(clean(" ".join(report.modules_linked_in)))
        yield modules
    if report.truncated:
        yield Text(f"{_INDENT}(the report is cut short: the console stream ended inside it)", "dim")


def render_reports(console: Console, reports: Sequence[CrashReport], line_count: int) -> None:
    """Print one section per crash, in order of appearance, then a one-line summary."""
    if not reports:
        console.print(Text(f"No crash found in {line_count} lines."), soft_wrap=True)
        return
    for number, report in enumerate(reports, 1):
        where = f"lines {report.start_line}-{report.end_line}"
        header = Text(clean(f"Crash {number}/{len(reports)}: {report.kind} ({where})"))
        console.print(Rule(header, align="left", style="red"))
        for line in _crash_lines(report):
            console.print(line, soft_wrap=True)
        console.print()
    noun = "crash" if len(reports) == 1 else "crashes"
    console.print(Text(f"{len(reports)} {noun} found in {line_count} lines."), soft_wrap=True)
