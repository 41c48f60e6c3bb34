"""Hostile values never reach a runbook command: each place a value enters one is checked.

A module name or kernel version comes out of console text, which a broken or compromised machine
writes as it likes; the operator's own fields can be mistyped. Each check refuses shell
metacharacters, `../`, newlines and option injection (`-rf`), and the step says why instead of
offering a command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crashcart.kernel import analyze_bytes
from crashcart.runbook import Settings, UnsafeValue, build_runbook, run_over_ssh
from crashcart.runbook.commands import (
    Command,
    block_device,
    crashkernel_value,
    grub_entry,
    kernel_version,
    module_name,
    ssh_host,
)
from crashcart.runbook.steps import Step

CAPTURE = "gpf_list_poison_panic"

# Shell metacharacters, path traversal, newlines, option injection, and a few more.
HOSTILE_COMMON = [
    "x; rm -rf /",
    "$(reboot)",
    "`reboot`",
    "a|b",
    "a&&b",
    "a b",
    "a\nb",
    "crashme\n",
    "a\rb",
    "-rf",
    "--help",
    "../../etc",
    "",
    "\x1b[2J",
    "a'b",
    'a"b',
]


def _all(base: list[str], *extra: str) -> list[str]:
    return [*base, *extra]


CHECKS: list[tuple[Callable[[object], str], list[str], list[str]]] = [
    (
        module_name,
        _all(HOSTILE_COMMON, "x" * 56, "crash.me", "a/b", "é"),
        ["crashme", "vendor_blob", "snd-hda-intel", "nvidia_uvm", "x" * 55],
    ),
    (
        kernel_version,
        _all(HOSTILE_COMMON, "..", "6.1..0", "6.1/../../etc", "." * 3, "1" * 65),
        ["6.1.0-56-amd64", "5.14.0-362.8.1.el9_3.x86_64", "6.8.0+", "5.15.0-91-generic"],
    ),
    (
        crashkernel_value,
        _all(HOSTILE_COMMON, "256M quiet", "256M\\"),
        ["256M", "512M-:192M", "1G-4G:192M,4G-64G:256M,64G-:512M", "256M@16M"],
    ),
    (
        block_device,
        _all(HOSTILE_COMMON, "/dev/../etc/shadow", "/dev/sda/..", "sda", "/dev/sda;reboot"),
        ["/dev/sda2", "/dev/mapper/vg0-root", "/dev/nvme0n1p3", "/dev/disk/by-uuid/1a-2b"],
    ),
    (
        ssh_host,
        _all(HOSTILE_COMMON, "-oProxyCommand=sh", "root@-oProxyCommand=x", "a:b"),
        ["web01", "root@web01.example.com", "admin@10.0.0.5", "root@[2001:db8::1]"],
    ),
]


@pytest.mark.parametrize(
    ("check", "value"),
    [(check, value) for check, bad, _ in CHECKS for value in bad],
    ids=lambda v: getattr(v, "__name__", repr(v)),
)
def test_hostile_values_are_refused(check: Callable[[object], str], value: str) -> None:
    with pytest.raises(UnsafeValue) as caught:
        check(value)
    message = str(caught.value)
    assert message.startswith("refused ")
    assert "\n" not in message and "\r" not in message and "\x1b" not in message


@pytest.mark.parametrize(
    ("check", "value"),
    [(check, value) for check, _, good in CHECKS for value in good],
    ids=lambda v: getattr(v, "__name__", repr(v)),
)
def test_real_values_pass(check: Callable[[object], str], value: str) -> None:
    assert check(value) == value


@pytest.mark.parametrize("value", ["-rf", "--set-default", "a\nb", "x\x1b[2J", "e\tf"])
def test_grub_entries_refuse_options_and_controls(value: str) -> None:
    with pytest.raises(UnsafeValue):
        grub_entry(value)


def test_grub_entries_may_hold_quotes_which_are_quoted() -> None:
    # Titles are free text; shell quoting, not a character list, keeps them one argument.
    assert grub_entry("Debian GNU/Linux, with Linux 6.1 (it's fine)").startswith("Debian")


def test_non_strings_are_refused() -> None:
    for check, _, _ in CHECKS:
        with pytest.raises(UnsafeValue, match="not a string"):
            check(["crashme"])


# -- the plan keeps them out ---------------------------------------------------------------------


@pytest.fixture
def crash(qemu_corpus: Path) -> dict[str, Any]:
    return analyze_bytes((qemu_corpus / f"{CAPTURE}.log").read_bytes())[0].to_dict()


def all_command_text(steps: list[Step]) -> str:
    return "\n".join(c.shell + " " + " ".join(c.argv or ()) for s in steps for c in s.commands)


HOSTILE_MODULES = ["x; rm -rf /", "../../etc", "-rf", "a\nb"]


@pytest.mark.parametrize("family", ["debian", "rhel"])
@pytest.mark.parametrize("module", HOSTILE_MODULES)
def test_hostile_module_from_the_report_is_refused(
    crash: dict[str, Any], module: str, family: str
) -> None:
    crash["module"] = module
    steps = build_runbook(crash, settings=Settings(family=family))
    isolate = next(s for s in steps if s.id == "isolate_module")
    assert isolate.applicable  # the evidence still says "module": the operator must see why not
    assert isolate.commands == ()
    assert isolate.refused and isolate.refused[0].startswith("refused module name")
    assert "cannot go into a command" in isolate.reason
    analyse = next(s for s in steps if s.id == "analyse")
    assert any(r.startswith("refused module name") for r in analyse.refused)
    text = all_command_text(steps)
    assert module not in text
    assert "rm -rf" not in text and "/etc/modprobe.d" not in text
    # What is shown about it stays one line each.
    shown = [s.reason for s in steps] + [f for s in steps for f in s.findings]
    assert not any("\n" in line for line in shown)


@pytest.mark.parametrize("module", HOSTILE_MODULES)
def test_hostile_module_in_a_trace_frame_is_refused(crash: dict[str, Any], module: str) -> None:
    crash["module"] = None
    for frame in crash["call_trace"]:
        if frame["module"]:
            frame["module"] = module
    steps = build_runbook(crash, settings=Settings(family="debian"))
    isolate = next(s for s in steps if s.id == "isolate_module")
    assert isolate.commands == () and isolate.refused
    assert module not in all_command_text(steps)


@pytest.mark.parametrize("module", HOSTILE_MODULES)
def test_hostile_module_named_by_the_operator_is_refused(
    crash: dict[str, Any], module: str
) -> None:
    steps = build_runbook(crash, settings=Settings(family="debian", module=module))
    isolate = next(s for s in steps if s.id == "isolate_module")
    assert isolate.commands == () and isolate.refused
    assert module not in all_command_text(steps)


def test_option_injection_from_real_console_text_is_refused(qemu_corpus: Path) -> None:
    # The console prints `[-rf]` where the module name belongs; the parser takes it as one.
    data = (qemu_corpus / f"{CAPTURE}.log").read_bytes().replace(b"[crashme]", b"[-rf]")
    report = analyze_bytes(data)[0]
    assert report.module == "-rf"
    steps = build_runbook(report.to_dict(), settings=Settings(family="debian"))
    isolate = next(s for s in steps if s.id == "isolate_module")
    assert isolate.commands == ()
    assert "starts with '-'" in isolate.refused[0]
    assert "-rf" not in all_command_text(steps)


@pytest.mark.parametrize("kernel", ["6.1; reboot", "../../etc", "..", "-rf", "6.1\n-28"])
def test_hostile_kernel_version_from_the_report_is_refused(
    crash: dict[str, Any], kernel: str
) -> None:
    crash["kernel"] = kernel
    steps = build_runbook(crash, settings=Settings(family="debian"))
    analyse = next(s for s in steps if s.id == "analyse")
    assert any(r.startswith("refused kernel version") for r in analyse.refused)
    # The module is still looked at, just not for that kernel.
    assert "modinfo crashme" in [c.shell for c in analyse.commands]
    assert kernel not in all_command_text(steps)


@pytest.mark.parametrize("family", ["debian", "rhel"])
@pytest.mark.parametrize("good", ["6.1; reboot", "../../etc", "-rf", "6.1\n-28", "$(id)"])
def test_hostile_known_good_kernel_is_refused(
    crash: dict[str, Any], good: str, family: str
) -> None:
    steps = build_runbook(crash, settings=Settings(family=family, known_good_kernel=good))
    revert = next(s for s in steps if s.id == "revert_kernel")
    assert revert.applicable and revert.commands == ()
    assert revert.refused[0].startswith("refused kernel version")
    assert good not in all_command_text(steps)


@pytest.mark.parametrize("entry", ["-rf", "a\nb", "x\x1b[2J"])
def test_hostile_grub_entry_is_refused(crash: dict[str, Any], entry: str) -> None:
    settings = Settings(family="debian", known_good_kernel="6.1.0-28-amd64", grub_entry=entry)
    revert = next(s for s in build_runbook(crash, settings=settings) if s.id == "revert_kernel")
    assert revert.commands == ()
    assert revert.refused[0].startswith("refused GRUB menu entry")


@pytest.mark.parametrize("family", ["debian", "rhel"])
@pytest.mark.parametrize("size", ["256M; reboot", "-rf", "256M\n", "../x"])
def test_hostile_crashkernel_is_refused(crash: dict[str, Any], size: str, family: str) -> None:
    steps = build_runbook(crash, settings=Settings(family=family, crashkernel=size))
    kdump = next(s for s in steps if s.id == "configure_kdump")
    assert kdump.commands == ()
    assert kdump.refused[0].startswith("refused crashkernel value")


@pytest.mark.parametrize("device", ["/dev/sda; reboot", "-rf", "/dev/../etc", "/dev/sda\n"])
def test_hostile_root_device_is_refused(crash: dict[str, Any], device: str) -> None:
    steps = build_runbook(crash, settings=Settings(root_device=device))
    rescue = next(s for s in steps if s.id == "rescue_collect")
    assert rescue.refused[0].startswith("refused block device")
    assert "lsblk -f" in [c.shell for c in rescue.commands]  # the rest of the step stays
    assert not any(c.shell.startswith("mount /dev") for c in rescue.commands)


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/pwned", "web01; reboot", "a\nb"])
def test_hostile_ssh_host_is_refused_before_asking(host: str) -> None:
    asked: list[Command] = []

    def confirm(command: Command, action: str) -> bool:
        asked.append(command)
        return True

    command = Command("uname -r", "target", "test", ("uname", "-r"))
    with pytest.raises(UnsafeValue, match="refused ssh host"):
        run_over_ssh(command, host, confirm, ssh=("/nonexistent/ssh",))
    assert asked == []
