"""The runbook for real crashes: which steps the evidence calls for, and the exact commands.

The module-caused crash is a real capture: a Debian kernel under QEMU oopsing in the out-of-tree
`crashme` module (../shared/corpus/qemu), analysed by the real parser and written as a real
incident folder.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from crashcart.incident import write_incident
from crashcart.kernel import CrashReport, analyze_bytes
from crashcart.runbook import (
    RunbookState,
    Settings,
    build_runbook,
    detect_distro,
    load_runbook,
)
from crashcart.runbook.commands import Distro
from crashcart.runbook.steps import STEP_IDS, Step, step_by_id

DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""
UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
ID_LIKE=debian
"""
ROCKY_9 = """\
NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
"""
ALMA_9 = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\n'
RHEL_9 = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'
FEDORA_40 = 'NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nID=fedora\n'
MINT_21 = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
ARCH = 'NAME="Arch Linux"\nID=arch\n'

CAPTURE = "gpf_list_poison_panic"  # crashme writes through LIST_POISON2, then panics
CRASHED = "6.1.0-56-amd64"
GOOD_DEBIAN = "6.1.0-28-amd64"
GOOD_RHEL = "5.14.0-362.8.1.el9_3.x86_64"


def _module_crash(corpus: Path) -> CrashReport:
    report = analyze_bytes((corpus / f"{CAPTURE}.log").read_bytes())[0]
    expected = json.loads((corpus / "EXPECTED.json").read_text())[CAPTURE]
    assert report.module == expected["module"] == "crashme"
    return report


@pytest.fixture
def crash_report(qemu_corpus: Path) -> CrashReport:
    return _module_crash(qemu_corpus)


@pytest.fixture
def incident(tmp_path: Path, crash_report: CrashReport) -> Path:
    return write_incident(
        tmp_path, "web01", crash_report, recording=None, screen=None, at=1_700_000_000
    )


def shells(step: Step) -> list[str]:
    return [c.shell for c in step.commands]


def plan(crash: dict[str, Any], **settings: Any) -> dict[str, Step]:
    hardware = settings.pop("hardware", None)
    steps = build_runbook(crash, hardware=hardware, settings=Settings(**settings))
    assert [s.id for s in steps] == list(STEP_IDS)
    return {s.id: s for s in steps}


# -- distributions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "family", "os_id"),
    [
        (DEBIAN_12, "debian", "debian"),
        (UBUNTU_2204, "debian", "ubuntu"),
        (MINT_21, "debian", "linuxmint"),
        (ROCKY_9, "rhel", "rocky"),
        (ALMA_9, "rhel", "almalinux"),
        (RHEL_9, "rhel", "rhel"),
        (FEDORA_40, "rhel", "fedora"),
    ],
)
def test_family_is_detected_from_os_release(text: str, family: str, os_id: str) -> None:
    assert detect_distro(text) == Distro(family, os_id)  # type: ignore[arg-type]


def test_an_unknown_distribution_is_left_to_the_operator(crash_report: CrashReport) -> None:
    assert detect_distro(ARCH) is None
    assert detect_distro("") is None
    steps = plan(crash_report.to_dict())  # no family chosen
    isolate = steps["isolate_module"]
    assert isolate.applicable and isolate.commands == ()
    assert "choose the distribution family" in isolate.reason
    assert steps["configure_kdump"].commands == ()


# -- the whole walk ------------------------------------------------------------------------------

BLACKLIST_CONF = "/etc/modprobe.d/crashcart-blacklist-crashme.conf"
PRINTF_BLACKLIST = r"printf 'blacklist %s\ninstall %s /bin/false\n' crashme crashme"


def test_walk_the_whole_runbook_for_a_module_crash(incident: Path) -> None:
    # The operator picks the box's distribution from its os-release; saved with the progress.
    state = RunbookState.load(incident)
    assert state.steps == {} and state.settings == Settings()
    distro = detect_distro(DEBIAN_12)
    assert distro is not None
    state.settings = state.settings.with_distro(distro)
    state.save(incident)

    steps, state = load_runbook(incident)  # as after a restart
    by_id = {s.id: s for s in steps}
    assert state.settings.family == "debian"
    assert [s.phase for s in steps] == [
        "secure evidence",
        "rescue boot and collect logs",
        "analyse",
        "isolate the component",
        "hardware diagnostics",
        "mitigate",
        "mitigate",
        "configure kdump",
    ]
    isolate = by_id["isolate_module"]
    assert isolate.applicable
    assert "crashme" in isolate.reason and "guilty frame" in isolate.reason
    assert shells(isolate) == [
        f"{PRINTF_BLACKLIST} > {BLACKLIST_CONF}",
        "update-initramfs -u -k all",
        "modprobe -n -v crashme",
    ]
    assert all(c.where == "target" for c in isolate.commands)
    analyse = by_id["analyse"]
    assert "modinfo -k 6.1.0-56-amd64 crashme" in shells(analyse)
    assert 'dpkg -S "$(modinfo -k 6.1.0-56-amd64 -n crashme)"' in shells(analyse)
    assert any("suspect module crashme" in f for f in analyse.findings)
    assert any("Fatal exception" in f for f in analyse.findings)
    # No hardware.json and a software crash: no replacement; no known-good kernel: no revert.
    assert not by_id["replace_hardware"].applicable
    assert "no hardware.json" in by_id["replace_hardware"].reason
    assert not by_id["revert_kernel"].applicable
    assert "known-good" in by_id["revert_kernel"].reason

    # Walk it: each step done or skipped, saved at once, and read back as a restart would.
    for number, step in enumerate(steps):
        state = RunbookState.load(incident)
        assert state.settings.family == "debian"
        if step.id == "isolate_module":
            state.record_run(step.id, step.commands[0], "console", destination="web01", at=1000)
        if step.applicable:
            state.mark(step.id, "done", f"note {number}", at=1000 + number)
        else:
            state.mark(step.id, "skipped", step.reason, at=1000 + number)
        state.save(incident)

    path = incident / "runbook.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(incident.glob(".runbook.json*"))  # no temporary file left behind
    steps, state = load_runbook(incident)
    assert [state.status_of(s) for s in steps] == [
        "done",
        "done",
        "done",
        "done",
        "done",
        "skipped",
        "skipped",
        "done",
    ]
    saved = json.loads(path.read_text())
    assert saved["version"] == 1
    assert saved["settings"]["family"] == "debian"
    isolate_saved = saved["steps"]["isolate_module"]
    assert isolate_saved["status"] == "done"
    assert isolate_saved["notes"] == "note 3"
    assert isolate_saved["updated_at"] == "1970-01-01T00:16:43Z"
    assert isolate_saved["runs"] == [
        {
            "at": "1970-01-01T00:16:40Z",
            "how": "console",
            "destination": "web01",
            "where": "target",
            "command": f"{PRINTF_BLACKLIST} > {BLACKLIST_CONF}",
            "exit_status": None,
        }
    ]


def test_progress_is_not_lost_to_a_bad_status_or_step(incident: Path) -> None:
    state = RunbookState.load(incident)
    with pytest.raises(ValueError, match="unknown step status"):
        state.mark("analyse", "finished")
    with pytest.raises(KeyError, match="unknown runbook step"):
        state.mark("reboot_into_the_sun", "done")
    state.mark("analyse", "done", "gpf in crashme")
    state.save(incident)
    # A newer crashcart's unknown entries are ignored, known ones kept.
    data = json.loads((incident / "runbook.json").read_text())
    data["steps"]["future_step"] = {"status": "done"}
    data["steps"]["secure_evidence"] = {"status": "exploded"}
    (incident / "runbook.json").write_text(json.dumps(data))
    again = RunbookState.load(incident)
    assert set(again.steps) == {"analyse"}
    assert again.steps["analyse"].notes == "gpf in crashme"


# -- exact commands per family -------------------------------------------------------------------


def test_debian_commands(crash_report: CrashReport) -> None:
    steps = plan(
        crash_report.to_dict(), family="debian", os_id="debian", known_good_kernel=GOOD_DEBIAN
    )
    revert = steps["revert_kernel"]
    assert revert.applicable
    assert revert.reason == f"the crash is on {CRASHED}, not on the known-good {GOOD_DEBIAN}"
    entry = f"'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux {GOOD_DEBIAN}'"
    assert shells(revert) == [
        "awk -F\"'\" '/(menuentry|submenu) /{print $2}' /boot/grub/grub.cfg",
        "mkdir -p /etc/default/grub.d",
        "printf 'GRUB_DEFAULT=saved\\n' > /etc/default/grub.d/crashcart-saved-default.cfg",
        "update-grub",
        f"grub-reboot {entry}",
        f"grub-set-default {entry}",
        f"apt-mark hold linux-image-{GOOD_DEBIAN}",
        "apt-mark showhold",
    ]
    reboot = next(c for c in revert.commands if c.argv and c.argv[0] == "grub-reboot")
    assert reboot.argv == (
        "grub-reboot",
        f"Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux {GOOD_DEBIAN}",
    )
    assert shells(steps["configure_kdump"]) == [
        "DEBIAN_FRONTEND=noninteractive apt-get install -y kdump-tools",
        "sed -i 's/^USE_KDUMP=.*/USE_KDUMP=1/' /etc/default/kdump-tools",
        "mkdir -p /etc/default/grub.d",
        "printf 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX crashkernel=%s\"\\n' "
        "1G-4G:192M,4G-64G:256M,64G-:512M > /etc/default/grub.d/crashcart-kdump.cfg",
        "update-grub",
        "systemctl enable kdump-tools",
        "cat /sys/module/pstore/parameters/backend",
        "grep -o 'netconsole=[^ ]*' /proc/cmdline; ls /sys/kernel/config/netconsole",
        "kdump-config show",
    ]
    assert shells(steps["hardware_diagnostics"])[0] == "apt-get install -y rasdaemon"


def test_rhel_commands(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    steps = plan(crash, family="rhel", os_id="rocky", known_good_kernel=GOOD_RHEL)
    assert shells(steps["isolate_module"]) == [
        f"{PRINTF_BLACKLIST} > {BLACKLIST_CONF}",
        "dracut -f --regenerate-all",
        "modprobe -n -v crashme",
    ]
    assert shells(steps["revert_kernel"]) == [
        f"grubby --set-default /boot/vmlinuz-{GOOD_RHEL}",
        "grubby --default-kernel",
        "dnf install -y 'dnf-command(versionlock)'",
        f"dnf versionlock add kernel-{GOOD_RHEL} kernel-core-{GOOD_RHEL} "
        f"kernel-modules-{GOOD_RHEL}",
        "dnf versionlock list",
    ]
    assert shells(steps["configure_kdump"]) == [
        "dnf install -y kexec-tools",
        "kdumpctl reset-crashkernel --kernel=ALL",
        "systemctl enable --now kdump",
        "cat /sys/module/pstore/parameters/backend",
        "grep -o 'netconsole=[^ ]*' /proc/cmdline; ls /sys/kernel/config/netconsole",
        "kdumpctl status",
    ]
    sized = plan(crash, family="rhel", crashkernel="512M")["configure_kdump"]
    assert shells(sized)[1] == "grubby --update-kernel=ALL --args=crashkernel=512M"
    analyse = shells(steps["analyse"])
    assert 'rpm -qf "$(modinfo -k 6.1.0-56-amd64 -n crashme)"' in analyse
    assert "rpm -q --last kernel" in analyse


def test_grub_entry_names_follow_the_distribution(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    ubuntu = plan(crash, family="debian", os_id="ubuntu", known_good_kernel="5.15.0-91-generic")
    assert (
        "grub-reboot 'Advanced options for Ubuntu>Ubuntu, with Linux 5.15.0-91-generic'"
        in shells(ubuntu["revert_kernel"])
    )
    # Mint names its entries its own way: no guess, the operator gives the exact entry.
    mint = plan(crash, family="debian", os_id="linuxmint", known_good_kernel="5.15.0-91-generic")
    assert not any(s.startswith("grub-reboot") for s in shells(mint["revert_kernel"]))
    assert "give the exact entry" in mint["revert_kernel"].refused[0]
    given = plan(
        crash,
        family="debian",
        os_id="linuxmint",
        known_good_kernel="5.15.0-91-generic",
        grub_entry="Advanced options for Linux Mint 21>Linux Mint 21, with Linux 5.15.0-91-generic",
    )
    assert (
        "grub-reboot 'Advanced options for Linux Mint 21>Linux Mint 21, with Linux "
        "5.15.0-91-generic'" in shells(given["revert_kernel"])
    )
    assert given["revert_kernel"].refused == ()


def test_rescue_mount_uses_the_given_root_device(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    without = shells(plan(crash)["rescue_collect"])
    assert not any(s.startswith("mount /dev") for s in without)
    rescue = plan(crash, root_device="/dev/mapper/vg0-root")["rescue_collect"]
    assert "mount /dev/mapper/vg0-root /mnt" in shells(rescue)
    assert "journalctl -D /mnt/var/log/journal -k -b -0 --no-pager" in shells(rescue)
    assert all(c.where == "rescue" for c in rescue.commands)


# -- branches follow the evidence ----------------------------------------------------------------


def test_no_module_to_blame_skips_the_blacklist(qemu_corpus: Path) -> None:
    # echo c > /proc/sysrq-trigger: the core kernel crashed on purpose, no module involved.
    report = analyze_bytes((qemu_corpus / "sysrq_crash.log").read_bytes())[0]
    assert report.module is None
    isolate = plan(report.to_dict(), family="debian")["isolate_module"]
    assert not isolate.applicable and isolate.commands == ()
    assert isolate.reason.startswith("no module to blame")


def test_tainted_kernel_blames_the_module_in_the_trace(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    crash["module"] = None  # guilty frame in the core kernel, crashme frames further down
    isolate = plan(crash, family="debian")["isolate_module"]
    assert isolate.applicable
    assert "out-of-tree" in isolate.reason and "unsigned" in isolate.reason
    assert shells(isolate)[0] == f"{PRINTF_BLACKLIST} > {BLACKLIST_CONF}"
    crash["taint"], crash["tainted"] = [], None  # an untainted kernel: not enough to blame it
    assert not plan(crash, family="debian")["isolate_module"].applicable


def test_operator_can_name_the_module(crash_report: CrashReport) -> None:
    isolate = plan(crash_report.to_dict(), family="rhel", module="nvidia")["isolate_module"]
    assert isolate.reason == "module nvidia: named by the operator"
    assert shells(isolate)[0] == (
        r"printf 'blacklist %s\ninstall %s /bin/false\n' nvidia nvidia"
        " > /etc/modprobe.d/crashcart-blacklist-nvidia.conf"
    )


def test_failed_hardware_check_schedules_a_replacement(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    hardware = {
        "host": "web01",
        "checks": [
            {"name": "memory", "verdict": "fail", "evidence": "EDAC MC0: 3 UE on DIMM_A1"},
            {"name": "disks", "verdict": "pass", "evidence": "SMART overall-health PASSED"},
        ],
    }
    steps = plan(crash, family="debian", hardware=hardware)
    replace = steps["replace_hardware"]
    assert replace.applicable
    assert replace.reason == "hardware checks failed: memory"
    assert replace.findings == ("memory: fail (EDAC MC0: 3 UE on DIMM_A1)",)
    assert "dmidecode -t system -t baseboard" in shells(replace)
    assert "disks: pass (SMART overall-health PASSED)" in steps["hardware_diagnostics"].findings

    passed = {"host": "web01", "checks": [{"name": "memory", "verdict": "pass"}]}
    replace = plan(crash, hardware=passed)["replace_hardware"]
    assert not replace.applicable
    assert replace.reason.startswith("no hardware check failed")


def test_machine_check_schedules_a_replacement(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    crash["kind"] = "mce"
    assert plan(crash)["replace_hardware"].reason == "the crash is a machine check"
    crash = crash_report.to_dict()
    crash["taint"].append({"letter": "M", "meaning": "machine check"})
    assert plan(crash)["replace_hardware"].applicable


def test_regression_branch(crash_report: CrashReport) -> None:
    crash = crash_report.to_dict()
    # The crash is on the known-good kernel itself: reverting would not help.
    same = plan(crash, family="debian", known_good_kernel=CRASHED)["revert_kernel"]
    assert not same.applicable
    assert "not a kernel-update regression" in same.reason
    # The operator says so, but has not said which kernel was good yet.
    told = plan(crash, family="debian", regression=True)["revert_kernel"]
    assert told.applicable and told.commands == ()
    assert "give the last known-good kernel" in told.reason


def test_step_lookup_by_id(crash_report: CrashReport) -> None:
    steps = build_runbook(crash_report.to_dict())
    assert step_by_id(steps, "configure_kdump").title == "Configure kdump"
    with pytest.raises(KeyError):
        step_by_id(steps, "nope")
