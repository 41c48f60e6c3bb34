"""Pure parsers: a hardware tool's output (text or JSON) -> a verdict and the evidence lines.

Nothing here runs a command or reads a file: each function takes what a tool printed (`Output`)
or readings already gathered (psutil tuples, decoded SEL events) and says pass / warn / fail /
unavailable, quoting the lines that made it say so. That keeps every rule testable on captured
output, and the same rule applies whether the tool ran here or on the target over ssh.

The thresholds are written next to each parser with the reason for them; docs/hardware.md
lists them for operators.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from connectors.bmc import SelEvent

__all__ = [
    "MAX_EVIDENCE",
    "MEMTESTER_TESTS",
    "FanReading",
    "Finding",
    "Output",
    "TempReading",
    "Verdict",
    "edac_finding",
    "fan_finding",
    "hwmon_readings",
    "kernel_log_finding",
    "lsblk_disks",
    "mcelog_finding",
    "memtester_finding",
    "memtester_steps",
    "overstrike",
    "ras_summary_finding",
    "sel_finding",
    "smart_finding",
    "smart_scan_devices",
    "temperature_finding",
    "worst",
]

MAX_EVIDENCE = 20  # lines per check: enough to act on, short enough to read in a pane


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNAVAILABLE = "unavailable"

    @property
    def rank(self) -> int:
        # "unavailable" ranks between pass and warn: it is not a finding against the hardware,
        # but a run in which nothing could be checked is not a clean bill of health either.
        return _RANK[self]


_RANK = {Verdict.PASS: 0, Verdict.UNAVAILABLE: 1, Verdict.WARN: 2, Verdict.FAIL: 3}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: v.rank, default=Verdict.PASS)


@dataclass(frozen=True, slots=True)
class Output:
    """What a command printed. `returncode` is None when it never exited on its own."""

    stdout: str
    stderr: str = ""
    returncode: int | None = 0


@dataclass(frozen=True, slots=True)
class Finding:
    verdict: Verdict
    evidence: tuple[str, ...] = ()

    @classmethod
    def of(cls, verdict: Verdict, lines: Iterable[str]) -> Finding:
        return cls(verdict, _capped(lines))


def _capped(lines: Iterable[str]) -> tuple[str, ...]:
    kept = [line.rstrip() for line in lines if line.strip()]
    if len(kept) <= MAX_EVIDENCE:
        return tuple(kept)
    return (*kept[: MAX_EVIDENCE - 1], f"... and {len(kept) - MAX_EVIDENCE + 1} more lines")


def _unavailable(*lines: str) -> Finding:
    return Finding.of(Verdict.UNAVAILABLE, lines)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def overstrike(line: str) -> str:
    """The text a terminal would show for `line`: backspaces and carriage returns move back and
    the next characters overwrite. memtester draws its progress spinner this way."""
    if "\b" not in line and "\r" not in line:
        return line
    cells: list[str] = []
    pos = 0
    for ch in line:
        if ch == "\b":
            pos = max(0, pos - 1)
        elif ch == "\r":
            pos = 0
        else:
            if pos < len(cells):
                cells[pos] = ch
            else:
                cells.append(ch)
            pos += 1
    return "".join(cells)


# -- memtester -----------------------------------------------------------------------------------
# memtester 4.6 runs 18 tests per loop ("Stuck Address" then 17 pattern tests); MEMTESTER_TEST_MASK
# can skip some, so progress is clamped rather than trusted to reach exactly this.
MEMTESTER_TESTS = 18
_MT_LABEL = re.compile(r"(?:^|\s{2})([A-Za-z0-9][A-Za-z0-9 -]*?)\s*: ")
_MT_OK = re.compile(r"^\s+([A-Za-z0-9][A-Za-z0-9 -]*?)\s*:\s*ok\s*$")
# memtester's exit status bits (memtester.h)
_MT_NONSTARTER, _MT_ADDRESS, _MT_OTHER = 0x01, 0x02, 0x04


def memtester_steps(line: str) -> int:
    """How many memtester tests a finished stdout line reports (each prints `  Name : ...`)."""
    text = overstrike(line)
    if not text.startswith("  "):
        return 0
    # A test that failed prints no newline, so the next test's label lands on the same line.
    return len(_MT_LABEL.findall(text))


def memtester_finding(out: Output, size: str, passes: int) -> Finding:
    lines = [overstrike(line) for line in out.stdout.splitlines()]
    failures = [line.strip() for line in out.stderr.splitlines() if "FAILURE" in line]
    passed = [m.group(1) for line in lines if (m := _MT_OK.match(line))]
    ran = sum(memtester_steps(line) for line in lines)
    total = MEMTESTER_TESTS * passes
    summary = f"memtester {size} x{passes}: {len(passed)} of {total} tests ok"
    unlocked = [line for line in lines if "Continuing with unlocked memory" in line]
    rc = out.returncode
    killed = rc is None or rc < 0  # stopped by us or by a signal: the status bits mean nothing
    bits = 0 if killed else rc
    if failures or bits & (_MT_ADDRESS | _MT_OTHER):
        failed = [_failed_tests(line) for line in lines if line.startswith("  ")]
        bad = [name for names in failed for name in names]
        head = f"memtester found memory errors in: {', '.join(bad)}" if bad else summary
        return Finding.of(Verdict.FAIL, [head, *failures])
    if bits & _MT_NONSTARTER or (bits and ran == 0):
        reason = _first_line(out.stderr) or _first_line(out.stdout) or f"exit status {rc}"
        return _unavailable(f"memtester could not start: {reason}")
    if killed or not passed:
        done = len(passed)  # a test cut off mid-way printed its label but no "ok"
        return _unavailable(f"memtester stopped after {done} of {total} tests, no errors so far")
    return Finding.of(Verdict.PASS, [summary, *unlocked])


def _failed_tests(line: str) -> list[str]:
    """The labels on a stdout line that were not followed by "ok"."""
    labels = list(_MT_LABEL.finditer(line))
    bad = []
    for i, match in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(line)
        if line[match.end() : end].strip() != "ok":
            bad.append(match.group(1))
    return bad


# -- machine checks: rasdaemon and mcelog ---------------------------------------------------------
_RAS_FAIL = re.compile(r"uncorrect|fatal|recoverable|\bfailed\b|\bUC\b", re.IGNORECASE)


def ras_summary_finding(out: Output) -> Finding:
    """`ras-mc-ctl --summary`: "No Memory errors." per kind, or a "... summary:" block with one
    tab-indented line per error group. Uncorrected, fatal or (extlog) recoverable errors fail;
    corrected ones warn: a DIMM that keeps correcting errors is one that is going."""
    text = out.stdout
    if "DBI connect" in out.stderr or "unable to open database" in out.stderr:
        return _unavailable(
            "ras-mc-ctl: rasdaemon has no error database: it is not recording "
            "(start it: systemctl enable --now rasdaemon)"
        )
    events = [line.strip() for line in text.splitlines() if line.startswith(("\t", "  "))]
    headers = [line.strip() for line in text.splitlines() if line.rstrip().endswith("summary:")]
    if not events and not any(line.startswith("No ") for line in text.splitlines()):
        reason = _first_line(out.stderr) or _first_line(text) or f"exit status {out.returncode}"
        return _unavailable(f"ras-mc-ctl --summary: {reason}")
    if not events:
        return Finding.of(Verdict.PASS, ["rasdaemon recorded no hardware errors"])
    verdict = Verdict.FAIL if any(_RAS_FAIL.search(e) for e in events) else Verdict.WARN
    return Finding.of(verdict, [*headers, *events, "details: ras-mc-ctl --errors"])


def mcelog_finding(out: Output) -> Finding:
    """`mcelog --client`: the machine check events the running mcelog daemon decoded. Nothing
    printed means none; a record whose status says UC (uncorrected) or PCC fails, others warn."""
    if out.returncode != 0:
        reason = _first_line(out.stderr) or f"exit status {out.returncode}"
        return _unavailable(f"mcelog --client: {reason} (is the mcelog daemon running?)")
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if not lines:
        return Finding.of(Verdict.PASS, ["mcelog logged no machine check events"])
    keep = [
        line
        for line in lines
        if re.match(
            r"(Hardware event|MCE \d|MCA:|CPU \d|BANK|STATUS|MCGSTATUS|ADDR|TIME|"
            r"Transaction|Memory|Corrected|Uncorrected|Socket|.*error)",
            line,
        )
    ] or lines
    uncorrected = any(re.search(r"\bUC\b|\bPCC\b|Uncorrected", line) for line in lines)
    events = sum(1 for line in lines if line.startswith("Hardware event"))
    head = f"mcelog: {events or 'some'} machine check event(s)"
    return Finding.of(Verdict.FAIL if uncorrected else Verdict.WARN, [head, *keep])


# -- EDAC counters (sysfs, read with `grep -H . FILES`) -------------------------------------------
_EDAC_LINE = re.compile(
    r"^(?P<path>.*?/mc(?P<mc>\d+)/(?:(?P<dimm>dimm\d+)/)?"
    r"(?P<file>ce_count|ue_count|mc_name|dimm_ce_count|dimm_ue_count|dimm_label)):(?P<value>.*)$"
)


def edac_finding(out: Output, where: str) -> Finding:
    """EDAC's per memory controller counters since boot: ue_count > 0 fails (the kernel saw an
    uncorrectable memory error), ce_count > 0 warns (correctable errors predict failing DIMMs).
    `where` is the sysfs folder read, for the reason when there is none."""
    mcs: dict[int, dict[str, str]] = {}
    dimms: dict[tuple[int, str], dict[str, str]] = {}
    for line in out.stdout.splitlines():
        m = _EDAC_LINE.match(line)
        if not m:
            continue
        mc = int(m["mc"])
        if m["dimm"]:
            dimms.setdefault((mc, m["dimm"]), {})[m["file"]] = m["value"].strip()
        else:
            mcs.setdefault(mc, {})[m["file"]] = m["value"].strip()
    mcs = {mc: values for mc, values in mcs.items() if "ce_count" in values}
    if not mcs:
        return _unavailable(
            f"no EDAC memory controller in {where} (no EDAC driver for this memory "
            "controller is loaded; usual in a VM)"
        )
    evidence = []
    verdict = Verdict.PASS
    for mc, values in sorted(mcs.items()):
        ce, ue = _count(values.get("ce_count")), _count(values.get("ue_count"))
        name = f" ({values['mc_name']})" if values.get("mc_name") else ""
        evidence.append(f"mc{mc}{name}: {ce} corrected, {ue} uncorrected errors since boot")
        if ue:
            verdict = Verdict.FAIL
        elif ce and verdict is Verdict.PASS:
            verdict = Verdict.WARN
    for (mc, dimm), values in sorted(dimms.items()):
        ce, ue = _count(values.get("dimm_ce_count")), _count(values.get("dimm_ue_count"))
        if ce or ue:
            label = values.get("dimm_label") or dimm
            evidence.append(f"mc{mc} {dimm} [{label}]: {ce} corrected, {ue} uncorrected")
    return Finding.of(verdict, evidence)


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


# -- SMART (smartctl -j) -------------------------------------------------------------------------
_DEVICE = re.compile(r"/dev/[A-Za-z0-9][A-Za-z0-9/_.:+-]*")
_DEVICE_TYPE = re.compile(r"[a-z][a-z0-9_+-]*(?:,[A-Za-z0-9_+-]+)*")
# Block devices without SMART: memory, compressed swap, loops, optical, device-mapper, md RAID.
_NO_SMART = re.compile(r"(ram|zram|loop|sr|fd|dm-|md|nbd|rbd)\d")


def smart_scan_devices(out: Output) -> list[tuple[str, str | None]]:
    """(device, type) from `smartctl --scan -j`. Names come from the target, so anything that is
    not a plain /dev path or device type is dropped, never passed on to a command."""
    doc = _json(out.stdout)
    found = []
    for dev in doc.get("devices", []) if isinstance(doc, dict) else []:
        name, kind = dev.get("name"), dev.get("type")
        if isinstance(name, str) and _DEVICE.fullmatch(name) and ".." not in name:
            ok_kind = isinstance(kind, str) and _DEVICE_TYPE.fullmatch(kind)
            found.append((name, kind if ok_kind else None))
    return found


def lsblk_disks(out: Output) -> list[str]:
    """Whole disks from `lsblk -J -d -o NAME,TYPE`, for when smartctl's scan finds none."""
    doc = _json(out.stdout)
    disks = []
    for dev in doc.get("blockdevices", []) if isinstance(doc, dict) else []:
        name = dev.get("name")
        if dev.get("type") != "disk" or not isinstance(name, str):
            continue
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*", name) and not _NO_SMART.match(name):
            disks.append(f"/dev/{name}")
    return disks


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# smartctl's exit status bits (smartctl(8), "RETURN VALUES")
_SC_CMDLINE, _SC_OPEN, _SC_FAILING, _SC_PREFAIL = 0x01, 0x02, 0x08, 0x10
_SC_ERRLOG, _SC_SELFTEST = 0x40, 0x80
# ATA attributes that count damaged sectors. Reallocated ones were repaired from spare area
# (warn: the disk is using up its spares); pending and offline-uncorrectable ones could not be
# read at all, i.e. data was lost, so they fail.
_ATA_REALLOCATED, _ATA_PENDING, _ATA_UNCORRECTABLE = 5, 197, 198
_NVME_WARNINGS = (
    (0x01, "available spare below threshold"),
    (0x02, "temperature outside its limits"),
    (0x04, "NVM subsystem reliability degraded (media or internal errors)"),
    (0x08, "media placed in read-only mode"),
    (0x10, "volatile memory backup failed"),
    (0x20, "persistent memory region unreliable"),
)


def smart_finding(out: Output, device: str) -> Finding:
    doc = _json(out.stdout)
    rc = out.returncode or 0
    if not isinstance(doc, dict):
        reason = _first_line(out.stderr) or _first_line(out.stdout) or f"exit status {rc}"
        return _unavailable(f"{device}: smartctl printed no JSON: {reason}")
    messages = [
        str(m.get("string", ""))
        for m in doc.get("smartctl", {}).get("messages", [])
        if isinstance(m, dict)
    ]
    if rc & (_SC_CMDLINE | _SC_OPEN) or "smart_status" not in doc:
        return _unavailable(*_smart_unavailable(device, messages, rc))
    evidence = [_smart_identity(doc, device)]
    verdict = Verdict.PASS
    passed = doc["smart_status"].get("passed")
    evidence.append(f"SMART overall-health: {'PASSED' if passed else 'FAILED'}")
    if passed is False or rc & _SC_FAILING:
        verdict = Verdict.FAIL
    for severity, line in [*_ata_findings(doc), *_nvme_findings(doc), *_scsi_findings(doc)]:
        evidence.append(line)
        verdict = worst((verdict, severity))
    if rc & _SC_PREFAIL:
        evidence.append("a pre-failure attribute is at or below its threshold now")
        verdict = Verdict.FAIL
    if rc & _SC_ERRLOG:
        evidence.append("the drive's error log has entries (see smartctl -x)")
        verdict = worst((verdict, Verdict.WARN))
    if rc & _SC_SELFTEST:
        evidence.append("the self-test log records a failed test (see smartctl -l selftest)")
        verdict = worst((verdict, Verdict.WARN))
    temp = doc.get("temperature", {}).get("current")
    if isinstance(temp, int | float):
        evidence.append(f"temperature {temp} °C")
    return Finding.of(verdict, evidence)


def _smart_unavailable(device: str, messages: Sequence[str], rc: int) -> list[str]:
    text = "; ".join(m for m in messages if m) or f"smartctl exit status {rc}"
    lines = [text if text.startswith(device) else f"{device}: {text}"]
    if "Permission denied" in text or "Operation not permitted" in text:
        lines.append("smartctl needs root: run crashcart as root or ssh in as root")
    elif re.search(r"/dev/(x?vd[a-z]+)\b", device):
        lines.append("a virtual (virtio/Xen) disk has no SMART data: check the host's disks")
    elif "Unable to detect device type" in text:
        lines.append(
            "smartctl cannot talk to this device (virtual disk, or RAID controller: "
            "try smartctl --scan-open)"
        )
    return lines


def _smart_identity(doc: Mapping[str, Any], device: str) -> str:
    model = doc.get("model_name") or doc.get("scsi_model_name") or "unknown model"
    serial = doc.get("serial_number")
    protocol = doc.get("device", {}).get("protocol")
    details = ", ".join(x for x in (f"serial {serial}" if serial else "", protocol or "") if x)
    return f"{device}: {model}" + (f" ({details})" if details else "")


def _ata_findings(doc: Mapping[str, Any]) -> list[tuple[Verdict, str]]:
    found = []
    table = doc.get("ata_smart_attributes", {}).get("table", [])
    for attr in table if isinstance(table, list) else []:
        ident = attr.get("id")
        raw = attr.get("raw", {}).get("value", 0)
        name = attr.get("name", f"attribute {ident}")
        raw = raw if isinstance(raw, int) else 0
        when_failed = attr.get("when_failed") or ""
        if when_failed:
            found.append((Verdict.FAIL, f"{ident} {name}: failed {when_failed} (raw {raw})"))
        elif ident == _ATA_REALLOCATED and raw > 0:
            found.append((Verdict.WARN, f"{ident} {name}: {raw} sectors reallocated"))
        elif ident in (_ATA_PENDING, _ATA_UNCORRECTABLE) and raw > 0:
            found.append((Verdict.FAIL, f"{ident} {name}: {raw} unreadable sectors"))
        elif ident in (_ATA_REALLOCATED, _ATA_PENDING, _ATA_UNCORRECTABLE):
            found.append((Verdict.PASS, f"{ident} {name}: {raw}"))
    return found


def _nvme_findings(doc: Mapping[str, Any]) -> list[tuple[Verdict, str]]:
    log = doc.get("nvme_smart_health_information_log")
    if not isinstance(log, dict):
        return []
    found = []
    warning = log.get("critical_warning", 0) or 0
    if warning:
        flags = [text for bit, text in _NVME_WARNINGS if warning & bit] or ["unknown bit"]
        found.append((Verdict.FAIL, f"critical warning 0x{warning:02x}: {', '.join(flags)}"))
    else:
        found.append((Verdict.PASS, "critical warning: none"))
    # media_errors counts unrecovered data integrity errors over the drive's life: data was
    # lost at some point, but an old count on a drive that works now is a warning, not a verdict.
    media = log.get("media_errors", 0) or 0
    found.append((Verdict.WARN if media else Verdict.PASS, f"media errors: {media}"))
    used = log.get("percentage_used")
    if isinstance(used, int):
        found.append((Verdict.WARN if used >= 100 else Verdict.PASS, f"endurance used: {used} %"))
    spare, threshold = log.get("available_spare"), log.get("available_spare_threshold")
    if isinstance(spare, int) and isinstance(threshold, int):
        found.append((Verdict.PASS, f"available spare: {spare} % (threshold {threshold} %)"))
    return found


def _scsi_findings(doc: Mapping[str, Any]) -> list[tuple[Verdict, str]]:
    grown = doc.get("scsi_grown_defect_list")
    if not isinstance(grown, int):
        return []
    return [(Verdict.WARN if grown else Verdict.PASS, f"grown defect list: {grown} entries")]


# -- kernel log ----------------------------------------------------------------------------------
class _Rule(NamedTuple):
    verdict: Verdict
    pattern: re.Pattern[str]


# Order matters: the first rule that matches a line decides its verdict.
_KERNEL_RULES = (
    # Machine Check Exceptions: a logged MCE panic or an uncorrected one is fatal; "Machine check
    # events logged" is the kernel noting corrected events for mcelog/rasdaemon.
    _Rule(
        Verdict.FAIL,
        re.compile(r"Machine Check Exception|mce: .*Uncorrected|Fatal machine check"),
    ),
    _Rule(Verdict.WARN, re.compile(r"Machine check events logged|mce: .*Corrected error")),
    # APEI/GHES firmware-first reports: the severity line says which.
    _Rule(
        Verdict.FAIL,
        re.compile(
            r"\[Hardware Error\].*(?:severity: (?:fatal|recoverable)|"
            r"Uncorrected|uncorrectable)",
            re.IGNORECASE,
        ),
    ),
    _Rule(Verdict.WARN, re.compile(r"\[Hardware Error\]")),
    # EDAC: "EDAC MC0: 1 UE ..." / "1 CE ..." (older kernels: "EDAC MC0: UE row ...").
    _Rule(Verdict.FAIL, re.compile(r"\bEDAC\b.*\b(?:UE|Uncorrected)\b")),
    _Rule(Verdict.WARN, re.compile(r"\bEDAC\b.*\b(?:CE|Corrected)\b")),
    # PCIe Advanced Error Reporting.
    _Rule(Verdict.FAIL, re.compile(r"AER: .*Uncorrect(?:ed|able)")),
    _Rule(Verdict.WARN, re.compile(r"AER: .*Corrected")),
    # Disks: a medium error lost data; libata command failures are retried (warn).
    _Rule(Verdict.FAIL, re.compile(r"critical medium error|\berror: \{ .*\bUNC\b")),
    _Rule(Verdict.WARN, re.compile(r"\bata\d+(?:\.\d+)?: (?:failed command|exception Emask)")),
    # Block I/O errors, except devices that routinely produce them empty (floppy, optical, loop).
    _Rule(Verdict.FAIL, re.compile(r"I/O error,? (?:on )?dev (?!(?:fd|sr|loop)\d)")),
    _Rule(Verdict.FAIL, re.compile(r"Buffer I/O error on dev(?:ice)? (?!(?:fd|sr|loop)\d)")),
    # NVMe: a timed-out command is aborted and retried (warn); a dead controller is not.
    _Rule(
        Verdict.FAIL,
        re.compile(
            r"\bnvme\S*:? .*(?:controller is down|Removing after probe "
            r"failure|Device not ready; aborting)"
        ),
    ),
    _Rule(Verdict.WARN, re.compile(r"\bnvme\S*:? .*timeout")),
    _Rule(Verdict.WARN, re.compile(r"temperature above threshold|cpu clock throttled")),
)


def kernel_log_finding(out: Output, source: str) -> Finding:
    """Hardware error lines in the kernel log (`dmesg` or `journalctl -k -o cat`)."""
    lines = out.stdout.splitlines()
    if out.returncode != 0 or not any(line.strip() for line in lines):
        reason = _first_line(out.stderr) or (
            "the kernel log is empty" if out.returncode == 0 else f"exit status {out.returncode}"
        )
        return _unavailable(f"{source}: {reason}")
    hits: list[tuple[Verdict, str]] = []
    for line in lines:
        for rule in _KERNEL_RULES:
            if rule.pattern.search(line):
                hits.append((rule.verdict, line.strip()))
                break
    if not hits:
        return Finding.of(Verdict.PASS, [f"{source}: no hardware errors in {len(lines)} lines"])
    verdict = worst(v for v, _ in hits)
    # Failing lines first, as the cap must not cut the ones that decided; newest first within
    # each, as the lines nearest the crash matter most and a long-lived log holds old ones.
    newest_first = hits[::-1]
    ordered = [line for v, line in newest_first if v is Verdict.FAIL]
    ordered += [line for v, line in newest_first if v is not Verdict.FAIL]
    return Finding.of(verdict, [f"{source}: {len(hits)} hardware error lines", *ordered])


# -- temperatures and fans -----------------------------------------------------------------------
class TempReading(NamedTuple):
    """One temperature, in the shape of psutil's `shwtemp` (so either can be judged)."""

    label: str
    current: float | None
    high: float | None = None
    critical: float | None = None


class FanReading(NamedTuple):
    """One fan, in the shape of psutil's `sfan`."""

    label: str
    current: float | None


class _Temp(Protocol):
    label: str
    current: float | None
    high: float | None
    critical: float | None


class _Fan(Protocol):
    label: str
    current: float | None


def temperature_finding(sensors: Mapping[str, Sequence[_Temp]]) -> Finding:
    """At or above the sensor's critical limit fails, at or above its high limit warns."""
    readings = [(chip, t) for chip, ts in sensors.items() for t in ts if t.current is not None]
    if not readings:
        return _unavailable(
            "no temperature sensors (nothing under /sys/class/hwmon; usual in a VM: "
            "ask the BMC with --bmc)"
        )
    hot: list[tuple[Verdict, str]] = []
    for chip, t in readings:
        current = float(t.current or 0.0)  # readings without a value were left out above
        high, critical = _limit(t.high), _limit(t.critical)
        limits = ", ".join(
            f"{name} {value:g} °C"
            for name, value in (("high", high), ("critical", critical))
            if value is not None
        )
        line = f"{chip} {t.label or 'temp'}: {current:g} °C" + (f" ({limits})" if limits else "")
        if critical is not None and current >= critical:
            hot.append((Verdict.FAIL, line + " CRITICAL"))
        elif high is not None and current >= high:
            hot.append((Verdict.WARN, line + " HIGH"))
        else:
            hot.append((Verdict.PASS, line))
    hot.sort(key=lambda item: -item[0].rank)
    return Finding.of(worst(v for v, _ in hot), [line for _, line in hot])


def _limit(value: float | None) -> float | None:
    # Drivers report "no limit" as 0 or as absurd values (an unset NVMe limit reads ~65262 °C).
    return value if value is not None and 0 < value < 200 else None


def fan_finding(fans: Mapping[str, Sequence[_Fan]]) -> Finding:
    """A fan reading 0 RPM warns: stopped, or a header with nothing plugged in (the evidence
    says which sensor, the operator knows which is which)."""
    readings = [(chip, f) for chip, entries in fans.items() for f in entries]
    if not readings:
        return _unavailable(
            "no fan sensors (none under /sys/class/hwmon; servers often leave fans to the BMC: "
            "use --bmc)"
        )
    lines: list[tuple[Verdict, str]] = []
    for chip, fan in readings:
        rpm = fan.current
        if not rpm:
            lines.append((Verdict.WARN, f"{chip} {fan.label or 'fan'}: 0 RPM (stopped, or none)"))
        else:
            lines.append((Verdict.PASS, f"{chip} {fan.label or 'fan'}: {rpm:g} RPM"))
    lines.sort(key=lambda item: -item[0].rank)
    return Finding.of(worst(v for v, _ in lines), [line for _, line in lines])


_HWMON_LINE = re.compile(
    r"^.*/hwmon(?P<n>\d+)/(?P<file>name|(?P<kind>temp|fan)(?P<i>\d+)_(?P<attr>[a-z]+)):(?P<v>.*)$"
)


def hwmon_readings(out: Output) -> tuple[dict[str, list[TempReading]], dict[str, list[FanReading]]]:
    """Temperatures and fans from `grep -H . /sys/class/hwmon/hwmon*/{name,temp*_*,fan*_*}`,
    the way psutil reads them: millidegrees Celsius, RPM, chip names from `name`."""
    names: dict[str, str] = {}
    values: dict[tuple[str, str, str], dict[str, str]] = {}
    for line in out.stdout.splitlines():
        m = _HWMON_LINE.match(line)
        if not m:
            continue
        if m["file"] == "name":
            names[m["n"]] = m["v"].strip()
        else:
            values.setdefault((m["n"], m["kind"], m["i"]), {})[m["attr"]] = m["v"].strip()
    temps: dict[str, list[TempReading]] = {}
    fans: dict[str, list[FanReading]] = {}
    for (n, kind, i), attrs in sorted(values.items(), key=lambda kv: _hwmon_order(kv[0])):
        chip = names.get(n, f"hwmon{n}")
        if "input" not in attrs:
            continue
        # Unlabelled sensors go by their file name (psutil leaves the label empty).
        label = attrs.get("label", f"{kind}{i}")
        if kind == "temp":
            temps.setdefault(chip, []).append(
                TempReading(
                    label,
                    _milli(attrs.get("input")),
                    _milli(attrs.get("max")),
                    _milli(attrs.get("crit")),
                )
            )
        else:
            fan = FanReading(label, _num(attrs["input"]))
            fans.setdefault(chip, []).append(fan)
    return temps, fans


def _hwmon_order(key: tuple[str, str, str]) -> tuple[int, str, int]:
    return int(key[0]), key[1], int(key[2])


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _milli(text: str | None) -> float | None:
    value = _num(text)
    return None if value is None else value / 1000.0


# -- IPMI System Event Log -----------------------------------------------------------------------
def sel_finding(events: Sequence[SelEvent], where: str) -> Finding:
    """A critical asserted event in the SEL (uncorrectable ECC, IERR, thermal trip, power unit
    failure, OS critical stop, ...) fails; a warning one (correctable ECC, predictive failure)
    warns. The SEL is history: old events stay until someone clears it."""
    from connectors.bmc import CRIT, WARN  # here: `hwcheck --help` need not load connectors

    critical = [e for e in events if e.asserted and e.severity == CRIT]
    warning = [e for e in events if e.asserted and e.severity == WARN]
    head = f"{where}: {len(events)} SEL entries, {len(critical)} critical, {len(warning)} warning"
    if not critical and not warning:
        return Finding.of(Verdict.PASS, [head])
    verdict = Verdict.FAIL if critical else Verdict.WARN
    # Newest first within each severity: the latest events are the likeliest cause.
    shown = [str(e) for e in reversed(critical)] + [str(e) for e in reversed(warning)]
    return Finding.of(verdict, [head, *shown])
