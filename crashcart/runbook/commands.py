"""The commands of a runbook step: exact text per distribution family, from checked values.

Every value that reaches a command here came from somewhere an attacker can write: a module name
or kernel version parsed out of console text (a hostile log, a compromised box printing a fake
oops), or a field an operator typed. Each one is checked against what such a value can really look
like before it is used, and is then shell-quoted anyway: a refused value raises `UnsafeValue`
with one line saying which value and why, so the step can show that instead of a command.

A command is data (`Command`): the exact line shown to the operator, where it runs, and, when it is
a single program without shell syntax, the same as an argv. Nothing here runs anything; see
`execute.py`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_CRASHKERNEL",
    "Command",
    "Distro",
    "Family",
    "UnsafeValue",
    "Where",
    "analyse_commands",
    "blacklist_module",
    "block_device",
    "boot_previous_kernel",
    "crashkernel_value",
    "debian_grub_entry",
    "detect_distro",
    "evidence_commands",
    "grub_entry",
    "hardware_commands",
    "hold_kernel",
    "kdump_commands",
    "kernel_version",
    "module_name",
    "parse_os_release",
    "replacement_commands",
    "rescue_commands",
    "ssh_host",
]

Family = Literal["debian", "rhel"]
FAMILIES: tuple[Family, ...] = ("debian", "rhel")
# target: the crashed machine's own system (booted, or entered with `chroot /mnt` from a rescue
# system); rescue: the rescue system itself, before the installed one is mounted.
Where = Literal["target", "rescue"]

# A middle ground that fits machines from 1 GiB up (RHEL 9's own default on x86_64): below 1 GiB
# nothing is reserved, a large machine gets enough room for makedumpfile.
DEFAULT_CRASHKERNEL = "1G-4G:192M,4G-64G:256M,64G-:512M"
EVIDENCE_DIR = "/root/crashcart-evidence"
KDUMP_GRUB_DROPIN = "/etc/default/grub.d/crashcart-kdump.cfg"


class UnsafeValue(ValueError):
    """A value refused before it entered a command. `str(err)` is one line: which value, why."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a step, exactly as shown, typed into a console or sent over ssh."""

    shell: str  # the line itself (POSIX shell syntax, one line)
    where: Where
    purpose: str  # what it does, in a few words
    argv: tuple[str, ...] | None = None  # the same command as an argv, when it is one program

    def to_dict(self) -> dict[str, Any]:
        return {
            "shell": self.shell,
            "argv": list(self.argv) if self.argv is not None else None,
            "where": self.where,
            "purpose": self.purpose,
        }


def _program(where: Where, purpose: str, *argv: str) -> Command:
    return Command(shlex.join(argv), where, purpose, tuple(argv))


def _shell(where: Where, purpose: str, line: str) -> Command:
    return Command(line, where, purpose)


# -- checks --------------------------------------------------------------------------------------

_MODULE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_KERNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_CRASHKERNEL = re.compile(r"[0-9][0-9A-Za-z:,@-]*")
_DEVICE = re.compile(r"/dev/[A-Za-z0-9][A-Za-z0-9/_.:+-]*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])"
)
# MODULE_NAME_LEN is 64 - sizeof(unsigned long), NUL included; __NEW_UTS_LEN is 64.
MAX_MODULE = 55
MAX_KERNEL = 64


def _refuse(what: str, value: object, why: str) -> UnsafeValue:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return UnsafeValue(f"refused {what} {shown}: {why}")


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise _refuse(what, value, "not a string")
    if not value:
        raise _refuse(what, value, "empty")
    return value


def module_name(value: object) -> str:
    """A kernel module name: letters, digits, `_` and `-`, not starting with `-`."""
    text = _text("module name", value)
    if len(text) > MAX_MODULE:
        raise _refuse("module name", value, f"longer than the kernel's {MAX_MODULE} characters")
    if text.startswith("-"):
        raise _refuse("module name", value, "starts with '-' (would be read as an option)")
    if not _MODULE.fullmatch(text):
        raise _refuse("module name", value, "a module name is letters, digits, '_' and '-' only")
    return text


def kernel_version(value: object) -> str:
    """A kernel release as `uname -r` prints it (`6.1.0-28-amd64`, `5.14.0-362.el9.x86_64`)."""
    text = _text("kernel version", value)
    if len(text) > MAX_KERNEL:
        raise _refuse("kernel version", value, f"longer than the kernel's {MAX_KERNEL} characters")
    if text.startswith("-"):
        raise _refuse("kernel version", value, "starts with '-' (would be read as an option)")
    if not _KERNEL.fullmatch(text):
        raise _refuse(
            "kernel version", value, "a kernel version is letters, digits, '.', '_', '+', '-' only"
        )
    if ".." in text:
        # It becomes part of paths (/lib/modules/VERSION, /boot/vmlinuz-VERSION).
        raise _refuse("kernel version", value, "contains '..'")
    return text


def crashkernel_value(value: object) -> str:
    """A `crashkernel=` value: `256M`, `512M-:192M`, `1G-4G:192M,4G-:256M`, `256M@16M`."""
    text = _text("crashkernel value", value)
    if len(text) > 100 or not _CRASHKERNEL.fullmatch(text):
        raise _refuse(
            "crashkernel value",
            value,
            "expected a size or size ranges such as 256M or 1G-4G:192M,4G-:256M",
        )
    return text


def block_device(value: object) -> str:
    """A block device path for the rescue mount: `/dev/sda2`, `/dev/mapper/vg-root`."""
    text = _text("block device", value)
    if len(text) > 200 or not _DEVICE.fullmatch(text):
        raise _refuse("block device", value, "expected a path under /dev/ such as /dev/sda2")
    if "/../" in text or text.endswith("/..") or "/./" in text:
        raise _refuse("block device", value, "contains '..' or '.' path parts")
    return text


def grub_entry(value: object) -> str:
    """A GRUB menu entry title or `submenu>entry` path, as grub-reboot takes it."""
    text = _text("GRUB menu entry", value)
    if len(text) > 300:
        raise _refuse("GRUB menu entry", value, "longer than 300 characters")
    if text.startswith("-"):
        raise _refuse("GRUB menu entry", value, "starts with '-' (would be read as an option)")
    if not text.isprintable():
        raise _refuse("GRUB menu entry", value, "contains control characters")
    return text


def ssh_host(value: object) -> str:
    """An ssh destination: `host`, `user@host`, `user@[2001:db8::1]`; never an option."""
    text = _text("ssh host", value)
    if text.startswith("-"):
        raise _refuse("ssh host", value, "starts with '-' (would be read as an option)")
    if len(text) > 255 or not _HOST.fullmatch(text):
        raise _refuse("ssh host", value, "expected host or user@host")
    return text


# -- distributions -------------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value pairs of an /etc/os-release (shell-style quoting, comments ignored)."""
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        fields[key.strip()] = "".join(parts)
    return fields


_DEBIAN_IDS = frozenset({"debian", "ubuntu", "linuxmint", "pop", "raspbian", "kali", "devuan"})
_RHEL_IDS = frozenset({"rhel", "fedora", "rocky", "almalinux", "centos", "ol", "cloudlinux"})
# How grub-mkconfig (10_linux) names the entries: OS is "$GRUB_DISTRIBUTOR GNU/Linux", except
# for Ubuntu, and GRUB_DISTRIBUTOR is `lsb_release -i -s`.
_GRUB_OS = {"debian": "Debian GNU/Linux", "ubuntu": "Ubuntu"}


@dataclass(frozen=True, slots=True)
class Distro:
    """The target's distribution: its family (which commands) and os-release ID (menu names)."""

    family: Family
    os_id: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown distribution family {self.family!r}: debian or rhel")

    @property
    def grub_os(self) -> str | None:
        """The OS name in GRUB's menu entries, when it can be known from the ID alone."""
        if self.family != "debian":
            return None
        return _GRUB_OS.get(self.os_id or "debian")


def detect_distro(os_release: str) -> Distro | None:
    """The family from /etc/os-release text (ID, then ID_LIKE); None when it is neither."""
    fields = parse_os_release(os_release)
    os_id = fields.get("ID", "").lower()
    if os_id in _DEBIAN_IDS:
        return Distro("debian", os_id)
    if os_id in _RHEL_IDS:
        return Distro("rhel", os_id)
    like = set(fields.get("ID_LIKE", "").lower().split())
    if like & {"debian", "ubuntu"}:
        return Distro("debian", os_id)
    if like & {"rhel", "fedora", "centos"}:
        return Distro("rhel", os_id)
    return None


def debian_grub_entry(distro: Distro, version: str) -> str | None:
    """`Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux VERSION`."""
    os_name = distro.grub_os
    if os_name is None:
        return None
    return f"Advanced options for {os_name}>{os_name}, with Linux {kernel_version(version)}"


# -- builders, one per step ----------------------------------------------------------------------


def evidence_commands() -> list[Command]:
    d = EVIDENCE_DIR
    return [
        _program("target", "a private folder for the evidence", "mkdir", "-p", "-m", "0700", d),
        _program(
            "target",
            "what the dying kernel left: pstore records, archived pstore, kdump vmcores",
            "ls",
            "-la",
            "/sys/fs/pstore",
            "/var/lib/systemd/pstore",
            "/var/crash",
        ),
        _shell(
            "target",
            "the previous boot's kernel log (persistent journal only)",
            f"journalctl -k -b -1 --no-pager > {d}/kernel-previous-boot.log",
        ),
        _program(
            "target", "copy the pstore records", "cp", "-a", "/sys/fs/pstore", f"{d}/sys-fs-pstore"
        ),
        _program(
            "target",
            "copy the records systemd-pstore archived",
            "cp",
            "-a",
            "/var/lib/systemd/pstore",
            f"{d}/systemd-pstore",
        ),
    ]


def rescue_commands(root_device: str | None) -> list[Command]:
    commands = [
        _program("rescue", "find the installed system's root filesystem", "lsblk", "-f"),
        _program("rescue", "activate LVM volume groups (if the root is on LVM)", "vgchange", "-ay"),
    ]
    if root_device is not None:
        device = block_device(root_device)
        commands.append(_program("rescue", "mount the installed root", "mount", device, "/mnt"))
    commands += [
        _program(
            "rescue",
            "the boots the installed system's journal holds",
            "journalctl",
            "-D",
            "/mnt/var/log/journal",
            "--list-boots",
        ),
        # With -D, -0 is the last boot in those files (the one that crashed), not the rescue's.
        _program(
            "rescue",
            "the kernel log of the installed system's last boot",
            "journalctl",
            "-D",
            "/mnt/var/log/journal",
            "-k",
            "-b",
            "-0",
            "--no-pager",
        ),
        _program(
            "rescue",
            "pstore records and vmcores kept on the installed system",
            "ls",
            "-la",
            "/mnt/var/lib/systemd/pstore",
            "/mnt/var/crash",
        ),
        _shell(
            "rescue",
            "bind /dev, /proc and /sys for a chroot",
            "for d in dev proc sys; do mount --rbind /$d /mnt/$d; done",
        ),
        _program(
            "rescue", "enter the installed system (later steps run in here)", "chroot", "/mnt"
        ),
    ]
    return commands


def analyse_commands(
    distro: Distro | None, module: str | None, kernel: str | None
) -> list[Command]:
    """Commands to confirm the analysis; `module` and `kernel` are checked here (UnsafeValue)."""
    commands = [
        _program("target", "the kernel running now", "uname", "-r"),
        _program(
            "target",
            "warnings and errors the kernel printed before the crash",
            "journalctl",
            "-k",
            "-b",
            "-1",
            "-p",
            "warning",
            "--no-pager",
        ),
    ]
    if module is not None:
        name = module_name(module)
        version = kernel_version(kernel) if kernel is not None else None
        info = ("modinfo", "-k", version, name) if version else ("modinfo", name)
        commands.append(_program("target", "where the module comes from and who built it", *info))
        if distro is not None:
            owner = "dpkg -S" if distro.family == "debian" else "rpm -qf"
            where = shlex.join(
                ("modinfo", "-k", version, "-n", name) if version else ("modinfo", "-n", name)
            )
            commands.append(
                _shell(
                    "target",
                    "which package installed the module file (none: built by hand or by DKMS)",
                    f'{owner} "$({where})"',
                )
            )
    if distro is not None and distro.family == "debian":
        commands.append(
            _shell(
                "target",
                "when kernels and modules were installed or upgraded",
                "zgrep -hE ' (install|upgrade) (linux-image|linux-modules|.*-dkms)' "
                "/var/log/dpkg.log*",
            )
        )
    elif distro is not None:
        commands.append(
            _program(
                "target",
                "installed kernels, newest first, with dates",
                "rpm",
                "-q",
                "--last",
                "kernel",
            )
        )
    return commands


def blacklist_module(distro: Distro, module: str) -> list[Command]:
    """Keep `module` from loading (even as a dependency), then rebuild the initramfs."""
    name = module_name(module)
    conf = f"/etc/modprobe.d/crashcart-blacklist-{name}.conf"
    write = shlex.join(("printf", r"blacklist %s\ninstall %s /bin/false\n", name, name))
    if distro.family == "debian":
        rebuild = _program(
            "target",
            "rebuild every initramfs so early boot obeys it",
            "update-initramfs",
            "-u",
            "-k",
            "all",
        )
    else:
        rebuild = _program(
            "target",
            "rebuild every initramfs so early boot obeys it",
            "dracut",
            "-f",
            "--regenerate-all",
        )
    return [
        _shell("target", f"blacklist {name} and refuse to load it", f"{write} > {conf}"),
        rebuild,
        _program("target", "check: prints 'install /bin/false'", "modprobe", "-n", "-v", name),
    ]


def boot_previous_kernel(distro: Distro, version: str, entry: str | None = None) -> list[Command]:
    """Boot the known-good kernel `version` (Debian: one-shot, RHEL: as the default)."""
    good = kernel_version(version)
    if distro.family == "rhel":
        image = f"/boot/vmlinuz-{good}"
        return [
            _program(
                "target", "make the known-good kernel the default", "grubby", "--set-default", image
            ),
            _program("target", f"check: prints {image}", "grubby", "--default-kernel"),
        ]
    title = grub_entry(entry) if entry is not None else debian_grub_entry(distro, good)
    commands = [
        _shell(
            "target",
            "the menu entries GRUB knows (the known-good one must be there)",
            "awk -F\"'\" '/(menuentry|submenu) /{print $2}' /boot/grub/grub.cfg",
        ),
        _program(
            "target", "grub-reboot needs GRUB_DEFAULT=saved", "mkdir", "-p", "/etc/default/grub.d"
        ),
        _shell(
            "target",
            "grub-reboot needs GRUB_DEFAULT=saved",
            "printf 'GRUB_DEFAULT=saved\\n' > /etc/default/grub.d/crashcart-saved-default.cfg",
        ),
        _program("target", "regenerate grub.cfg", "update-grub"),
    ]
    if title is not None:
        commands.append(
            _program("target", "boot the known-good kernel next time (once)", "grub-reboot", title)
        )
        commands.append(
            _program(
                "target",
                "after it booted well: keep it as the default",
                "grub-set-default",
                title,
            )
        )
    return commands


def hold_kernel(distro: Distro, version: str) -> list[Command]:
    """Keep the package manager from removing the known-good kernel or moving past it."""
    good = kernel_version(version)
    if distro.family == "debian":
        return [
            _program(
                "target",
                "keep apt (autoremove, upgrades) from touching the known-good kernel",
                "apt-mark",
                "hold",
                f"linux-image-{good}",
            ),
            _program("target", "check: lists the held package", "apt-mark", "showhold"),
        ]
    # `kernel` is a meta-package on RHEL 8+: kernel-core carries the image and kernel-modules the
    # drivers, and each is installed and upgraded on its own, so all three are locked.
    return [
        _program(
            "target",
            "the versionlock plugin (built into dnf5)",
            "dnf",
            "install",
            "-y",
            "dnf-command(versionlock)",
        ),
        _program(
            "target",
            "lock the kernel packages to the known-good version",
            "dnf",
            "versionlock",
            "add",
            f"kernel-{good}",
            f"kernel-core-{good}",
            f"kernel-modules-{good}",
        ),
        _program("target", "check: lists the locks", "dnf", "versionlock", "list"),
    ]


def hardware_commands(distro: Distro | None) -> list[Command]:
    commands: list[Command] = []
    if distro is not None:
        installer = ("apt-get",) if distro.family == "debian" else ("dnf",)
        commands.append(
            _program(
                "target", "the memory/CPU error collector", *installer, "install", "-y", "rasdaemon"
            )
        )
    commands += [
        _program(
            "target", "corrected and uncorrected errors per DIMM and CPU", "ras-mc-ctl", "--summary"
        ),
        _program("target", "each recorded hardware error", "ras-mc-ctl", "--errors"),
        _program(
            "target",
            "machine checks and EDAC reports in the crashed boot",
            "journalctl",
            "-k",
            "-b",
            "-1",
            "--no-pager",
            "--grep=mce|machine check|edac|hardware error",
        ),
        _program(
            "target",
            "the BMC's event log (DIMM, PSU, CPU, temperature events)",
            "ipmitool",
            "sel",
            "elist",
        ),
    ]
    return commands


def replacement_commands() -> list[Command]:
    return [
        _program(
            "target",
            "serial number and model for the vendor ticket",
            "dmidecode",
            "-t",
            "system",
            "-t",
            "baseboard",
        ),
        _program("target", "the slots and part numbers of the memory", "dmidecode", "-t", "memory"),
        _program("target", "the BMC's hardware events to attach", "ipmitool", "sel", "elist"),
    ]


def kdump_commands(distro: Distro, crashkernel: str | None) -> list[Command]:
    """Reserve crash-kernel memory and enable kdump, so the next crash leaves a vmcore."""
    checks = [
        _program(
            "target",
            "pstore: a backend other than (null) keeps the last messages across a reboot",
            "cat",
            "/sys/module/pstore/parameters/backend",
        ),
        _shell(
            "target",
            "netconsole: sends kernel messages over UDP when the console is not recorded",
            "grep -o 'netconsole=[^ ]*' /proc/cmdline; ls /sys/kernel/config/netconsole",
        ),
    ]
    if distro.family == "debian":
        size = crashkernel_value(crashkernel or DEFAULT_CRASHKERNEL)
        # The drop-in is sourced by update-grub, which expands $GRUB_CMDLINE_LINUX there.
        grub_line = r'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX crashkernel=%s"\n'
        return [
            _shell(
                "target",
                "install kdump-tools",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y kdump-tools",
            ),
            _program(
                "target",
                "enable kdump-tools",
                "sed",
                "-i",
                "s/^USE_KDUMP=.*/USE_KDUMP=1/",
                "/etc/default/kdump-tools",
            ),
            _program(
                "target", "drop-in folder for GRUB settings", "mkdir", "-p", "/etc/default/grub.d"
            ),
            _shell(
                "target",
                "reserve memory for the crash kernel",
                f"{shlex.join(('printf', grub_line, size))} > {KDUMP_GRUB_DROPIN}",
            ),
            _program("target", "regenerate grub.cfg", "update-grub"),
            _program("target", "start kdump at boot", "systemctl", "enable", "kdump-tools"),
            *checks,
            _program("target", "after the reboot: says 'ready to kdump'", "kdump-config", "show"),
        ]
    reserve = (
        _program(
            "target",
            "reserve memory for the crash kernel",
            "grubby",
            "--update-kernel=ALL",
            f"--args=crashkernel={crashkernel_value(crashkernel)}",
        )
        if crashkernel is not None
        else _program(
            "target",
            "reserve the distribution's recommended crash-kernel memory",
            "kdumpctl",
            "reset-crashkernel",
            "--kernel=ALL",
        )
    )
    return [
        _program("target", "install kexec-tools (kdump)", "dnf", "install", "-y", "kexec-tools"),
        reserve,
        _program(
            "target",
            "start kdump (now, if memory is reserved, and at boot)",
            "systemctl",
            "enable",
            "--now",
            "kdump",
        ),
        *checks,
        _program("target", "after the reboot: says 'Kdump is operational'", "kdumpctl", "status"),
    ]
