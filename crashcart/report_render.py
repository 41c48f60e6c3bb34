"""An incident folder rendered for a ticket: Markdown, JSON or HTML (`crashcart report`).

Everything known about the crash goes in: report.json (the crash), screen.txt (the screen when it
completed), oops.txt (the carved block), logs.json (log hits and a timeline, when a log search
ran), hardware.json (check verdicts) and runbook.json (the steps done), each optional but the
first.

Console text is hostile: a compromised or broken machine prints what it likes, and the report is
pasted into ticket systems and opened in browsers. So every string from the folder goes through
`safetext.clean()` (no terminal escapes or control characters survive, in any format), HTML escapes
all of it, Markdown escapes what would become markup (links, images, HTML, emphasis, table cells)
and fences console text with a fence longer than any backtick run inside it, and JSON is ASCII with
control characters escaped.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crashcart.recorder import open_private
from crashcart.recording import InputError
from crashcart.runbook.state import STATE_FILE, RunbookState, read_json
from crashcart.runbook.steps import Settings, Step, build_runbook
from crashcart.safetext import clean

__all__ = ["FORMATS", "Incident", "load_incident", "render"]

FORMATS = ("md", "json", "html")
# A crash loop can leave thousands of log hits; the ticket shows the first ones, JSON has all.
MAX_HITS = 100
MAX_TIMELINE = 200
# Text files larger than this are cut: a ticket needs the crash, not a runaway screen dump.
MAX_TEXT_BYTES = 4 << 20


@dataclass(slots=True)
class Incident:
    path: Path
    meta: dict[str, Any]  # console, source, detected_at
    crash: dict[str, Any]
    screen: list[str] | None
    oops: list[str] | None
    logs: dict[str, Any] | None
    hardware: dict[str, Any] | None
    runbook: RunbookState | None
    steps: list[Step]


# -- loading -------------------------------------------------------------------------------------


def _object(path: Path, data: Any) -> dict[str, Any] | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not the expected JSON object")
    return data


def _lines(path: Path) -> list[str] | None:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    cut = len(data) > MAX_TEXT_BYTES
    lines = [
        clean(line).rstrip()
        for line in data[:MAX_TEXT_BYTES].decode("utf-8", "replace").splitlines()
    ]
    if cut:
        lines.append(f"[... cut at {MAX_TEXT_BYTES >> 20} MiB]")
    return lines


def load_incident(path: Path) -> Incident:
    """Read an incident folder; InputError (one line) when it is not one or a file is corrupt."""
    if not path.exists():
        raise InputError(f"{path}: no such incident folder")
    if not path.is_dir():
        raise InputError(f"{path}: not an incident folder (not a directory)")
    report = _object(path / "report.json", read_json(path / "report.json"))
    if report is None:
        raise InputError(f"{path}: no report.json (not an incident folder, or still being written)")
    crash = report.get("crash")
    if not isinstance(crash, dict):
        raise InputError(f"{path / 'report.json'}: no crash object in it")
    meta = {k: report.get(k) for k in ("console", "source", "detected_at")}
    logs = _object(path / "logs.json", read_json(path / "logs.json"))
    hardware = _object(path / "hardware.json", read_json(path / "hardware.json"))
    runbook = None
    if (path / STATE_FILE).exists():
        runbook = RunbookState.load(path)
    settings = runbook.settings if runbook is not None else Settings()
    steps = build_runbook(crash, hardware=hardware, settings=settings)
    return Incident(
        path,
        meta,
        crash,
        _lines(path / "screen.txt"),
        _lines(path / "oops.txt"),
        logs,
        hardware,
        runbook,
        steps,
    )


def render(incident: Incident, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(incident)
    if fmt == "json":
        return render_json(incident)
    if fmt == "html":
        return render_html(incident)
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


# The files `export` writes into the incident folder, by format.
EXPORT_FILES = {"md": "ticket.md", "html": "ticket.html"}


def export(path: Path) -> list[Path]:
    """Write everything known about the incident as `ticket.md` and `ticket.html` beside it
    (0600), ready to attach to a ticket; returns their paths. InputError as `load_incident`."""
    incident = load_incident(path)
    written = []
    for fmt, name in EXPORT_FILES.items():
        target = path / name
        with open_private(target, "w") as out:
            out.write(render(incident, fmt))
        written.append(target)
    return written


# -- shared pieces -------------------------------------------------------------------------------


def _text(value: object) -> str:
    """One line of display text from anything in the folder."""
    if value is None:
        return ""
    # Split first: clean() drops line breaks, which would glue the words of two lines together.
    return " ".join(clean(part) for part in str(value).splitlines())


def _when(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
        except (OverflowError, OSError, ValueError):
            return str(value)
    return _text(value)


def _frame(frame: Mapping[str, Any]) -> str:
    text = "? " if frame.get("reliable") is False else "  "
    text += _text(frame.get("function"))
    if frame.get("offset"):
        text += f"+{_text(frame['offset'])}" + (
            f"/{_text(frame['size'])}" if frame.get("size") else ""
        )
    if frame.get("module"):
        text += f" [{_text(frame['module'])}]"
    if frame.get("source"):
        text += f" {_text(frame['source'])}"
    return text


def _summary_rows(incident: Incident) -> list[tuple[str, str]]:
    c, m = incident.crash, incident.meta
    cpu = " / ".join(_text(c.get(k)) for k in ("cpu", "pid", "comm") if c.get(k) is not None)
    lines = ""
    if c.get("start_line") or c.get("end_line"):
        lines = f"{_text(c.get('start_line'))}-{_text(c.get('end_line'))}"
        lines += " (truncated)" if c.get("truncated") else ""
    rows = [
        ("Incident", _text(incident.path.name)),
        ("Console", _text(m.get("console"))),
        ("Source", _text(m.get("source"))),
        ("Detected", _when(m.get("detected_at")) if m.get("detected_at") is not None else ""),
        ("Kind", _text(c.get("kind"))),
        ("Message", _text(c.get("message"))),
        ("Panic", _text(c.get("panic"))),
        ("Guilty function", _text(c.get("function"))),
        ("Module", _text(c.get("module"))),
        ("RIP", _text(c.get("rip"))),
        ("Kernel", _text(c.get("kernel"))),
        ("CPU / PID / Comm", cpu),
        ("Hardware", _text(c.get("hardware"))),
        ("Tainted", _text(c.get("tainted"))),
        ("Lines", lines),
    ]
    return [(k, v) for k, v in rows if v]


def _taint(crash: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for t in crash.get("taint") or ():
        if isinstance(t, Mapping):
            out.append((_text(t.get("letter")), _text(t.get("meaning"))))
    return out


def _trace(crash: Mapping[str, Any]) -> list[str]:
    return [_frame(f) for f in crash.get("call_trace") or () if isinstance(f, Mapping)]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _first(item: Mapping[str, Any], keys: Sequence[str]) -> object:
    for key in keys:
        if item.get(key) not in (None, ""):
            return item[key]
    return None


def _hit_crash(value: object) -> str:
    if isinstance(value, Mapping):
        return _text(value.get("title") or value.get("kind") or "crash")
    if value is True:
        return "crash"
    return _text(value) if value else ""


@dataclass(slots=True)
class _Event:
    when: str
    source: str
    kind: str
    text: str


def _timeline(logs: Mapping[str, Any] | None) -> list[_Event]:
    events = []
    for item in _list(logs.get("timeline")) if logs else []:
        if isinstance(item, Mapping):
            events.append(
                _Event(
                    _when(item.get("time")),
                    _text(_first(item, ("source", "file", "console"))),
                    _text(_first(item, ("kind", "event", "level"))),
                    _text(_first(item, ("text", "title", "message", "summary", "line"))),
                )
            )
        else:
            events.append(_Event("", "", "", _text(item)))
    return events


def _files(logs: Mapping[str, Any] | None) -> list[str]:
    out = []
    for item in _list(logs.get("files")) if logs else []:
        if isinstance(item, Mapping):
            out.append(_text(_first(item, ("path", "file", "name")) or json.dumps(item)))
        else:
            out.append(_text(item))
    return out


def _checks(hardware: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    out = []
    for check in _list(hardware.get("checks")) if hardware else []:
        if not isinstance(check, Mapping):
            continue
        evidence = check.get("evidence")
        if isinstance(evidence, list):
            evidence = "; ".join(_text(e) for e in evidence)
        elif isinstance(evidence, Mapping):
            evidence = json.dumps(evidence, sort_keys=True)
        out.append((_text(check.get("name")), _text(check.get("verdict")), _text(evidence)))
    return out


@dataclass(slots=True)
class _StepRow:
    title: str
    phase: str
    status: str
    reason: str
    notes: list[str]
    updated_at: str
    runs: list[tuple[str, str, str]]  # (when, how/destination, command)


def _steps(incident: Incident) -> list[_StepRow]:
    state = incident.runbook or RunbookState()
    rows = []
    for step in incident.steps:
        entry = state.steps.get(step.id)
        notes = [clean(line) for line in entry.notes.splitlines()] if entry else []
        runs = []
        for run in entry.runs if entry else []:
            how = run.how + (f" {run.destination}" if run.destination else "")
            if run.exit_status is not None:
                how += f", exit {run.exit_status}"
            runs.append((_text(run.at), _text(how), _text(run.command)))
        rows.append(
            _StepRow(
                _text(step.title),
                _text(step.phase),
                state.status_of(step),
                _text(step.reason),
                notes,
                _text(entry.updated_at) if entry and entry.updated_at else "",
                runs,
            )
        )
    return rows


# -- JSON ----------------------------------------------------------------------------------------


def _sanitize(value: Any) -> Any:
    if isinstance(value, str):
        return "\n".join(clean(line) for line in value.splitlines())
    if isinstance(value, Mapping):
        return {_sanitize(str(k)): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # json.loads took NaN/Infinity; strict JSON has no such thing
    return value


def render_json(incident: Incident) -> str:
    state = incident.runbook
    steps = []
    for step in incident.steps:
        entry = state.steps.get(step.id) if state else None
        steps.append(
            {
                "id": step.id,
                "phase": step.phase,
                "title": step.title,
                "status": (state or RunbookState()).status_of(step),
                "applicable": step.applicable,
                "reason": step.reason,
                "notes": entry.notes if entry else "",
                "updated_at": entry.updated_at if entry else None,
                "runs": [r.to_dict() for r in entry.runs] if entry else [],
                "commands": [c.to_dict() for c in step.commands],
                "refused": list(step.refused),
            }
        )
    detected = incident.meta.get("detected_at")
    doc = {
        "incident": incident.path.name,
        **incident.meta,
        "detected_at_utc": _when(detected) if detected is not None else None,
        "crash": incident.crash,
        "screen": incident.screen,
        "oops": incident.oops,
        "logs": incident.logs,
        "hardware": incident.hardware,
        "runbook": {
            "settings": state.settings.to_dict() if state else None,
            "updated_at": state.updated_at if state else None,
            "steps": steps,
        },
    }
    return json.dumps(_sanitize(doc), indent=1, ensure_ascii=True, allow_nan=False) + "\n"


# -- Markdown ------------------------------------------------------------------------------------

# Backslash-escaped wherever console text meets Markdown: emphasis, code, links and images,
# inline HTML and entities, table cells, headings and strikethrough.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~&])")


def _md(value: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _text(value))


def _md_code(value: object, in_table: bool = False) -> str:
    text = _text(value)
    if not text:
        return ""
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    tick = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{tick}{pad}{text}{pad}{tick}"
    # GFM splits table cells at `|` even inside code spans, unless it is escaped.
    return span.replace("|", "\\|") if in_table else span


def _md_fence(lines: Iterable[str]) -> list[str]:
    body = [clean(line) for line in lines]
    run = max((len(m) for line in body for m in re.findall(r"`{3,}", line)), default=2)
    fence = "`" * max(3, run + 1)
    return [f"{fence}text", *body, fence]


_CODE_ROWS = {
    "Incident",
    "Console",
    "Kind",
    "Guilty function",
    "Module",
    "RIP",
    "Kernel",
    "Tainted",
}


def render_markdown(incident: Incident) -> str:
    c = incident.crash
    out = [f"# {_md(c.get('title') or 'Kernel crash')}", ""]
    out += ["| | |", "|---|---|"]
    for key, value in _summary_rows(incident):
        cell = _md_code(value, in_table=True) if key in _CODE_ROWS else _md(value)
        out.append(f"| {key} | {cell} |")
    taint = _taint(c)
    if taint:
        out += ["", "## Taint", ""]
        out += [f"- **{_md(letter)}**: {_md(meaning)}" for letter, meaning in taint]
    trace = _trace(c)
    if trace:
        out += ["", "## Call trace", "", *_md_fence(trace)]
    if incident.screen is not None:
        out += ["", "## Screen when the crash completed", "", *_md_fence(incident.screen)]
    if incident.oops is not None:
        out += ["", "## Crash block (oops.txt)", "", *_md_fence(incident.oops)]
    out += _md_logs(incident.logs)
    out += _md_hardware(incident.hardware)
    out += _md_runbook(incident)
    return "\n".join(out) + "\n"


def _md_logs(logs: Mapping[str, Any] | None) -> list[str]:
    if logs is None:
        return []
    hits = [h for h in _list(logs.get("hits")) if isinstance(h, Mapping)]
    out = ["", f"## Log hits ({len(hits)})", ""]
    files = _files(logs)
    if files:
        out += ["Searched: " + ", ".join(_md_code(f) for f in files), ""]
    for hit in hits[:MAX_HITS]:
        where = _text(hit.get("file")) + (f":{_text(hit.get('line'))}" if hit.get("line") else "")
        head = f"- {_md_code(where)}"
        if hit.get("time") is not None:
            head += f" {_md(_when(hit.get('time')))}"
        if hit.get("kind"):
            head += f" **{_md(hit.get('kind'))}**"
        crash = _hit_crash(hit.get("crash"))
        if crash:
            head += f" (crash: {_md(crash)})"
        out.append(head + f": {_md_code(hit.get('text'))}")
        context = [_text(line) for line in _list(hit.get("context"))]
        if context:
            out += ["", *("  " + line for line in _md_fence(context))]
    if len(hits) > MAX_HITS:
        out.append(f"- ... {len(hits) - MAX_HITS} more (see `crashcart report --format json`)")
    events = _timeline(logs)
    if events:
        out += ["", "## Timeline", "", "| Time | Source | Kind | Event |", "|---|---|---|---|"]
        for e in events[:MAX_TIMELINE]:
            out.append(f"| {_md(e.when)} | {_md(e.source)} | {_md(e.kind)} | {_md(e.text)} |")
        if len(events) > MAX_TIMELINE:
            out.append(f"| | | | ... {len(events) - MAX_TIMELINE} more |")
    return out


def _md_hardware(hardware: Mapping[str, Any] | None) -> list[str]:
    if hardware is None:
        return []
    host = hardware.get("host")
    out = ["", "## Hardware checks" + (f" on {_md(host)}" if host else ""), ""]
    checks = _checks(hardware)
    if not checks:
        return [*out, "No checks recorded."]
    out += ["| Check | Verdict | Evidence |", "|---|---|---|"]
    out += [f"| {_md(n)} | **{_md(v)}** | {_md(e)} |" for n, v, e in checks]
    return out


_MD_BOX = {"done": "[x]", "skipped": "[-]", "pending": "[ ]"}


def _md_runbook(incident: Incident) -> list[str]:
    out = ["", "## Runbook", ""]
    if incident.runbook is None:
        out += ["No steps recorded yet (no runbook.json); the plan for this crash:", ""]
    for row in _steps(incident):
        line = f"- {_MD_BOX.get(row.status, '[ ]')} **{_md(row.title)}** ({_md(row.phase)}): "
        line += _md(row.status)
        if row.updated_at:
            line += f" {_md(row.updated_at)}"
        if row.status == "skipped" or row.status == "pending":
            line += f" ({_md(row.reason)})"
        out.append(line)
        out += [f"  > {_md(n)}" for n in row.notes if n.strip()]
        for when, how, command in row.runs:
            out.append(f"  - {_md(when)} {_md(how)}: {_md_code(command)}")
    return out


# -- HTML ----------------------------------------------------------------------------------------


def _h(value: object) -> str:
    return html.escape(_text(value), quote=True)


def _pre(lines: Iterable[str]) -> str:
    return "<pre>" + "\n".join(html.escape(clean(line), quote=True) for line in lines) + "</pre>"


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:72em;margin:1em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left;vertical-align:top}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
    ".fail{color:#b00;font-weight:bold}.done{color:#070}.skipped{color:#777}"
)


def render_html(incident: Incident) -> str:
    c = incident.crash
    title = _h(c.get("title") or "Kernel crash")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No scripts, no remote anything: the page only shows text.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        "<table>",
    ]
    out += [f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in _summary_rows(incident)]
    out.append("</table>")
    taint = _taint(c)
    if taint:
        out += ["<h2>Taint</h2>", "<ul>"]
        out += [f"<li><b>{_h(letter)}</b>: {_h(meaning)}</li>" for letter, meaning in taint]
        out.append("</ul>")
    trace = _trace(c)
    if trace:
        out += ["<h2>Call trace</h2>", _pre(trace)]
    if incident.screen is not None:
        out += ["<h2>Screen when the crash completed</h2>", _pre(incident.screen)]
    if incident.oops is not None:
        out += ["<h2>Crash block (oops.txt)</h2>", _pre(incident.oops)]
    out += _html_logs(incident.logs)
    out += _html_hardware(incident.hardware)
    out += _html_runbook(incident)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_logs(logs: Mapping[str, Any] | None) -> list[str]:
    if logs is None:
        return []
    hits = [h for h in _list(logs.get("hits")) if isinstance(h, Mapping)]
    out = [f"<h2>Log hits ({len(hits)})</h2>"]
    files = _files(logs)
    if files:
        out.append("<p>Searched: " + ", ".join(f"<code>{_h(f)}</code>" for f in files) + "</p>")
    out.append("<ul>")
    for hit in hits[:MAX_HITS]:
        where = _text(hit.get("file")) + (f":{_text(hit.get('line'))}" if hit.get("line") else "")
        item = f"<li><code>{_h(where)}</code>"
        if hit.get("time") is not None:
            item += f" {_h(_when(hit.get('time')))}"
        if hit.get("kind"):
            item += f" <b>{_h(hit.get('kind'))}</b>"
        crash = _hit_crash(hit.get("crash"))
        if crash:
            item += f" (crash: {_h(crash)})"
        item += f": <code>{_h(hit.get('text'))}</code>"
        context = [_text(line) for line in _list(hit.get("context"))]
        if context:
            item += _pre(context)
        out.append(item + "</li>")
    if len(hits) > MAX_HITS:
        out.append(f"<li>... {len(hits) - MAX_HITS} more (see the JSON report)</li>")
    out.append("</ul>")
    events = _timeline(logs)
    if events:
        out += ["<h2>Timeline</h2>", "<table><tr><th>Time</th><th>Source</th><th>Kind</th>"]
        out[-1] += "<th>Event</th></tr>"
        for e in events[:MAX_TIMELINE]:
            out.append(
                f"<tr><td>{_h(e.when)}</td><td>{_h(e.source)}</td><td>{_h(e.kind)}</td>"
                f"<td>{_h(e.text)}</td></tr>"
            )
        if len(events) > MAX_TIMELINE:
            out.append(f"<tr><td colspan=4>... {len(events) - MAX_TIMELINE} more</td></tr>")
        out.append("</table>")
    return out


def _html_hardware(hardware: Mapping[str, Any] | None) -> list[str]:
    if hardware is None:
        return []
    host = hardware.get("host")
    out = ["<h2>Hardware checks" + (f" on {_h(host)}" if host else "") + "</h2>"]
    checks = _checks(hardware)
    if not checks:
        return [*out, "<p>No checks recorded.</p>"]
    out.append("<table><tr><th>Check</th><th>Verdict</th><th>Evidence</th></tr>")
    for name, verdict, evidence in checks:
        css = ' class="fail"' if verdict.lower() in ("fail", "failed", "failure") else ""
        out.append(
            f"<tr><td>{_h(name)}</td><td{css}>{_h(verdict)}</td><td>{_h(evidence)}</td></tr>"
        )
    out.append("</table>")
    return out


def _html_runbook(incident: Incident) -> list[str]:
    out = ["<h2>Runbook</h2>"]
    if incident.runbook is None:
        out.append("<p>No steps recorded yet (no runbook.json); the plan for this crash:</p>")
    out.append("<table><tr><th>Step</th><th>Status</th><th>Details</th></tr>")
    for row in _steps(incident):
        details = []
        if row.status in ("skipped", "pending"):
            details.append(_h(row.reason))
        details += [f"<i>{html.escape(n, quote=True)}</i>" for n in row.notes if n.strip()]
        details += [
            f"{_h(when)} {_h(how)}: <code>{_h(command)}</code>" for when, how, command in row.runs
        ]
        status = _h(row.status) + (f" {_h(row.updated_at)}" if row.updated_at else "")
        out.append(
            f"<tr><td><b>{_h(row.title)}</b><br>{_h(row.phase)}</td>"
            f'<td class="{_h(row.status)}">{status}</td><td>{"<br>".join(details)}</td></tr>'
        )
    out.append("</table>")
    return out
