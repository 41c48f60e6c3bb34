"""`crashcart hwcheck`: the hardware checks, headless, here or on the target over ssh.

Exit codes: 0 when the checks ran (whatever they found), 4 with `--fail-on fail|warn` when a
verdict at or above that level was found, 2 for bad arguments or an unreachable target or BMC
(raised as InputError: cli.main prints the one line). "unavailable" never fails a run: a missing
tool says which package installs it instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from crashcart.recording import InputError
from crashcart.safetext import clean

if TYPE_CHECKING:
    from connectors.bmc import Bmc
    from crashcart.hardware.runner import CheckResult, Event, HardwareResult, Target

__all__ = ["EXIT_FOUND", "add_parser", "run"]

EXIT_FOUND = 4  # --fail-on: a verdict at or above the level was found
# The names of crashcart.hardware.checks.CHECK_NAMES, spelled out so that building the command
# line (every crashcart start) does not import the hardware package (a test keeps them equal).
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


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `hwcheck` to the `crashcart` subcommands (an argparse subparsers object)."""
    hw = commands.add_parser(
        "hwcheck",
        help="check the hardware: machine checks, EDAC, SMART, sensors, SEL, kernel log",
        description=(
            "Run the hardware checks on this machine or, with --ssh, on the target, and give each "
            "a verdict (pass, warn, fail, unavailable) with the lines that decided it. A missing "
            "tool is reported with the package that installs it. See docs/hardware.md."
        ),
    )
    hw.add_argument("--ssh", metavar="[USER@]HOST[:PORT]", help="run the checks there over ssh")
    hw.add_argument("--ssh-config", metavar="FILE", help="ssh client configuration (ssh -F)")
    hw.add_argument(
        "--ssh-option",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="an ssh -o option (repeatable), e.g. IdentityFile=~/.ssh/ops",
    )
    hw.add_argument(
        "--bmc", metavar="ipmi://USER@HOST[:PORT]", help="also read and judge the BMC's SEL"
    )
    hw.add_argument(
        "--password-file", metavar="FILE", help="BMC password (else $CRASHCART_IPMI_PASSWORD)"
    )
    hw.add_argument(
        "--memtester",
        metavar="SIZE[,PASSES]",
        help="also test SIZE of memory with memtester (e.g. 1G,2); not run otherwise",
    )
    hw.add_argument(
        "--only", metavar="NAME[,NAME...]", help=f"run only these checks: {', '.join(CHECK_NAMES)}"
    )
    hw.add_argument("--json", action="store_true", help="print one JSON object (docs/hardware.md)")
    hw.add_argument(
        "--fail-on",
        choices=("fail", "warn"),
        help="exit 4 when a check's verdict is at least this bad",
    )
    hw.add_argument("--incident", metavar="DIR", help="save the result as DIR/hardware.json")
    hw.add_argument(
        "-v", "--verbose", action="store_true", help="show the tools' output live on stderr"
    )
    return hw


def run(args: argparse.Namespace) -> int:
    from crashcart.hardware.checks import default_checks, parse_memtester_spec
    from crashcart.hardware.parsers import Verdict
    from crashcart.hardware.runner import run_checks, save_hardware_json

    only = _only(args.only, args.memtester, args.bmc)
    memtester = parse_memtester_spec(args.memtester) if args.memtester else None
    incident = Path(args.incident) if args.incident else None
    if incident is not None and not incident.is_dir():
        raise InputError(f"--incident {args.incident}: no such folder")
    target = _target(args)
    bmc = _bmc(args.bmc, args.password_file) if args.bmc else None
    try:
        checks = default_checks(memtester=memtester, bmc=bmc, only=only)
        report = _Report(sys.stdout, sys.stderr, json_out=args.json, verbose=args.verbose)
        report.header(target)
        result = run_checks(checks, target, on_event=report.event)
    finally:
        if bmc is not None:
            bmc.close()
    report.footer(result)
    if incident is not None:
        try:
            save_hardware_json(incident, result)
        except OSError as exc:
            raise InputError(f"--incident {args.incident}: {exc.strerror or exc}") from None
    if args.fail_on:
        level = Verdict(args.fail_on)
        if any(check.verdict.rank >= level.rank for check in result.checks):
            return EXIT_FOUND
    return 0


def _only(spec: str | None, memtester: str | None, bmc: str | None) -> list[str] | None:
    if spec is None:
        return None
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CHECK_NAMES))
    if not names or unknown:
        raise InputError(
            f"--only {spec!r}: unknown check {', '.join(unknown) or '(none given)'} "
            f"(known: {', '.join(CHECK_NAMES)})"
        )
    if "memtester" in names and not memtester:
        raise InputError("--only memtester needs --memtester SIZE[,PASSES]")
    if "ipmi-sel" in names and not bmc:
        raise InputError("--only ipmi-sel needs --bmc ipmi://USER@HOST")
    return names


def _target(args: argparse.Namespace) -> Target:
    from crashcart.hardware.runner import LocalTarget, SshTarget, TargetError

    if not args.ssh:
        if args.ssh_config or args.ssh_option:
            raise InputError("--ssh-config and --ssh-option need --ssh HOST")
        return LocalTarget()
    try:
        target = SshTarget(args.ssh, config=args.ssh_config, options=args.ssh_option)
        target.check_reachable()
    except TargetError as exc:
        raise InputError(str(exc)) from None
    return target


def _bmc(url: str, password_file: str | None) -> Bmc:
    from connectors.base import ConnectorError
    from connectors.bmc import Bmc
    from connectors.ipmi import resolve_ipmi_password

    try:
        bmc = Bmc.from_url(url, "")  # validates the URL before a password is asked for
        password = resolve_ipmi_password(password_file, prompt=True, user_at=bmc.where)
        bmc = Bmc.from_url(url, password)
        # Log in now: a wrong password or an unreachable BMC is a usage error found in seconds,
        # not an "unavailable" line after a long memory test.
        bmc.open()
    except ConnectorError as exc:
        raise InputError(str(exc)) from None
    return bmc


# -- output --------------------------------------------------------------------------------------
_VERDICT_WIDTH = len("UNAVAILABLE")
_COMMAND_WIDTH = 60


class _Report:
    """Text results as each check finishes (or one JSON object at the end)."""

    def __init__(self, out: TextIO, err: TextIO, *, json_out: bool, verbose: bool) -> None:
        self.out, self.err = out, err
        self.json, self.verbose = json_out, verbose
        self.progress_shown = False
        self.live = err.isatty()

    def header(self, target: Target) -> None:
        if not self.json:
            how = "this machine" if target.via == "local" else "over ssh"
            self.out.write(f"Hardware checks on {clean(target.host)} ({how})\n")
            self.out.flush()

    def event(self, event: Event) -> None:
        from crashcart.hardware.runner import CheckFinished, CheckProgress, OutputLine

        if isinstance(event, OutputLine) and self.verbose:
            self._clear_progress()
            self.err.write(f"  [{event.check}] {event.text}\n")
        elif isinstance(event, CheckProgress) and self.live:
            self.err.write(f"\r  {event.check}: {event.done}/{event.total} tests ")
            self.progress_shown = True
        elif isinstance(event, CheckFinished) and not self.json:
            self._clear_progress()
            self.out.write(_render(event.result))
            self.out.flush()
        self.err.flush()

    def _clear_progress(self) -> None:
        if self.progress_shown:
            self.err.write("\r\x1b[K")
            self.progress_shown = False

    def footer(self, result: HardwareResult) -> None:
        if self.json:
            # ensure_ascii: evidence quotes the target's output; escaped, it cannot drive the
            # terminal the JSON is printed on.
            self.out.write(json.dumps(result.to_dict(), indent=2) + "\n")
        else:
            from crashcart.hardware.parsers import Verdict

            counts = {v: sum(1 for c in result.checks if c.verdict is v) for v in Verdict}
            parts = ", ".join(f"{counts[v]} {v.value}" for v in Verdict)
            self.out.write(f"{len(result.checks)} checks: {parts}\n")
        self.out.flush()


def _render(result: CheckResult) -> str:
    head = f"{result.verdict.value.upper():<{_VERDICT_WIDTH}}  {result.name}"
    command = clean(result.command)
    if len(command) > _COMMAND_WIDTH:  # the edac and sensor scripts; --json has them whole
        command = command[: _COMMAND_WIDTH - 3] + "..."
    lines = [f"{head}  ({command})"]
    indent = " " * (_VERDICT_WIDTH + 4)
    lines += [f"{indent}{clean(line)}" for line in result.evidence]
    return "\n".join(lines) + "\n"
