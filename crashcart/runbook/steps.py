"""The recovery procedure as data, and the plan it becomes for one incident.

`PROCEDURE` is the fixed list of steps (what, why, what to look for) in the order an operator
works through them. `build_runbook()` turns it into a plan for one crash: which branches the
evidence calls for (a culprit module, failed hardware, a kernel-update regression), the findings
behind each decision, and the commands pre-filled for the box's distribution. A step the evidence
does not call for is kept, marked not applicable with the reason, so the operator sees that it was
considered. A value refused by the command checks leaves the step without that command and says
why (`refused`), rather than dropping the step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from crashcart.runbook.commands import (
    Command,
    Distro,
    UnsafeValue,
    analyse_commands,
    blacklist_module,
    boot_previous_kernel,
    evidence_commands,
    hardware_commands,
    hold_kernel,
    kdump_commands,
    kernel_version,
    module_name,
    replacement_commands,
    rescue_commands,
)
from crashcart.safetext import clean

__all__ = [
    "PROCEDURE",
    "STEP_IDS",
    "Settings",
    "Step",
    "StepSpec",
    "build_runbook",
    "culprit_module",
    "failed_checks",
    "step_by_id",
]


@dataclass(frozen=True, slots=True)
class StepSpec:
    id: str
    phase: str
    title: str
    why: str
    look_for: tuple[str, ...]


PROCEDURE: tuple[StepSpec, ...] = (
    StepSpec(
        "secure_evidence",
        "secure evidence",
        "Secure the evidence",
        "The console recording is often the only record of a crash: a dying kernel cannot write "
        "to disk. crashcart already keeps it in this incident (console.log, console.cast, "
        "oops.txt, screen.*). Before anyone reinstalls or wipes the box, also keep what the "
        "machine saved itself.",
        (
            "pstore records (dmesg-efi-*, dmesg-ramoops-*) hold the dying kernel's last messages; "
            "systemd-pstore moves them to /var/lib/systemd/pstore at the next boot",
            "a vmcore under /var/crash means kdump worked: keep it, it answers what the console "
            "cannot",
            "the previous boot's journal holds the crash only if the journal is persistent "
            "(/var/log/journal exists) and was flushed in time, which a panic often prevents",
        ),
    ),
    StepSpec(
        "rescue_collect",
        "rescue boot and collect logs",
        "Boot a rescue system and collect logs",
        "When the machine crashes again at boot or cannot mount its root, boot a rescue system "
        "(the installer's rescue mode or a live image) over the same console and read the "
        "installed system from outside, without running its kernel.",
        (
            "the root filesystem in `lsblk -f` (ext4/xfs on a partition or an LVM volume); mount "
            "it on /mnt if the mount command below is missing",
            "run the later steps' commands inside `chroot /mnt`, so they change the installed "
            "system and not the rescue system",
            "skip this step when the machine boots normally again",
        ),
    ),
    StepSpec(
        "analyse",
        "analyse",
        "Analyse the crash",
        "Decide what to blame before changing anything: the code that crashed, whether a "
        "third-party module was involved, whether the hardware reported errors, and whether it "
        "started with a kernel update.",
        (
            "the guilty function is the first frame that is not reporting machinery; frames "
            "printed with `?` are stack leftovers, not calls",
            "an out-of-tree (taint O), unsigned (E) or proprietary (P) module in the trace is the "
            "first suspect, and upstream will not look at a report from a tainted kernel",
            "machine-check, EDAC or `Hardware Error` lines before the crash point at hardware",
            "a crash that began right after an upgrade points at the new kernel or module",
        ),
    ),
    StepSpec(
        "isolate_module",
        "isolate the component",
        "Blacklist the culprit module",
        "Stop the module from loading so the machine stays up while the driver is fixed, "
        "updated or replaced: `blacklist` stops loading by alias, `install ... /bin/false` stops "
        "loading as a dependency too, and the initramfs is rebuilt because it loads modules "
        "before the root filesystem is mounted.",
        (
            "`modprobe -n -v MODULE` prints `install /bin/false`, and after the reboot the "
            "module is missing from `lsmod`",
            "for one boot only, press `e` in the GRUB menu and add `module_blacklist=MODULE` to "
            "the `linux` line",
            "a blacklisted storage or network driver can leave the machine without its disk or "
            "network: make sure the box does not need it to boot",
        ),
    ),
    StepSpec(
        "hardware_diagnostics",
        "hardware diagnostics",
        "Check the hardware",
        "Memory, CPU and board faults crash kernels in random places; no software change helps "
        "them. Check the error counters and the BMC's event log.",
        (
            "uncorrected (UE) memory errors, or corrected (CE) errors growing on one DIMM",
            "machine checks (`mce:`, `Machine check events logged`) in the kernel log",
            "BMC events for DIMMs, CPUs, power supplies, temperature or fans",
            "crashes in unrelated functions on the same machine suggest hardware too",
        ),
    ),
    StepSpec(
        "replace_hardware",
        "mitigate",
        "Schedule the hardware replacement",
        "A failing part keeps crashing whatever kernel runs. Open the vendor ticket with the "
        "serial number and the evidence, and move the workload off this machine until then.",
        (
            "the system serial number and the failing part's slot (DIMM locator, CPU socket)",
            "whether the part is under warranty, and the BMC events to attach",
        ),
    ),
    StepSpec(
        "revert_kernel",
        "mitigate",
        "Boot the previous kernel and hold it",
        "A regression in a kernel update is undone by booting the last kernel that worked and "
        "keeping the package manager from removing it or moving past it, until a fixed kernel "
        "is released.",
        (
            "after the reboot `uname -r` prints the known-good version",
            "on Debian, grub-reboot chooses the entry for the next boot only: a bad choice is "
            "undone by one more reboot; make it permanent with grub-set-default once it works",
            "remove the hold (`apt-mark unhold`, `dnf versionlock delete`) once a fixed kernel "
            "is out",
        ),
    ),
    StepSpec(
        "configure_kdump",
        "configure kdump",
        "Configure kdump",
        "The next crash should leave a vmcore: kdump boots a small crash kernel into memory "
        "reserved with `crashkernel=` and saves the dead kernel's memory to /var/crash, which "
        "answers what a console log cannot (variables, all CPUs' stacks, the whole log).",
        (
            "after the reboot `/proc/cmdline` contains crashkernel= and "
            "/sys/kernel/kexec_crash_loaded reads 1",
            "an oops that does not panic leaves no vmcore unless `kernel.panic_on_oops = 1`",
            "pstore (a backend other than `(null)`) and netconsole keep the last messages when "
            "the console is not recorded",
            "leave /var/crash enough space: a vmcore is a fraction of RAM after makedumpfile",
        ),
    ),
)

STEP_IDS: tuple[str, ...] = tuple(spec.id for spec in PROCEDURE)
_SPECS = {spec.id: spec for spec in PROCEDURE}


@dataclass(frozen=True, slots=True)
class Settings:
    """What the operator chose or told crashcart; saved in runbook.json with the progress."""

    family: str | None = None  # "debian" or "rhel"
    os_id: str | None = None  # os-release ID, e.g. "ubuntu" (GRUB's menu names depend on it)
    known_good_kernel: str | None = None  # `uname -r` of the last kernel that did not crash
    regression: bool | None = None  # "it started after a kernel update"
    module: str | None = None  # the operator names the culprit module
    crashkernel: str | None = None
    root_device: str | None = None  # for the rescue mount
    grub_entry: str | None = None  # an exact GRUB menu entry for the known-good kernel

    @property
    def distro(self) -> Distro | None:
        if self.family is None:
            return None
        return Distro(self.family, self.os_id or "")  # type: ignore[arg-type]

    def with_distro(self, distro: Distro) -> Settings:
        return Settings(**{**self.to_dict(), "family": distro.family, "os_id": distro.os_id})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """From runbook.json: unknown keys and values of the wrong type are dropped."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "regression":
                if isinstance(value, bool):
                    values[f.name] = value
            elif f.name == "family":
                if value in ("debian", "rhel"):
                    values[f.name] = value
            elif isinstance(value, str) and value:
                values[f.name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the plan for this incident."""

    spec: StepSpec
    applicable: bool
    reason: str  # why it applies, or why it is skipped
    findings: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    refused: tuple[str, ...] = ()  # values kept out of the commands, and why

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def phase(self) -> str:
        return self.spec.phase

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase": self.phase,
            "title": self.title,
            "why": self.spec.why,
            "look_for": list(self.spec.look_for),
            "applicable": self.applicable,
            "reason": self.reason,
            "findings": list(self.findings),
            "commands": [c.to_dict() for c in self.commands],
            "refused": list(self.refused),
        }


# -- evidence ------------------------------------------------------------------------------------

# Taint letters that mean a module from outside the kernel tree was loaded.
_THIRD_PARTY_TAINT = {"O": "out-of-tree", "E": "unsigned", "P": "proprietary"}
_FAIL_VERDICTS = frozenset({"fail", "failed", "failure"})


def _taint_letters(crash: Mapping[str, Any]) -> set[str]:
    letters = {
        t["letter"]
        for t in crash.get("taint") or ()
        if isinstance(t, Mapping) and isinstance(t.get("letter"), str)
    }
    if not letters and isinstance(crash.get("tainted"), str):
        letters = {ch for ch in crash["tainted"] if ch.isalpha() and ch != "G"}
    return letters


def culprit_module(crash: Mapping[str, Any]) -> tuple[str | None, str]:
    """The module to blame (as the report names it, unchecked) and how it was chosen."""
    module = crash.get("module")
    if isinstance(module, str) and module:
        return module, "the guilty frame runs in this module"
    third_party = _taint_letters(crash) & _THIRD_PARTY_TAINT.keys()
    if not third_party:
        return None, "no module on the guilty frame and no third-party module taint"
    frames = [f for f in crash.get("call_trace") or () if isinstance(f, Mapping)]
    for reliable_only in (True, False):
        for frame in frames:
            if reliable_only and frame.get("reliable") is False:
                continue
            name = frame.get("module")
            if isinstance(name, str) and name:
                kinds = ", ".join(_THIRD_PARTY_TAINT[x] for x in sorted(third_party))
                return (
                    name,
                    f"the kernel is tainted by a {kinds} module and this one is in the trace",
                )
    return None, "the kernel is tainted by a third-party module, but none is in the trace"


def failed_checks(hardware: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The checks of hardware.json whose verdict is a failure."""
    if not hardware:
        return []
    checks = hardware.get("checks")
    if not isinstance(checks, list):
        return []
    return [
        c
        for c in checks
        if isinstance(c, Mapping) and str(c.get("verdict", "")).strip().lower() in _FAIL_VERDICTS
    ]


def _check_line(check: Mapping[str, Any]) -> str:
    evidence = check.get("evidence")
    if isinstance(evidence, list):
        evidence = "; ".join(str(e) for e in evidence)
    name = check.get("name") or "unnamed check"
    return f"{name}: {check.get('verdict')}" + (f" ({evidence})" if evidence else "")


# -- the plan ------------------------------------------------------------------------------------


def _line(text: str) -> str:
    # Findings quote console text (a title, a module name): shown to the operator as one line.
    return " ".join(clean(part) for part in text.splitlines())


def _step(
    step_id: str,
    applicable: bool,
    reason: str,
    *,
    findings: tuple[str, ...] = (),
    commands: tuple[Command, ...] = (),
    refused: tuple[str, ...] = (),
) -> Step:
    return Step(
        _SPECS[step_id],
        applicable,
        _line(reason),
        tuple(_line(f) for f in findings),
        commands,
        refused,
    )


def _choose_family() -> str:
    return "choose the distribution family (debian or rhel) to get the commands"


def build_runbook(
    crash: Mapping[str, Any],
    *,
    hardware: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> list[Step]:
    """The plan for one crash (`crash`: report.json's "crash", i.e. CrashReport.to_dict())."""
    settings = settings or Settings()
    distro = settings.distro
    steps = [
        _step("secure_evidence", True, "always", commands=tuple(evidence_commands())),
        _rescue(settings),
        _analyse(crash, hardware, settings),
    ]
    steps.append(_isolate(crash, settings, distro))
    steps.append(_hardware(crash, hardware, distro))
    steps.append(_replace(crash, hardware))
    steps.append(_revert(crash, settings, distro))
    steps.append(_kdump(settings, distro))
    return steps


def _rescue(settings: Settings) -> Step:
    try:
        commands = rescue_commands(settings.root_device)
    except UnsafeValue as exc:
        return _step(
            "rescue_collect",
            True,
            "when the machine does not boot normally",
            commands=tuple(rescue_commands(None)),
            refused=(str(exc),),
        )
    return _step(
        "rescue_collect", True, "when the machine does not boot normally", commands=tuple(commands)
    )


def _analyse(
    crash: Mapping[str, Any], hardware: Mapping[str, Any] | None, settings: Settings
) -> Step:
    findings: list[str] = []
    refused: list[str] = []
    where = crash.get("function") or "an unknown function"
    findings.append(f"{crash.get('kind', 'crash')} in {where}: {crash.get('title', '')}".rstrip())
    module, how = _operator_or_culprit(crash, settings)
    if module is not None:
        findings.append(f"suspect module {module}: {how}")
    letters = _taint_letters(crash)
    if letters:
        findings.append("taint: " + " ".join(sorted(letters)))
    if crash.get("panic"):
        findings.append(f"the kernel panicked: {crash['panic']}")
    for check in failed_checks(hardware):
        findings.append(f"hardware check failed: {_check_line(check)}")
    kernel = crash.get("kernel")
    if kernel:
        findings.append(f"crashed kernel: {kernel}")
    if settings.known_good_kernel:
        findings.append(f"known-good kernel (given): {settings.known_good_kernel}")

    safe_module: str | None = None
    if module is not None:
        try:
            safe_module = module_name(module)
        except UnsafeValue as exc:
            refused.append(str(exc))
    safe_kernel: str | None = None
    if safe_module is not None and kernel is not None:
        try:
            safe_kernel = kernel_version(kernel)
        except UnsafeValue as exc:
            refused.append(str(exc))
    commands = analyse_commands(settings.distro, safe_module, safe_kernel)
    return _step(
        "analyse",
        True,
        "always",
        findings=tuple(findings),
        commands=tuple(commands),
        refused=tuple(refused),
    )


def _operator_or_culprit(crash: Mapping[str, Any], settings: Settings) -> tuple[str | None, str]:
    if settings.module:
        return settings.module, "named by the operator"
    return culprit_module(crash)


def _isolate(crash: Mapping[str, Any], settings: Settings, distro: Distro | None) -> Step:
    module, how = _operator_or_culprit(crash, settings)
    if module is None:
        return _step("isolate_module", False, f"no module to blame: {how}")
    findings = (f"culprit module {module}: {how}",)
    try:
        name = module_name(module)
    except UnsafeValue as exc:
        return _step(
            "isolate_module",
            True,
            f"module culprit, but its name cannot go into a command: {exc}",
            findings=findings,
            refused=(str(exc),),
        )
    if distro is None:
        return _step("isolate_module", True, _choose_family(), findings=findings)
    commands = blacklist_module(distro, name)
    return _step(
        "isolate_module",
        True,
        f"module {name}: {how}",
        findings=findings,
        commands=tuple(commands),
    )


def _hardware(
    crash: Mapping[str, Any], hardware: Mapping[str, Any] | None, distro: Distro | None
) -> Step:
    findings: list[str] = []
    if hardware is None:
        findings.append("no hardware checks recorded in this incident (no hardware.json)")
    else:
        checks = hardware.get("checks")
        for check in checks if isinstance(checks, list) else ():
            if isinstance(check, Mapping):
                findings.append(_check_line(check))
    if "M" in _taint_letters(crash):
        findings.append("taint M: the processor reported a machine check before this crash")
    return _step(
        "hardware_diagnostics",
        True,
        "always: a hardware fault can look like any software crash",
        findings=tuple(findings),
        commands=tuple(hardware_commands(distro)),
    )


def _replace(crash: Mapping[str, Any], hardware: Mapping[str, Any] | None) -> Step:
    failed = failed_checks(hardware)
    reasons: list[str] = []
    if failed:
        reasons.append("hardware checks failed: " + ", ".join(str(c.get("name")) for c in failed))
    if crash.get("kind") == "mce":
        reasons.append("the crash is a machine check")
    if "M" in _taint_letters(crash):
        reasons.append("the kernel is tainted by a machine check (M)")
    if not reasons:
        if hardware is None:
            why = "no hardware check has been run (no hardware.json) and nothing in the crash "
        else:
            why = "no hardware check failed and nothing in the crash "
        return _step("replace_hardware", False, why + "points at hardware")
    return _step(
        "replace_hardware",
        True,
        "; ".join(reasons),
        findings=tuple(_check_line(c) for c in failed),
        commands=tuple(replacement_commands()),
    )


def _revert(crash: Mapping[str, Any], settings: Settings, distro: Distro | None) -> Step:
    good = settings.known_good_kernel
    crashed = crash.get("kernel")
    if good is None:
        if settings.regression:
            return _step(
                "revert_kernel",
                True,
                "the operator says it started after a kernel update: give the last known-good "
                "kernel version (`uname -r` of it) to get the commands",
            )
        return _step(
            "revert_kernel",
            False,
            "no sign of a kernel-update regression: give the last known-good kernel version if "
            "the crashes started after an update",
        )
    if isinstance(crashed, str) and crashed == good and not settings.regression:
        return _step(
            "revert_kernel",
            False,
            f"the crashed kernel is the known-good one ({good}): not a kernel-update regression",
        )
    findings = (f"crashed on {crashed or 'an unknown kernel'}, known good: {good}",)
    reason = (
        f"the crash is on {crashed}, not on the known-good {good}"
        if isinstance(crashed, str) and crashed != good
        else "the operator says it started after a kernel update"
    )
    try:
        kernel_version(good)
        if distro is None:
            return _step("revert_kernel", True, _choose_family(), findings=findings)
        commands = boot_previous_kernel(distro, good, settings.grub_entry) + hold_kernel(
            distro, good
        )
    except UnsafeValue as exc:
        return _step(
            "revert_kernel",
            True,
            f"{reason}, but a value cannot go into a command: {exc}",
            findings=findings,
            refused=(str(exc),),
        )
    refused: tuple[str, ...] = ()
    if distro.family == "debian" and not any(
        c.argv and c.argv[0] == "grub-reboot" for c in commands
    ):
        refused = (
            f"no GRUB menu entry name known for {distro.os_id!r}: give the exact entry (the list "
            "command prints them)",
        )
    return _step(
        "revert_kernel",
        True,
        reason,
        findings=findings,
        commands=tuple(commands),
        refused=refused,
    )


def _kdump(settings: Settings, distro: Distro | None) -> Step:
    if distro is None:
        return _step("configure_kdump", True, _choose_family())
    try:
        commands = kdump_commands(distro, settings.crashkernel)
    except UnsafeValue as exc:
        return _step(
            "configure_kdump",
            True,
            f"always, but a value cannot go into a command: {exc}",
            refused=(str(exc),),
        )
    return _step(
        "configure_kdump",
        True,
        "always: the next crash should leave a vmcore",
        commands=tuple(commands),
    )


def step_by_id(steps: Sequence[Step], step_id: str) -> Step:
    for step in steps:
        if step.id == step_id:
            return step
    raise KeyError(step_id)
