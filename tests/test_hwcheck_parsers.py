"""The hardware parsers on captured output: verdicts and the evidence an operator would read.

The smartctl documents are real: smartctl 7.3 run inside a QEMU 7.2 guest (Debian's 6.1 kernel,
the lab kernel of shared/lab/qemu) on an AHCI disk and on an NVMe controller, the second time
with QEMU's `smart_critical_warning=5` (spare below threshold + reliability degraded). They are
trimmed to the keys crashcart reads; where a test needs a failing ATA disk, it edits the raw
values of the real document and says so. docs/hardware.md shows how to capture them again.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
from typing import Any

import psutil
import pytest

from connectors.bmc import decode_sel_record
from crashcart.hardware.checks import parse_memtester_spec
from crashcart.hardware.parsers import (
    MAX_EVIDENCE,
    FanReading,
    Output,
    TempReading,
    Verdict,
    edac_finding,
    fan_finding,
    hwmon_readings,
    kernel_log_finding,
    lsblk_disks,
    mcelog_finding,
    memtester_finding,
    memtester_steps,
    overstrike,
    ras_summary_finding,
    sel_finding,
    smart_finding,
    smart_scan_devices,
    temperature_finding,
    worst,
)
from crashcart.recording import InputError

# -- smartctl ------------------------------------------------------------------------------------
SCAN = {
    "json_format_version": [1, 0],
    "smartctl": {"version": [7, 3], "argv": ["smartctl", "--scan", "-j"], "exit_status": 0},
    "devices": [
        {"name": "/dev/sda", "info_name": "/dev/sda", "type": "scsi", "protocol": "SCSI"},
        {"name": "/dev/nvme0", "info_name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"},
    ],
}


def _attr(ident: int, name: str, value: int, thresh: int, raw: int, text: str = "") -> dict:
    return {
        "id": ident,
        "name": name,
        "value": value,
        "worst": value,
        "thresh": thresh,
        "when_failed": "",
        "raw": {"value": raw, "string": text or str(raw)},
    }


SATA = {
    "smartctl": {"version": [7, 3], "argv": ["smartctl", "-j", "-a", "/dev/sda"], "exit_status": 0},
    "device": {"name": "/dev/sda", "info_name": "/dev/sda [SAT]", "type": "sat", "protocol": "ATA"},
    "model_name": "CRASHCART-SATA",
    "serial_number": "CCSATA0001",
    "smart_status": {"passed": True},
    "ata_smart_attributes": {
        "revision": 1,
        "table": [
            _attr(1, "Raw_Read_Error_Rate", 100, 6, 0),
            _attr(3, "Spin_Up_Time", 100, 0, 16),
            _attr(4, "Start_Stop_Count", 100, 20, 100),
            _attr(5, "Reallocated_Sector_Ct", 100, 36, 0),
            _attr(9, "Power_On_Hours", 100, 0, 1),
            _attr(12, "Power_Cycle_Count", 100, 0, 0),
            _attr(190, "Airflow_Temperature_Cel", 69, 50, 522125343, "31 (Min/Max 31/31)"),
        ],
    },
    "temperature": {"current": 31},
    "ata_smart_error_log": {"summary": {"revision": 1, "count": 0}},
    "ata_smart_self_test_log": {"standard": {"revision": 1, "count": 0}},
}

_NVME_LOG = {
    "critical_warning": 0,
    "temperature": 50,
    "available_spare": 0,
    "available_spare_threshold": 0,
    "percentage_used": 0,
    "data_units_read": 1,
    "data_units_written": 0,
    "host_reads": 4,
    "host_writes": 0,
    "controller_busy_time": 0,
    "power_cycles": 0,
    "power_on_hours": 0,
    "unsafe_shutdowns": 0,
    "media_errors": 0,
    "num_err_log_entries": 0,
    "warning_temp_time": 0,
    "critical_comp_time": 0,
}
NVME = {
    "smartctl": {
        "version": [7, 3],
        "argv": ["smartctl", "-j", "-a", "/dev/nvme0"],
        "exit_status": 0,
    },
    "device": {"name": "/dev/nvme0", "info_name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"},
    "model_name": "QEMU NVMe Ctrl",
    "serial_number": "CCNVME0001",
    "smart_status": {"passed": True, "nvme": {"value": 0}},
    "nvme_smart_health_information_log": _NVME_LOG,
    "temperature": {"current": 50},
}
NVME_CRITICAL = {
    **NVME,
    "smartctl": {
        "version": [7, 3],
        "argv": ["smartctl", "-j", "-a", "/dev/nvme0"],
        "exit_status": 8,
    },
    "serial_number": "CCNVME0002",
    "smart_status": {
        "passed": False,
        "nvme": {
            "value": 5,
            "spare_below_threshold": True,
            "temperature_above_or_below_threshold": False,
            "reliability_degraded": True,
            "media_read_only": False,
            "volatile_memory_backup_failed": False,
            "persistent_memory_region_unreliable": False,
            "other": 0,
        },
    },
    "nvme_smart_health_information_log": {**_NVME_LOG, "critical_warning": 5},
}
# What smartctl 7.3 printed for this machine's virtio disk (exit status 1).
VIRTIO = {
    "json_format_version": [1, 0],
    "smartctl": {
        "version": [7, 3],
        "argv": ["smartctl", "-j", "-a", "/dev/vda"],
        "messages": [{"string": "/dev/vda: Unable to detect device type", "severity": "error"}],
        "exit_status": 1,
    },
}


def smart(doc: dict[str, Any], device: str = "/dev/sda") -> Any:
    rc = doc["smartctl"]["exit_status"]
    return smart_finding(Output(json.dumps(doc), "", rc), device)


def test_scan_lists_the_disks_and_refuses_odd_names() -> None:
    assert smart_scan_devices(Output(json.dumps(SCAN))) == [
        ("/dev/sda", "scsi"),
        ("/dev/nvme0", "nvme"),
    ]
    hostile = copy.deepcopy(SCAN)
    hostile["devices"] += [
        {"name": "/dev/sdb; reboot", "type": "sat"},
        {"name": "-oProxyCommand=x", "type": "sat"},
        {"name": "/dev/../etc/shadow", "type": "sat"},
        {"name": "/dev/bus/0", "type": "megaraid,4"},
        {"name": "/dev/sdc", "type": "sat;id"},
    ]
    assert smart_scan_devices(Output(json.dumps(hostile)))[2:] == [
        ("/dev/bus/0", "megaraid,4"),
        ("/dev/sdc", None),  # the device stays, the odd type is dropped
    ]
    assert smart_scan_devices(Output("not json")) == []


def test_lsblk_gives_whole_disks_that_could_have_smart() -> None:
    # this machine's lsblk -J -d -o NAME,TYPE
    doc = {
        "blockdevices": [
            {"name": "zram0", "type": "disk"},
            {"name": "vda", "type": "disk"},
            {"name": "sr0", "type": "rom"},
            {"name": "loop3", "type": "loop"},
            {"name": "sdb", "type": "disk"},
        ]
    }
    assert lsblk_disks(Output(json.dumps(doc))) == ["/dev/vda", "/dev/sdb"]


def test_healthy_sata_disk_passes_with_its_sector_counts() -> None:
    finding = smart(SATA)
    assert finding.verdict is Verdict.PASS
    assert finding.evidence == (
        "/dev/sda: CRASHCART-SATA (serial CCSATA0001, ATA)",
        "SMART overall-health: PASSED",
        "5 Reallocated_Sector_Ct: 0",
        "temperature 31 °C",
    )


def _sata_with(**raw: int) -> dict[str, Any]:
    """The real SATA document with raw values edited (QEMU cannot age a disk)."""
    doc = copy.deepcopy(SATA)
    table = doc["ata_smart_attributes"]["table"]
    names = {"reallocated": 5, "pending": 197, "offline": 198}
    for key, value in raw.items():
        ident = names[key]
        found = [a for a in table if a["id"] == ident]
        if found:
            found[0]["raw"] = {"value": value, "string": str(value)}
        else:
            name = {197: "Current_Pending_Sector", 198: "Offline_Uncorrectable"}[ident]
            table.append(_attr(ident, name, 100, 0, value))
    return doc


def test_reallocated_sectors_warn_and_unreadable_ones_fail() -> None:
    reallocated = smart(_sata_with(reallocated=24, pending=0))
    assert reallocated.verdict is Verdict.WARN
    assert "5 Reallocated_Sector_Ct: 24 sectors reallocated" in reallocated.evidence
    pending = smart(_sata_with(reallocated=24, pending=8))
    assert pending.verdict is Verdict.FAIL
    assert "197 Current_Pending_Sector: 8 unreadable sectors" in pending.evidence
    offline = smart(_sata_with(offline=1))
    assert offline.verdict is Verdict.FAIL
    assert "198 Offline_Uncorrectable: 1 unreadable sectors" in offline.evidence


def test_failing_overall_health_and_threshold_bits_fail() -> None:
    doc = copy.deepcopy(SATA)
    doc["smart_status"] = {"passed": False}
    doc["smartctl"]["exit_status"] = 8  # "SMART status check returned DISK FAILING"
    finding = smart(doc)
    assert finding.verdict is Verdict.FAIL
    assert "SMART overall-health: FAILED" in finding.evidence
    prefail = copy.deepcopy(SATA)
    prefail["ata_smart_attributes"]["table"][0]["when_failed"] = "FAILING_NOW"
    prefail["smartctl"]["exit_status"] = 16
    found = smart(prefail)
    assert found.verdict is Verdict.FAIL
    assert "1 Raw_Read_Error_Rate: failed FAILING_NOW (raw 0)" in found.evidence
    logged = copy.deepcopy(SATA)
    logged["smartctl"]["exit_status"] = 64  # error log has entries: worth a look, not a verdict
    assert smart(logged).verdict is Verdict.WARN


def test_nvme_healthy_and_with_a_critical_warning() -> None:
    healthy = smart(NVME, "/dev/nvme0")
    assert healthy.verdict is Verdict.PASS
    assert "critical warning: none" in healthy.evidence
    assert "media errors: 0" in healthy.evidence
    critical = smart(NVME_CRITICAL, "/dev/nvme0")
    assert critical.verdict is Verdict.FAIL
    assert critical.evidence[:3] == (
        "/dev/nvme0: QEMU NVMe Ctrl (serial CCNVME0002, NVMe)",
        "SMART overall-health: FAILED",
        "critical warning 0x05: available spare below threshold, NVM subsystem reliability "
        "degraded (media or internal errors)",
    )
    media = copy.deepcopy(NVME)
    media["nvme_smart_health_information_log"]["media_errors"] = 3
    assert smart(media, "/dev/nvme0").verdict is Verdict.WARN


def test_a_disk_smartctl_cannot_read_is_unavailable_with_the_reason() -> None:
    virtio = smart(VIRTIO, "/dev/vda")
    assert virtio.verdict is Verdict.UNAVAILABLE
    assert virtio.evidence == (
        "/dev/vda: Unable to detect device type",
        "a virtual (virtio/Xen) disk has no SMART data: check the host's disks",
    )
    denied = copy.deepcopy(VIRTIO)
    denied["smartctl"]["exit_status"] = 2
    denied["smartctl"]["messages"] = [
        {"string": "Smartctl open device: /dev/sda failed: Permission denied", "severity": "error"}
    ]
    assert smart(denied).evidence[-1].startswith("smartctl needs root")
    garbage = smart_finding(Output("", "smartctl: cannot execute", 126), "/dev/sda")
    assert garbage.verdict is Verdict.UNAVAILABLE
    assert garbage.evidence == ("/dev/sda: smartctl printed no JSON: smartctl: cannot execute",)


# -- memtester -----------------------------------------------------------------------------------
TESTS = (
    "Stuck Address",
    "Random Value",
    "Compare XOR",
    "Compare SUB",
    "Compare MUL",
    "Compare DIV",
    "Compare OR",
    "Compare AND",
    "Sequential Increment",
    "Solid Bits",
    "Block Sequential",
    "Checkerboard",
    "Bit Spread",
    "Bit Flip",
    "Walking Ones",
    "Walking Zeroes",
    "8-bit Writes",
    "16-bit Writes",
)
HEAD = (
    "memtester version 4.6.0 (64-bit)\nCopyright (C) 2001-2020 Charles Cazabon.\n"
    "Licensed under the GNU General Public License version 2 (only).\n\n"
    "pagesize is 4096\npagesizemask is 0xfffffffffffff000\nwant 4MB (4194304 bytes)\n"
    "got  4MB (4194304 bytes), trying mlock ...locked.\n"
)
# memtester's progress as it writes it (captured): blank, then "setting N"/"testing N" each
# backspaced over, then blanked again before "ok".
_BACK = "\b" * 11
SPIN = f"{' ' * 11}{_BACK}setting   0{_BACK}testing   0{_BACK}{' ' * 11}{_BACK}"


def memtester_stdout(failed: str | None = None, loops: int = 1) -> str:
    """memtester's stdout as its main() prints it: `  %-20s: `, the spinner, then "ok\\n"; a
    failing test prints no newline (memtester.c), so the next label follows on the same line."""
    out = HEAD
    for loop in range(1, loops + 1):
        out += f"Loop {loop}/{loops}:\n"
        for name in TESTS:
            out += f"  {name:<20}: {SPIN}"
            out += "" if name == failed else "ok\n"
        out += "\n"
    return out + "Done.\n"


def test_overstrike_shows_what_the_terminal_shows() -> None:
    assert overstrike("  Stuck Address       : " + SPIN + "ok") == (
        "  Stuck Address       : ok         "
    )
    assert overstrike("50%\r100%") == "100%"
    assert overstrike("plain") == "plain"


def test_memtester_clean_run_passes_and_counts_its_tests() -> None:
    text = memtester_stdout(loops=2)
    assert sum(memtester_steps(line) for line in text.splitlines()) == 36
    finding = memtester_finding(Output(text, "", 0), "4M", 2)
    assert finding.verdict is Verdict.PASS
    assert finding.evidence == ("memtester 4M x2: 36 of 36 tests ok",)


def test_memtester_failure_names_the_test_and_quotes_the_addresses() -> None:
    stderr = (
        "FAILURE: 0x4f3a2c1b00000000 != 0x4f3a2c1b00000400 at offset 0x0001a2f8.\n"
        "FAILURE: 0x4f3a2c1b00001000 != 0x4f3a2c1b00001400 at offset 0x0001a300.\n"
    )
    text = memtester_stdout(failed="Compare XOR")
    # the failed test and the next share a line, and both count as progress
    assert sum(memtester_steps(line) for line in text.splitlines()) == 18
    finding = memtester_finding(Output(text, stderr, 0x04), "4M", 1)
    assert finding.verdict is Verdict.FAIL
    assert finding.evidence == (
        "memtester found memory errors in: Compare XOR",
        "FAILURE: 0x4f3a2c1b00000000 != 0x4f3a2c1b00000400 at offset 0x0001a2f8.",
        "FAILURE: 0x4f3a2c1b00001000 != 0x4f3a2c1b00001400 at offset 0x0001a300.",
    )
    stuck = HEAD + "Loop 1/1:\n  Stuck Address       : " + SPIN + "Skipping to next test...\n"
    address = memtester_finding(
        Output(stuck, "FAILURE: possible bad address line at offset 0x000a2000.\n", 0x02),
        "4M",
        1,
    )
    assert address.verdict is Verdict.FAIL
    assert address.evidence[0] == "memtester found memory errors in: Stuck Address"


def test_memtester_stopped_or_unable_to_start_is_unavailable() -> None:
    half = HEAD + "Loop 1/1:\n" + "".join(f"  {n:<20}: ok\n" for n in TESTS[:5])
    stopped = memtester_finding(Output(half, "", None), "4M", 1)
    assert stopped.verdict is Verdict.UNAVAILABLE
    assert stopped.evidence == ("memtester stopped after 5 of 18 tests, no errors so far",)
    killed = memtester_finding(Output(half, "", -15), "4M", 1)  # SIGTERM, not exit bits
    assert killed.verdict is Verdict.UNAVAILABLE
    # what memtester 4.6 prints for a size it cannot use (exit status 1)
    cannot = memtester_finding(
        Output(HEAD[:120], "bytes 0 < pagesize 4096 -- memory argument too large?\n", 1), "0", 1
    )
    assert cannot.verdict is Verdict.UNAVAILABLE
    assert cannot.evidence == (
        "memtester could not start: bytes 0 < pagesize 4096 -- memory argument too large?",
    )


def test_memtester_spec_validation() -> None:
    assert parse_memtester_spec("64m") == ("64M", 1)
    assert parse_memtester_spec("1G,3") == ("1G", 3)
    assert parse_memtester_spec("512") == ("512", 1)
    for bad in ("", "0", "-1M", "64M,0", "64M,x", "1T", "64M;reboot", "99999999G", "4M,1,2"):
        with pytest.raises(InputError, match="--memtester"):
            parse_memtester_spec(bad)


# -- rasdaemon and mcelog ------------------------------------------------------------------------
# Shaped like ras-mc-ctl's summary() (rasdaemon 0.6.8, /usr/sbin/ras-mc-ctl); the runner tests
# also run the real ras-mc-ctl on a database of their own.
RAS_CLEAN = "No Memory errors.\n\nNo PCIe AER errors.\n\nNo Extlog errors.\n\nNo MCE errors.\n"
RAS_CORRECTED = (
    "Memory controller events summary:\n"
    "\tCorrected on DIMM Label(s): 'CPU_SrcID#0_Ha#0_Chan#0_DIMM#0' location: 0:0:0:-1 errors: 12\n"
    "\nNo PCIe AER errors.\n\nNo Extlog errors.\n\nMCE records summary:\n"
    "\t1 MEMORY CONTROLLER RD_CHANNEL0_ERR errors\n"
)


def test_ras_summary_verdicts() -> None:
    assert ras_summary_finding(Output(RAS_CLEAN)).verdict is Verdict.PASS
    corrected = ras_summary_finding(Output(RAS_CORRECTED))
    assert corrected.verdict is Verdict.WARN
    assert corrected.evidence == (
        "Memory controller events summary:",
        "MCE records summary:",
        "Corrected on DIMM Label(s): 'CPU_SrcID#0_Ha#0_Chan#0_DIMM#0' location: 0:0:0:-1 "
        "errors: 12",
        "1 MEMORY CONTROLLER RD_CHANNEL0_ERR errors",
        "details: ras-mc-ctl --errors",
    )
    aer = RAS_CLEAN.replace(
        "No PCIe AER errors.\n",
        "PCIe AER events summary:\n\t1 Uncorrected (Non-Fatal) errors: Completion Timeout\n",
    )
    assert ras_summary_finding(Output(aer)).verdict is Verdict.FAIL
    # what this machine's ras-mc-ctl says without a rasdaemon database (exit status 255)
    no_db = ras_summary_finding(
        Output(
            "",
            "DBI connect('dbname=/var/lib/rasdaemon/ras-mc_event.db','',...) failed: unable to "
            "open database file at /usr/sbin/ras-mc-ctl line 1169.\n",
            255,
        )
    )
    assert no_db.verdict is Verdict.UNAVAILABLE
    assert "rasdaemon has no error database" in no_db.evidence[0]


MCELOG_CORRECTED = """\
Hardware event. This is not a software error.
MCE 0
CPU 0 BANK 7 TSC 2f3e4b2a9c4
MISC 140a1086 ADDR 3fd4f6a00
TIME 1459420383 Thu Mar 31 06:33:03 2016
MCG status:
MCi status:
Corrected error
Error enabled
MCA: MEMORY CONTROLLER RD_CHANNEL0_ERR
Transaction: Memory read error
STATUS 8c00004000010090 MCGSTATUS 0
"""


def test_mcelog_client_verdicts() -> None:
    assert mcelog_finding(Output("")).verdict is Verdict.PASS
    corrected = mcelog_finding(Output(MCELOG_CORRECTED))
    assert corrected.verdict is Verdict.WARN
    assert corrected.evidence[0] == "mcelog: 1 machine check event(s)"
    assert "MCA: MEMORY CONTROLLER RD_CHANNEL0_ERR" in corrected.evidence
    assert "Transaction: Memory read error" in corrected.evidence
    fatal = MCELOG_CORRECTED.replace(
        "Corrected error", "Uncorrected error\nProcessor context corrupt"
    )
    assert mcelog_finding(Output(fatal)).verdict is Verdict.FAIL
    down = mcelog_finding(Output("", "mcelog: client connect: No such file or directory\n", 1))
    assert down.verdict is Verdict.UNAVAILABLE
    assert "is the mcelog daemon running?" in down.evidence[0]


# -- EDAC ----------------------------------------------------------------------------------------
def edac_lines(root: str, **counts: tuple[int, int]) -> str:
    base = f"{root}/sys/devices/system/edac/mc"
    lines = []
    for mc, (ce, ue) in counts.items():
        lines += [f"{base}/{mc}/mc_name:Skylake Socket#0 IMC#0", f"{base}/{mc}/ce_count:{ce}"]
        lines += [f"{base}/{mc}/ue_count:{ue}"]
        lines += [f"{base}/{mc}/dimm0/dimm_label:CPU_SrcID#0_MC#0_Chan#0_DIMM#0"]
        lines += [f"{base}/{mc}/dimm0/dimm_ce_count:{ce}", f"{base}/{mc}/dimm0/dimm_ue_count:{ue}"]
    return "\n".join(lines) + "\n"


def test_edac_counters() -> None:
    where = "/sys/devices/system/edac/mc"
    clean = edac_finding(Output(edac_lines("", mc0=(0, 0), mc1=(0, 0))), where)
    assert clean.verdict is Verdict.PASS
    assert clean.evidence == (
        "mc0 (Skylake Socket#0 IMC#0): 0 corrected, 0 uncorrected errors since boot",
        "mc1 (Skylake Socket#0 IMC#0): 0 corrected, 0 uncorrected errors since boot",
    )
    corrected = edac_finding(Output(edac_lines("", mc0=(0, 0), mc1=(7, 0))), where)
    assert corrected.verdict is Verdict.WARN
    assert corrected.evidence[-1] == (
        "mc1 dimm0 [CPU_SrcID#0_MC#0_Chan#0_DIMM#0]: 7 corrected, 0 uncorrected"
    )
    assert edac_finding(Output(edac_lines("/x", mc0=(3, 1))), where).verdict is Verdict.FAIL
    none = edac_finding(Output("", "", 2), where)
    assert none.verdict is Verdict.UNAVAILABLE
    assert none.evidence[0].startswith("no EDAC memory controller in /sys/devices/system/edac/mc")


# -- kernel log ----------------------------------------------------------------------------------
QUIET_LOG = """\
[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)
[    0.412000] mce: CPU0: Thermal monitoring enabled (TM1)
[    0.913000] RAS: Correctable Errors collector initialized.
[    1.100000] EDAC MC: Ver: 3.0.0
[    1.200000] EDAC sbridge: Seeking for: PCI ID 8086:2fa0
[    1.321455] EXT4-fs (vda): mounted filesystem r/w without journal. Quota mode: none.
[    2.000000] ata1: SATA link up 6.0 Gbps (SStatus 133 SControl 300)
[    2.100000] nvme nvme0: 8/0/0 default/read/poll queues
[    3.000000] blk_update_request: I/O error, dev fd0, sector 0 op 0x0:(READ) flags 0x0
"""


@pytest.mark.parametrize(
    ("line", "verdict"),
    [
        ("mce: [Hardware Error]: Machine check events logged", Verdict.WARN),
        (
            "mce: [Hardware Error]: CPU 3: Machine Check Exception: 5 Bank 6: b200000000070f0f",
            Verdict.FAIL,
        ),
        ("{1}[Hardware Error]: event severity: corrected", Verdict.WARN),
        ("{2}[Hardware Error]: event severity: fatal", Verdict.FAIL),
        (
            "EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0)",
            Verdict.WARN,
        ),
        ("EDAC MC1: 1 UE memory read error on CPU_SrcID#1_Ha#0_Chan#0_DIMM#0", Verdict.FAIL),
        ("ata3.00: exception Emask 0x0 SAct 0x40000 SErr 0x0 action 0x0", Verdict.WARN),
        ("ata3.00: failed command: READ FPDMA QUEUED", Verdict.WARN),
        ("ata3.00: error: { UNC }", Verdict.FAIL),
        (
            "blk_update_request: I/O error, dev sdb, sector 123456 op 0x0:(READ) flags 0x0",
            Verdict.FAIL,
        ),
        (
            "I/O error, dev nvme0n1, sector 9876 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio 2",
            Verdict.FAIL,
        ),
        ("Buffer I/O error on dev sdb1, logical block 0, async page read", Verdict.FAIL),
        ("nvme nvme0: I/O 24 QID 0 timeout, reset controller", Verdict.WARN),
        (
            "nvme nvme0: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff",
            Verdict.FAIL,
        ),
        ("pcieport 0000:00:1c.0: AER: Corrected error received: 0000:00:1c.0", Verdict.WARN),
        (
            "pcieport 0000:00:03.0: AER: Uncorrected (Non-Fatal) error received: 0000:03:00.0",
            Verdict.FAIL,
        ),
        (
            "CPU0: Core temperature above threshold, cpu clock throttled (total events = 1)",
            Verdict.WARN,
        ),
    ],
)
def test_kernel_log_hardware_lines(line: str, verdict: Verdict) -> None:
    stamped = f"[ 4242.000001] {line}"
    finding = kernel_log_finding(Output(QUIET_LOG + stamped + "\n"), "dmesg")
    assert finding.verdict is verdict
    assert finding.evidence == ("dmesg: 1 hardware error lines", stamped)


def test_kernel_log_without_hardware_errors_passes_and_empty_is_unavailable() -> None:
    quiet = kernel_log_finding(Output(QUIET_LOG), "dmesg")
    assert quiet.verdict is Verdict.PASS
    assert quiet.evidence == ("dmesg: no hardware errors in 9 lines",)
    empty = kernel_log_finding(Output(""), "journalctl -k")
    assert (empty.verdict, empty.evidence) == (
        Verdict.UNAVAILABLE,
        ("journalctl -k: the kernel log is empty",),
    )
    denied = kernel_log_finding(
        Output("", "dmesg: read kernel buffer failed: Operation not permitted\n", 1), "dmesg"
    )
    assert denied.evidence == ("dmesg: dmesg: read kernel buffer failed: Operation not permitted",)


def test_kernel_log_puts_failures_first_and_caps_the_evidence() -> None:
    noisy = "".join(f"[ {i}.0] ata1.00: failed command: READ FPDMA QUEUED\n" for i in range(50))
    noisy += "[ 99.0] ata1.00: error: { UNC }\n"
    finding = kernel_log_finding(Output(noisy), "dmesg")
    assert finding.verdict is Verdict.FAIL
    assert len(finding.evidence) == MAX_EVIDENCE
    assert finding.evidence[:2] == (
        "dmesg: 51 hardware error lines",
        "[ 99.0] ata1.00: error: { UNC }",
    )
    assert finding.evidence[-1] == "... and 33 more lines"  # 52 lines, 19 shown


# -- temperatures and fans -----------------------------------------------------------------------
def psutil_type(name: str) -> Any:
    """psutil's reading tuple `name` (psutil 7 moved them from _common to _ntuples)."""
    for module in ("psutil._ntuples", "psutil._common"):
        with contextlib.suppress(ImportError, AttributeError):
            return getattr(importlib.import_module(module), name)
    pytest.fail(f"psutil {psutil.__version__} has no {name}")


def test_temperatures_against_their_limits_in_psutils_own_types() -> None:
    shwtemp = psutil_type("shwtemp")  # what psutil.sensors_temperatures() returns
    calm = {
        "coretemp": [
            shwtemp("Package id 0", 45.0, 80.0, 100.0),
            shwtemp("Core 0", 44.0, 80.0, 100.0),
        ]
    }
    assert temperature_finding(calm).verdict is Verdict.PASS
    assert temperature_finding(calm).evidence[0] == (
        "coretemp Package id 0: 45 °C (high 80 °C, critical 100 °C)"
    )
    warm = {**calm, "nvme": [shwtemp("Composite", 71.0, 70.0, 85.0)]}
    assert temperature_finding(warm).verdict is Verdict.WARN
    assert temperature_finding(warm).evidence[0] == (
        "nvme Composite: 71 °C (high 70 °C, critical 85 °C) HIGH"
    )
    hot = {**warm, "coretemp": [shwtemp("Package id 0", 100.0, 80.0, 100.0)]}
    assert temperature_finding(hot).verdict is Verdict.FAIL
    assert temperature_finding(hot).evidence[0].endswith("CRITICAL")
    # an unset NVMe limit reads 65261.85 °C: it is no limit at all
    unset = {"nvme": [shwtemp("Sensor 2", 40.0, 65261.85, 65261.85)]}
    assert temperature_finding(unset).evidence == ("nvme Sensor 2: 40 °C",)
    assert temperature_finding({}).verdict is Verdict.UNAVAILABLE


def test_fans() -> None:
    sfan = psutil_type("sfan")
    assert fan_finding({"nct6775": [sfan("fan1", 1200), sfan("fan2", 1150)]}).verdict is (
        Verdict.PASS
    )
    stopped = fan_finding({"nct6775": [sfan("fan1", 1200), sfan("fan2", 0)]})
    assert stopped.verdict is Verdict.WARN
    assert stopped.evidence[0] == "nct6775 fan2: 0 RPM (stopped, or none)"
    assert fan_finding({}).verdict is Verdict.UNAVAILABLE


def test_hwmon_files_read_like_psutil() -> None:
    text = (
        "/sys/class/hwmon/hwmon0/name:acpitz\n"
        "/sys/class/hwmon/hwmon0/temp1_input:27800\n"
        "/sys/class/hwmon/hwmon0/temp1_crit:119000\n"
        "/sys/class/hwmon/hwmon2/name:coretemp\n"
        "/sys/class/hwmon/hwmon2/temp1_label:Package id 0\n"
        "/sys/class/hwmon/hwmon2/temp1_input:81000\n"
        "/sys/class/hwmon/hwmon2/temp1_max:80000\n"
        "/sys/class/hwmon/hwmon2/temp1_crit:100000\n"
        "/sys/class/hwmon/hwmon2/temp10_input:50000\n"
        "/sys/class/hwmon/hwmon3/name:nct6775\n"
        "/sys/class/hwmon/hwmon3/fan2_input:0\n"
    )
    temps, fans = hwmon_readings(Output(text))
    assert temps == {
        "acpitz": [TempReading("temp1", 27.8, None, 119.0)],
        "coretemp": [TempReading("Package id 0", 81.0, 80.0, 100.0), TempReading("temp10", 50.0)],
    }
    assert fans == {"nct6775": [FanReading("fan2", 0.0)]}
    assert temperature_finding(temps).verdict is Verdict.WARN


# -- IPMI SEL ------------------------------------------------------------------------------------
def sel_record(record_id: int, sensor_type: int, offset: int, *, deassert: bool = False) -> bytes:
    """A system event record (IPMI v2.0 table 32-1), sensor-specific (0x6F)."""
    stamp = (1_790_000_000 + record_id).to_bytes(4, "little")
    direction = (0x80 if deassert else 0) | 0x6F
    return bytes(
        [record_id, 0, 0x02, *stamp, 0x20, 0, 0x04, sensor_type, 1, direction, offset, 0xFF, 0xFF]
    )


def test_sel_verdicts_from_decoded_records() -> None:
    where = "ipmi://admin@bmc:623"
    restart = decode_sel_record(sel_record(1, 0x1D, 0x07))  # "System restart": information
    assert sel_finding([restart], where).verdict is Verdict.PASS
    assert sel_finding([], where).evidence == (f"{where}: 0 SEL entries, 0 critical, 0 warning",)
    ecc = decode_sel_record(sel_record(2, 0x0C, 0x00))  # correctable ECC
    warned = sel_finding([restart, ecc], where)
    assert warned.verdict is Verdict.WARN
    assert "Correctable ECC / other correctable memory error [warning]" in warned.evidence[1]
    for sensor_type, offset, text in (
        (0x0C, 0x01, "Uncorrectable ECC"),
        (0x07, 0x00, "IERR"),
        (0x07, 0x01, "Thermal trip"),
        (0x09, 0x06, "Power unit failure detected"),
        (0x20, 0x01, "OS run-time critical stop (panic)"),
    ):
        bad = decode_sel_record(sel_record(3, sensor_type, offset))
        failed = sel_finding([restart, ecc, bad], where)
        assert failed.verdict is Verdict.FAIL, text
        assert text in failed.evidence[1]  # the critical event comes first
        assert failed.evidence[0] == f"{where}: 3 SEL entries, 1 critical, 1 warning"
    cleared = decode_sel_record(sel_record(4, 0x0C, 0x01, deassert=True))
    assert sel_finding([cleared], where).verdict is Verdict.PASS


def test_worst_orders_verdicts() -> None:
    assert worst([Verdict.PASS, Verdict.UNAVAILABLE]) is Verdict.UNAVAILABLE
    assert worst([Verdict.UNAVAILABLE, Verdict.WARN]) is Verdict.WARN
    assert worst([Verdict.WARN, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert worst([]) is Verdict.PASS


def test_kernel_log_shows_the_newest_errors_when_old_ones_fill_the_cap() -> None:
    # A jump host's log that holds months of old I/O errors: the ones nearest the crash count.
    old = "".join(f"[ {i}.0] I/O error, dev sdz, sector {i} op 0x0:(READ)\n" for i in range(40))
    log = old + "[ 500.0] I/O error, dev sda, sector 1 op 0x0:(READ)\n"
    log += "[ 501.0] ata1.00: failed command: READ FPDMA QUEUED\n"
    finding = kernel_log_finding(Output(log), "dmesg")
    assert finding.evidence[1] == "[ 500.0] I/O error, dev sda, sector 1 op 0x0:(READ)"
    assert finding.evidence[2] == "[ 39.0] I/O error, dev sdz, sector 39 op 0x0:(READ)"
