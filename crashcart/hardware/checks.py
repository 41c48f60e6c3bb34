"""The hardware checks as data: a name, the command (or in-process probe), its parser, and the
packages that install the tool.

A `Check` says what to run, never how: the runner (`runner.py`) runs its argv here or on the
target over ssh and hands the output to `parse`. Some checks have a `fallback` (tried when the
tool is missing or cannot give a verdict, e.g. `ras-mc-ctl` then `mcelog --client`), some
`expand` into more checks once their output is known (`smartctl --scan` -> one check per disk),
and two run in-process: psutil on this machine and python-ipmi towards the BMC.

Everything that ends up in an argv is either a constant here or validated (memtester's size,
device names from the scan), so nothing typed on a console or printed by the target reaches a
shell unchecked.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from crashcart.hardware.parsers import (
    MEMTESTER_TESTS,
    Finding,
    Output,
    Verdict,
    edac_finding,
    fan_finding,
    hwmon_readings,
    kernel_log_finding,
    lsblk_disks,
    mcelog_finding,
    memtester_finding,
    memtester_steps,
    ras_summary_finding,
    sel_finding,
    smart_finding,
    smart_scan_devices,
    temperature_finding,
)
from crashcart.recording import InputError

if TYPE_CHECKING:
    from connectors.bmc import Bmc

__all__ = [
    "CHECK_NAMES",
    "Check",
    "InstallHint",
    "default_checks",
    "edac_check",
    "fan_check",
    "kernel_log_check",
    "machine_check",
    "memtester_check",
    "parse_memtester_spec",
    "sel_check",
    "smart_check",
    "smart_disk_check",
    "temperature_check",
]


@dataclass(frozen=True, slots=True)
class InstallHint:
    """The package that installs a tool, by package manager."""

    apt: str
    dnf: str

    def __str__(self) -> str:
        return f"apt install {self.apt} / dnf install {self.dnf}"

    def to_dict(self) -> dict[str, str]:
        return {"apt": self.apt, "dnf": self.dnf}


SMARTMONTOOLS = InstallHint("smartmontools", "smartmontools")
MEMTESTER = InstallHint("memtester", "memtester")
RASDAEMON = InstallHint("rasdaemon", "rasdaemon")
MCELOG = InstallHint("mcelog", "mcelog")  # gone from Debian 12 and later: rasdaemon replaces it
UTIL_LINUX = InstallHint("util-linux", "util-linux")
SYSTEMD = InstallHint("systemd", "systemd")
GREP = InstallHint("grep", "grep")


@dataclass(frozen=True, slots=True)
class Check:
    """One hardware check. Exactly one of: `argv` with `parse` (a command and the parser of its
    output), `argv` with `expand` (a discovery command whose output yields the checks to run
    instead, or a Finding when there is nothing to run), or `probe` (in-process)."""

    name: str
    argv: tuple[str, ...] = ()
    parse: Callable[[Output], Finding] | None = None
    hint: InstallHint | None = None
    fallback: Check | None = None
    expand: Callable[[Output], Sequence[Check] | Finding] | None = None
    probe: Callable[[], Finding] | None = None
    probe_text: str = ""
    # Used instead of `probe` when the checks run on another machine (psutil is local only).
    remote: Check | None = None
    # Progress: `progress_step(line)` stdout lines complete that many of `progress_total` steps.
    progress_total: int = 0
    progress_step: Callable[[str], int] | None = None
    timeout: float | None = 120.0

    def __post_init__(self) -> None:
        kinds = (self.parse is not None) + (self.expand is not None) + (self.probe is not None)
        if kinds != 1 or bool(self.argv) == (self.probe is not None):
            raise ValueError(f"check {self.name!r}: needs argv with parse or expand, or a probe")

    @property
    def command(self) -> str:
        """The command as a person would type it (or what the probe does)."""
        return shlex.join(self.argv) if self.argv else self.probe_text


# -- the checks ----------------------------------------------------------------------------------
def machine_check() -> Check:
    """Machine check and memory controller errors recorded by rasdaemon, else by mcelog."""
    return Check(
        "machine-check",
        ("ras-mc-ctl", "--summary"),
        parse=ras_summary_finding,
        hint=RASDAEMON,
        timeout=60.0,
        fallback=Check(
            "machine-check", ("mcelog", "--client"), parse=mcelog_finding, hint=MCELOG, timeout=60
        ),
    )


_EDAC_FILES = (
    "mc*/mc_name",
    "mc*/ce_count",
    "mc*/ue_count",
    "mc*/dimm*/dimm_label",
    "mc*/dimm*/dimm_ce_count",
    "mc*/dimm*/dimm_ue_count",
)


def edac_check(root: str = "") -> Check:
    """EDAC error counters. `root` prefixes the sysfs path (a fake tree in tests).

    Read with `grep -H .` through `sh -c` so the mc*/dimm* globs expand on the target itself;
    the script is constant apart from the quoted root."""
    base = f"{root}/sys/devices/system/edac/mc"
    script = "grep -s -H . " + " ".join(f"{shlex.quote(base)}/{f}" for f in _EDAC_FILES)
    return Check("edac", ("sh", "-c", script), parse=partial(edac_finding, where=base), hint=GREP)


def kernel_log_check() -> Check:
    """Hardware errors in the kernel log: `dmesg`, else the journal (dmesg is root-only on
    distributions that set kernel.dmesg_restrict)."""
    return Check(
        "kernel-log",
        ("dmesg",),
        parse=partial(kernel_log_finding, source="dmesg"),
        hint=UTIL_LINUX,
        timeout=60.0,
        fallback=Check(
            "kernel-log",
            ("journalctl", "-k", "-b", "-q", "-o", "cat", "--no-pager"),
            parse=partial(kernel_log_finding, source="journalctl -k"),
            hint=SYSTEMD,
            timeout=60.0,
        ),
    )


def smart_check() -> Check:
    """Discover the disks (`smartctl --scan`, else lsblk), then one SMART check per disk."""
    return Check(
        "smart", ("smartctl", "--scan", "-j"), expand=_from_scan, hint=SMARTMONTOOLS, timeout=60
    )


def _from_scan(out: Output) -> Sequence[Check] | Finding:
    devices = smart_scan_devices(out)
    if devices:
        return [smart_disk_check(name, kind) for name, kind in devices]
    # The scan only knows the usual controllers; e.g. a virtio disk is left out. Ask lsblk so
    # the result says why such a disk has no SMART data rather than saying nothing.
    return [
        Check(
            "smart",
            ("lsblk", "-J", "-d", "-o", "NAME,TYPE"),
            expand=_from_lsblk,
            hint=UTIL_LINUX,
            timeout=30.0,
        )
    ]


def _from_lsblk(out: Output) -> Sequence[Check] | Finding:
    disks = lsblk_disks(out)
    if not disks:
        return Finding.of(Verdict.UNAVAILABLE, ["no disks found (smartctl --scan, lsblk)"])
    return [smart_disk_check(disk) for disk in disks]


def smart_disk_check(device: str, kind: str | None = None) -> Check:
    # `-d TYPE` only for a disk behind a RAID controller (megaraid,N, cciss,N, ...): for plain
    # disks --scan's type is a guess ("scsi" for a SATA disk) and autodetection does better.
    via = ("-d", kind) if kind and "," in kind else ()
    name = f"smart:{device}" + (f" ({kind})" if via else "")
    return Check(
        name,
        ("smartctl", "-j", "-a", *via, device),
        parse=partial(smart_finding, device=device),
        hint=SMARTMONTOOLS,
        timeout=120.0,
    )


_HWMON_FILES = ("name", "temp*_input", "temp*_max", "temp*_crit", "temp*_label")
_FAN_FILES = ("name", "fan*_input", "fan*_label")


def _hwmon_script(root: str, files: Sequence[str]) -> tuple[str, ...]:
    base = shlex.quote(f"{root}/sys/class/hwmon")
    return ("sh", "-c", "grep -s -H . " + " ".join(f"{base}/hwmon*/{f}" for f in files))


def _temps_from_hwmon(out: Output) -> Finding:
    return temperature_finding(hwmon_readings(out)[0])


def _fans_from_hwmon(out: Output) -> Finding:
    return fan_finding(hwmon_readings(out)[1])


def _psutil_temperatures() -> Finding:
    import psutil

    try:
        return temperature_finding(psutil.sensors_temperatures())
    except OSError as exc:
        return Finding.of(Verdict.UNAVAILABLE, [f"psutil: {exc}"])


def _psutil_fans() -> Finding:
    import psutil

    try:
        return fan_finding(psutil.sensors_fans())
    except OSError as exc:
        return Finding.of(Verdict.UNAVAILABLE, [f"psutil: {exc}"])


def temperature_check(root: str = "") -> Check:
    """Temperatures: psutil here; on a remote target (or under a test `root`) the same hwmon
    files psutil reads, fetched with grep."""
    command = Check(
        "temperatures", _hwmon_script(root, _HWMON_FILES), parse=_temps_from_hwmon, hint=GREP
    )
    if root:
        return command
    return Check(
        "temperatures",
        probe=_psutil_temperatures,
        probe_text="psutil.sensors_temperatures()",
        remote=command,
    )


def fan_check(root: str = "") -> Check:
    command = Check("fans", _hwmon_script(root, _FAN_FILES), parse=_fans_from_hwmon, hint=GREP)
    if root:
        return command
    return Check("fans", probe=_psutil_fans, probe_text="psutil.sensors_fans()", remote=command)


def sel_check(bmc: Bmc) -> Check:
    """The BMC's System Event Log over RMCP+, always from this machine (the BMC's network is
    reachable from the operator's side, not necessarily from the server's OS)."""
    return Check(
        "ipmi-sel",
        probe=partial(_read_sel, bmc),
        probe_text=f"python-ipmi: read the SEL of {bmc.where}",
    )


def _read_sel(bmc: Bmc) -> Finding:
    from connectors.bmc import BmcError

    try:
        events = bmc.read_sel()
    except BmcError as exc:
        return Finding.of(Verdict.UNAVAILABLE, [str(exc)])
    return sel_finding(events, bmc.where)


# -- memtester -----------------------------------------------------------------------------------
_MEMTESTER_SIZE = re.compile(r"[1-9][0-9]{0,9}[BKMG]?")
MAX_PASSES = 10_000
MAX_BYTES = 1 << 44  # 16 TiB: memtester's own parsing overflows on absurd sizes
_UNITS = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _bytes(size: str) -> int:
    unit = size[-1] if size[-1] in _UNITS else "M"  # memtester: a bare number is megabytes
    return int(size.rstrip("BKMG")) * _UNITS[unit]


def parse_memtester_spec(spec: str) -> tuple[str, int]:
    """`SIZE[,PASSES]` as memtester takes them: 64M, 1G, 512K, 4096B (a bare number is MB)."""
    size, _, passes = spec.strip().partition(",")
    size = size.strip().upper()
    if not _MEMTESTER_SIZE.fullmatch(size) or _bytes(size) > MAX_BYTES:
        raise InputError(
            f"--memtester {spec!r}: SIZE is a number with B, K, M or G (at most 16 TiB), e.g. 256M"
        )
    count = passes.strip() or "1"
    if not count.isdigit() or not 1 <= int(count) <= MAX_PASSES:
        raise InputError(f"--memtester {spec!r}: PASSES is a number from 1 to {MAX_PASSES}")
    return size, int(count)


def memtester_check(size: str, passes: int = 1) -> Check:
    """memtester on SIZE of memory, PASSES loops; progress is one step per finished test."""
    size, passes = parse_memtester_spec(f"{size},{passes}")  # the argv takes only valid values
    return Check(
        "memtester",
        ("memtester", size, str(passes)),
        parse=partial(memtester_finding, size=size, passes=passes),
        hint=MEMTESTER,
        progress_total=MEMTESTER_TESTS * passes,
        progress_step=memtester_steps,
        timeout=None,  # the operator chose the size: a large one takes hours
    )


# -- the default set -----------------------------------------------------------------------------
CHECK_NAMES = (
    "ipmi-sel",
    "machine-check",
    "edac",
    "kernel-log",
    "smart",
    "temperatures",
    "fans",
    "memtester",
)


def default_checks(
    *,
    root: str = "",
    memtester: tuple[str, int] | None = None,
    bmc: Bmc | None = None,
    only: Sequence[str] | None = None,
) -> list[Check]:
    """The checks `crashcart hwcheck` runs, quick ones first; memtester and the SEL only when
    asked for (a memory test takes the machine's memory and time; the SEL needs a BMC)."""
    checks = [
        machine_check(),
        edac_check(root),
        kernel_log_check(),
        smart_check(),
        temperature_check(root),
        fan_check(root),
    ]
    if bmc is not None:
        checks.insert(0, sel_check(bmc))
    if memtester is not None:
        checks.append(memtester_check(*memtester))
    if only:
        unknown = sorted(set(only) - set(CHECK_NAMES))
        if unknown:
            raise InputError(
                f"unknown check {', '.join(unknown)} (known: {', '.join(CHECK_NAMES)})"
            )
        checks = [check for check in checks if check.name in only]
    return checks
