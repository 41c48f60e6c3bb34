"""Headless hardware checks: memory test, machine checks, EDAC, SMART, sensors, the BMC's SEL and
the kernel log, each a verdict (pass / warn / fail / unavailable) with the lines that decided it.

`checks` holds the checks as data, `parsers` the pure rules that turn a tool's output into a
verdict, `runner` runs them here or on the target over ssh. `crashcart hwcheck` and the TUI's
Hardware pane are the two front ends; docs/hardware.md is the operator's page.
"""

from crashcart.hardware.checks import Check, InstallHint, default_checks
from crashcart.hardware.parsers import Finding, Output, Verdict
from crashcart.hardware.runner import (
    CheckResult,
    HardwareResult,
    LocalTarget,
    SshTarget,
    TargetError,
    run_checks,
    save_hardware_json,
)

__all__ = [
    "Check",
    "CheckResult",
    "Finding",
    "HardwareResult",
    "InstallHint",
    "LocalTarget",
    "Output",
    "SshTarget",
    "TargetError",
    "Verdict",
    "default_checks",
    "run_checks",
    "save_hardware_json",
]
