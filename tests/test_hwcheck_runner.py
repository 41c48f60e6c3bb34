"""The runner on this machine with the real tools: memtester (progress, cancel), smartctl, EDAC
and hwmon sysfs (the real path and a tree of our own), psutil, ras-mc-ctl, the kernel log."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest
from labtools import LAB_REQUIRED, require_commands

from crashcart.hardware.checks import (
    Check,
    InstallHint,
    edac_check,
    fan_check,
    kernel_log_check,
    machine_check,
    memtester_check,
    smart_check,
    temperature_check,
)
from crashcart.hardware.parsers import Finding, Output, Verdict
from crashcart.hardware.runner import (
    CheckFinished,
    CheckProgress,
    CheckStarted,
    Event,
    HardwareResult,
    LocalTarget,
    OutputLine,
    run_checks,
    save_hardware_json,
)


class Recorder:
    """Collects the runner's events with the time each arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []

    def __call__(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))

    def of(self, kind: type) -> list[tuple[float, Event]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]


def running(argv: Sequence[str]) -> list[int]:
    """PIDs of live processes running `argv` (the program by any path; zombies excluded)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or len(cmdline) != len(argv):
            continue
        if os.path.basename(cmdline[0]) == argv[0] and cmdline[1:] == list(argv[1:]):
            found.append(proc.pid)
    return found


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        if LAB_REQUIRED:
            pytest.fail(f"needs root ({why}) and CRASHCART_REQUIRE_LAB=1", pytrace=False)
        pytest.skip(f"needs root ({why})")


# -- memtester -----------------------------------------------------------------------------------
def test_memtester_streams_its_progress_live_and_passes() -> None:
    require_commands("memtester")
    seen = Recorder()
    result = run_checks([memtester_check("4M", 1)], LocalTarget(), on_event=seen)
    (only,) = result.checks
    assert (only.name, only.verdict, only.command) == ("memtester", Verdict.PASS, "memtester 4M 1")
    assert only.evidence == ("memtester 4M x1: 18 of 18 tests ok",)
    progress = [e for _, e in seen.of(CheckProgress)]
    assert [(p.done, p.total) for p in progress] == [(n, 18) for n in range(1, 19)]
    lines = [e.text for _, e in seen.of(OutputLine)]
    assert "Loop 1/1:" in lines
    # the spinner's backspaces are resolved: the line reads as it did on a terminal
    assert "  Stuck Address       : ok" in [line.rstrip() for line in lines]
    # live: the first test was reported well before the last one finished
    times = [t for t, _ in seen.of(CheckProgress)]
    finished = seen.of(CheckFinished)[0][0]
    assert finished - times[0] > 0.2
    assert isinstance(seen.events[0][1], CheckStarted)


def test_cancel_kills_memtester_and_skips_the_rest() -> None:
    require_commands("memtester")
    argv = ["memtester", "31M", "47"]  # a size no one else runs: found again by its argv below
    cancel = threading.Event()
    cancelled_at: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, CheckProgress) and not cancel.is_set():
            assert running(argv), "memtester should be running while it reports progress"
            cancelled_at.append(time.monotonic())
            cancel.set()

    checks = [memtester_check("31M", 47), kernel_log_check()]
    result = run_checks(checks, LocalTarget(), on_event=on_event, cancel=cancel)
    took = time.monotonic() - cancelled_at[0]
    mem, log = result.checks
    assert mem.verdict is Verdict.UNAVAILABLE
    # cancelled at the first finished test; one more may have finished before the kill
    assert mem.evidence[0] in {
        f"memtester stopped after {n} of 846 tests, no errors so far" for n in (1, 2)
    }
    assert mem.evidence[1:] == ("stopped: cancelled",)
    assert (log.name, log.verdict, log.evidence) == (
        "kernel-log",
        Verdict.UNAVAILABLE,
        ("cancelled before it ran",),
    )
    assert took < 5.0
    assert running(argv) == []


def test_a_check_that_overruns_its_timeout_is_stopped() -> None:
    require_commands("sleep")
    argv = ["sleep", "59.25"]
    slow = Check("slow", tuple(argv), parse=lambda out: Finding(Verdict.PASS), timeout=0.5)
    t0 = time.monotonic()
    (result,) = run_checks([slow], LocalTarget()).checks
    assert time.monotonic() - t0 < 5.0
    assert (result.verdict, result.evidence) == (
        Verdict.UNAVAILABLE,
        ("stopped: timed out after 0.5 s",),
    )
    assert running(argv) == []


def test_a_stopped_command_leaves_no_process_behind() -> None:
    require_commands("sh", "sleep")
    # the shell exits at once; its background child keeps the output pipe open until killed
    script = "(sleep 58.75; echo late) & echo started"
    held = Check(
        "held",
        ("sh", "-c", script),
        parse=lambda out: Finding(Verdict.PASS, (out.stdout,)),
        timeout=0.5,
    )
    (result,) = run_checks([held], LocalTarget()).checks
    assert result.evidence == ("started", "stopped: timed out after 0.5 s")
    assert running(["sleep", "58.75"]) == []


# -- missing tools, fallbacks, environment -------------------------------------------------------
def test_a_missing_tool_names_its_package_and_the_run_goes_on() -> None:
    require_commands("dmesg")
    ghost = Check(
        "ghost",
        ("crashcart-no-such-tool", "--json"),
        parse=lambda out: Finding(Verdict.PASS),
        hint=InstallHint("ghost-tools", "ghost-utils"),
    )
    result = run_checks([ghost, kernel_log_check()], LocalTarget())
    missing, log = result.checks
    assert missing.verdict is Verdict.UNAVAILABLE
    assert missing.evidence == (
        "crashcart-no-such-tool is not installed: "
        "apt install ghost-tools / dnf install ghost-utils",
    )
    assert missing.to_dict()["install_hint"] == {"apt": "ghost-tools", "dnf": "ghost-utils"}
    assert missing.command == "crashcart-no-such-tool --json"
    assert log.name == "kernel-log" and log.verdict is not Verdict.UNAVAILABLE


def test_fallback_runs_when_the_first_tool_gives_no_verdict() -> None:
    require_commands("sh")
    first = Check(
        "demo",
        ("sh", "-c", "echo 'no database' >&2; exit 3"),
        parse=lambda out: Finding(Verdict.UNAVAILABLE, (f"first: {out.stderr.strip()}",)),
        fallback=Check(
            "demo",
            ("sh", "-c", "echo fine"),
            parse=lambda out: Finding(Verdict.PASS, (f"second: {out.stdout.strip()}",)),
        ),
    )
    (result,) = run_checks([first], LocalTarget()).checks
    assert (result.verdict, result.evidence, result.command) == (
        Verdict.PASS,
        ("second: fine",),
        "sh -c 'echo fine'",
    )


def test_machine_check_on_this_machine() -> None:
    require_commands("ras-mc-ctl")
    (result,) = run_checks([machine_check()], LocalTarget()).checks
    if Path("/var/lib/rasdaemon/ras-mc_event.db").exists():
        assert result.verdict is not Verdict.UNAVAILABLE
        return
    # rasdaemon installed but never recording (no database): then mcelog is asked
    assert result.verdict is Verdict.UNAVAILABLE
    assert result.command == "ras-mc-ctl --summary || mcelog --client"
    assert result.evidence[0].startswith("ras-mc-ctl: rasdaemon has no error database")
    assert result.evidence[1].startswith("mcelog ")
    assert result.install_hint == InstallHint("rasdaemon", "rasdaemon")


def test_children_never_see_the_ipmi_password(monkeypatch: pytest.MonkeyPatch) -> None:
    require_commands("env")
    secret = "cc-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("CRASHCART_IPMI_PASSWORD", secret)
    dump = Check("env", ("env",), parse=lambda out: Finding(Verdict.PASS, (out.stdout,)))
    (result,) = run_checks([dump], LocalTarget()).checks
    assert "LC_ALL=C" in result.evidence[0]
    assert secret not in result.evidence[0]


# -- rasdaemon's real ras-mc-ctl on a database of ours -------------------------------------------
class UnderVarLib(LocalTarget):
    """This machine, with `folder` mounted over /var/lib for the command only (a private mount
    namespace), so ras-mc-ctl reads our rasdaemon database and the real one is never touched."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def argv(self, argv: Sequence[str]) -> list[str] | None:
        inner = super().argv(argv)
        if inner is None:
            return None
        script = 'mount --bind "$0" /var/lib && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, str(self.folder), *inner]


def rasdaemon_db(folder: Path, mc_events: Sequence[tuple[str, str]], aer: Sequence[str]) -> None:
    """The tables ras-mc-ctl --summary reads, with the columns it selects."""
    (folder / "rasdaemon").mkdir(parents=True)
    db = sqlite3.connect(folder / "rasdaemon" / "ras-mc_event.db")
    with db:
        db.execute(
            "create table mc_event (id integer primary key, timestamp text, err_count integer, "
            "err_type text, err_msg text, label text, mc integer, top_layer integer, "
            "middle_layer integer, lower_layer integer, address integer, grain integer, "
            "syndrome integer, driver_detail text)"
        )
        db.execute(
            "create table aer_event (id integer primary key, timestamp text, "
            "dev_name text, err_type text, err_msg text)"
        )
        db.execute(
            "create table extlog_event (id integer primary key, etype integer, severity integer)"
        )
        db.execute("create table mce_record (id integer primary key, error_msg text)")
        for table, column in (
            ("arm_event", "mpidr"),
            ("devlink_event", "dev_name"),
            ("disk_errors", "dev"),
            ("memory_failure_event", "action_result"),
        ):
            db.execute(f"create table {table} (id integer primary key, {column} text)")
        for err_type, label in mc_events:
            db.execute(
                "insert into mc_event (err_type, label, mc, top_layer, middle_layer, "
                "lower_layer) values (?, ?, 0, 1, 0, -1)",
                (err_type, label),
            )
        for err_type in aer:
            db.execute(
                "insert into aer_event (dev_name, err_type, err_msg) values "
                "('0000:03:00.0', ?, 'Completion Timeout')",
                (err_type,),
            )
    db.close()


def test_real_ras_mc_ctl_summary_of_recorded_errors(tmp_path: Path) -> None:
    require_commands("ras-mc-ctl", "unshare")
    require_root("a private mount namespace for rasdaemon's database")
    clean_db, dirty_db = tmp_path / "clean", tmp_path / "dirty"
    rasdaemon_db(clean_db, [], [])
    label = "CPU_SrcID#0_Ha#0_Chan#1_DIMM#0"
    rasdaemon_db(dirty_db, [("Corrected", label)] * 3, ["Uncorrected (Non-Fatal)"])
    (clean,) = run_checks([machine_check()], UnderVarLib(clean_db)).checks
    assert (clean.verdict, clean.evidence) == (
        Verdict.PASS,
        ("rasdaemon recorded no hardware errors",),
    )
    (dirty,) = run_checks([machine_check()], UnderVarLib(dirty_db)).checks
    assert dirty.verdict is Verdict.FAIL
    assert f"Corrected on DIMM Label(s): '{label}' location: 0:1:0:-1 errors: 3" in dirty.evidence
    assert "1 Uncorrected (Non-Fatal) errors: Completion Timeout" in dirty.evidence
    corrected_only = tmp_path / "corrected"
    rasdaemon_db(corrected_only, [("Corrected", label)], [])
    (warned,) = run_checks([machine_check()], UnderVarLib(corrected_only)).checks
    assert warned.verdict is Verdict.WARN


# -- SMART ---------------------------------------------------------------------------------------
def test_smart_on_this_machines_disks() -> None:
    tools = require_commands("smartctl", "lsblk")
    scan = json.loads(
        subprocess.run([tools["smartctl"], "--scan", "-j"], capture_output=True, check=False).stdout
    )
    results = run_checks([smart_check()], LocalTarget()).checks
    names = [r.name for r in results]
    if scan.get("devices"):
        assert names == [f"smart:{d['name']}" for d in scan["devices"]]
    else:
        blk = json.loads(subprocess.check_output([tools["lsblk"], "-J", "-d", "-o", "NAME,TYPE"]))
        disks = [d["name"] for d in blk["blockdevices"] if d["type"] == "disk"]
        disks = [d for d in disks if not d.startswith(("zram", "ram", "loop"))]
        assert names == ([f"smart:/dev/{d}" for d in disks] or ["smart"])
    for result in results:
        assert result.evidence, result
        if result.name.startswith("smart:/dev/vd"):
            # a virtio disk: smartctl cannot detect a device type, and the operator is told why
            assert result.verdict is Verdict.UNAVAILABLE
            assert result.evidence[-1] == (
                "a virtual (virtio/Xen) disk has no SMART data: check the host's disks"
            )
        elif result.verdict is not Verdict.UNAVAILABLE:
            assert result.evidence[1].startswith("SMART overall-health: ")


# -- EDAC and hwmon: the real sysfs and trees of our own -----------------------------------------
def test_edac_on_this_machine() -> None:
    require_commands("sh", "grep")
    (result,) = run_checks([edac_check()], LocalTarget()).checks
    controllers = list(Path("/sys/devices/system/edac/mc").glob("mc[0-9]*"))
    if controllers:
        assert result.verdict is not Verdict.UNAVAILABLE
        assert len([e for e in result.evidence if e.startswith("mc")]) >= len(controllers)
    else:
        assert result.verdict is Verdict.UNAVAILABLE
        assert result.evidence[0].startswith(
            "no EDAC memory controller in /sys/devices/system/edac/mc"
        )


def fake_edac(root: Path, counts: dict[str, tuple[int, int]]) -> None:
    for mc, (ce, ue) in counts.items():
        folder = root / "sys/devices/system/edac/mc" / mc
        (folder / "dimm0").mkdir(parents=True, exist_ok=True)
        (folder / "mc_name").write_text("Skylake Socket#0 IMC#0\n")
        (folder / "ce_count").write_text(f"{ce}\n")
        (folder / "ue_count").write_text(f"{ue}\n")
        (folder / "ce_noinfo_count").write_text("0\n")
        (folder / "dimm0" / "dimm_label").write_text(f"{mc.upper()}_DIMM_A1\n")
        (folder / "dimm0" / "dimm_ce_count").write_text(f"{ce}\n")
        (folder / "dimm0" / "dimm_ue_count").write_text(f"{ue}\n")


@pytest.fixture
def odd_root(tmp_path: Path) -> Path:
    """A root folder whose name a shell would split and unquote: the scripts must quote it."""
    root = tmp_path / "it's a $(tree)"
    root.mkdir()
    return root


def test_edac_counters_from_a_sysfs_tree(odd_root: Path) -> None:
    require_commands("sh", "grep")
    fake_edac(odd_root, {"mc0": (0, 0), "mc1": (5, 0)})
    (warned,) = run_checks([edac_check(str(odd_root))], LocalTarget()).checks
    assert warned.verdict is Verdict.WARN
    assert warned.evidence == (
        "mc0 (Skylake Socket#0 IMC#0): 0 corrected, 0 uncorrected errors since boot",
        "mc1 (Skylake Socket#0 IMC#0): 5 corrected, 0 uncorrected errors since boot",
        "mc1 dimm0 [MC1_DIMM_A1]: 5 corrected, 0 uncorrected",
    )
    fake_edac(odd_root, {"mc0": (0, 2)})
    (failed,) = run_checks([edac_check(str(odd_root))], LocalTarget()).checks
    assert failed.verdict is Verdict.FAIL
    assert "mc0 dimm0 [MC0_DIMM_A1]: 0 corrected, 2 uncorrected" in failed.evidence


def fake_hwmon(root: Path, chips: dict[str, dict[str, str]]) -> None:
    for i, (name, files) in enumerate(chips.items()):
        folder = root / "sys/class/hwmon" / f"hwmon{i}"
        folder.mkdir(parents=True)
        (folder / "name").write_text(name + "\n")
        for file, value in files.items():
            (folder / file).write_text(value + "\n")


def test_temperatures_and_fans_from_a_hwmon_tree(odd_root: Path) -> None:
    require_commands("sh", "grep")
    fake_hwmon(
        odd_root,
        {
            "coretemp": {
                "temp1_label": "Package id 0",
                "temp1_input": "101000",
                "temp1_max": "84000",
                "temp1_crit": "100000",
                "temp2_label": "Core 0",
                "temp2_input": "52000",
                "temp2_max": "84000",
                "temp2_crit": "100000",
            },
            "nct6775": {"fan1_input": "1250", "fan2_input": "0", "fan2_label": "CPU_FAN"},
        },
    )
    temps, fans = run_checks(
        [temperature_check(str(odd_root)), fan_check(str(odd_root))], LocalTarget()
    ).checks
    assert temps.verdict is Verdict.FAIL
    assert temps.evidence == (
        "coretemp Package id 0: 101 °C (high 84 °C, critical 100 °C) CRITICAL",
        "coretemp Core 0: 52 °C (high 84 °C, critical 100 °C)",
    )
    assert fans.verdict is Verdict.WARN
    assert fans.evidence == ("nct6775 CPU_FAN: 0 RPM (stopped, or none)", "nct6775 fan1: 1250 RPM")


def test_psutil_sensors_on_this_machine() -> None:
    temps, fans = run_checks([temperature_check(), fan_check()], LocalTarget()).checks
    assert temps.command == "psutil.sensors_temperatures()"
    readings = [t for ts in psutil.sensors_temperatures().values() for t in ts]
    if not readings:
        assert temps.verdict is Verdict.UNAVAILABLE
        assert temps.evidence[0].startswith("no temperature sensors")
    else:
        assert temps.verdict is not Verdict.UNAVAILABLE and len(temps.evidence) >= 1
    if not any(psutil.sensors_fans().values()):
        assert fans.verdict is Verdict.UNAVAILABLE
        assert fans.evidence[0].startswith("no fan sensors")


# -- the kernel log ------------------------------------------------------------------------------
def test_kernel_log_on_this_machine() -> None:
    require_commands("dmesg")
    (result,) = run_checks([kernel_log_check()], LocalTarget()).checks
    assert result.verdict is not Verdict.UNAVAILABLE, result.evidence
    assert result.evidence[0].startswith(("dmesg: ", "journalctl -k: "))
    if result.verdict is Verdict.PASS:
        assert result.evidence[0].endswith(" lines") and "no hardware errors" in result.evidence[0]


def test_kernel_log_finds_errors_written_into_the_real_kernel_log() -> None:
    require_commands("dmesg")
    require_root("writes two marked test lines into the kernel log via /dev/kmsg")
    token = f"crashcart-selftest-{uuid.uuid4().hex[:8]}"
    warn = f"{token} (ignore): ata9.00: failed command: READ FPDMA QUEUED"
    fail = f"{token} (ignore): I/O error, dev sdz, sector 2048 op 0x0:(READ) flags 0x0"
    with open("/dev/kmsg", "w") as kmsg:
        for level, line in ((4, warn), (3, fail)):
            kmsg.write(f"<{level}>{line}\n")
            kmsg.flush()  # one write per record
    (result,) = run_checks([kernel_log_check()], LocalTarget()).checks
    assert result.verdict is Verdict.FAIL
    ours = [line for line in result.evidence if token in line]
    # Failures are listed first. Evidence is capped, and on a machine whose kernel log holds
    # earlier runs' lines the warning can fall past the cap; the failure never does.
    assert ours and ours[0].endswith(fail)
    assert len(ours) == 2 or len(result.evidence) >= 20
    if len(ours) == 2:
        assert ours[1].endswith(warn)


# -- hardware.json -------------------------------------------------------------------------------
def test_save_hardware_json_is_private_and_replaces_the_old_one(tmp_path: Path) -> None:
    incident = tmp_path / "incident"
    incident.mkdir(mode=0o700)
    one = Check("one", ("true",), parse=lambda out: Finding(Verdict.WARN, ("evidence 1",)))
    result = run_checks([one], LocalTarget())
    path = save_hardware_json(incident, result)
    assert path == incident / "hardware.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert set(doc) == {"host", "via", "time", "checks"}
    assert doc["checks"] == [
        {
            "name": "one",
            "verdict": "warn",
            "evidence": ["evidence 1"],
            "command": "true",
            "install_hint": None,
            "seconds": doc["checks"][0]["seconds"],
        }
    ]
    empty = HardwareResult("web01", "ssh", time.time(), ())
    save_hardware_json(incident, empty)
    assert json.loads(path.read_text())["checks"] == []
    assert sorted(p.name for p in incident.iterdir()) == ["hardware.json"]  # no partial left
    with pytest.raises(FileNotFoundError):
        save_hardware_json(tmp_path / "missing", empty)


def test_output_type_is_what_parsers_receive() -> None:
    require_commands("sh")
    seen: list[Output] = []

    def parse(out: Output) -> Finding:
        seen.append(out)
        return Finding(Verdict.PASS)

    script = "printf 'a\\nb'; printf 'err\\n' >&2; exit 3"
    run_checks([Check("x", ("sh", "-c", script), parse=parse)], LocalTarget())
    assert seen == [Output("a\nb\n", "err\n", 3)]
    # a "line" of 2.5 MB without a newline is cut into pieces, not a byte lost
    flood = "head -c 2500000 /dev/zero | tr '\\0' x"
    run_checks([Check("x", ("sh", "-c", flood), parse=parse)], LocalTarget())
    pieces = seen[-1].stdout.splitlines()
    assert [len(p) for p in pieces] == [1 << 20, 1 << 20, 2500000 - (2 << 20)]
