"""Run hardware checks on this machine or on the target over ssh, streaming as they go.

Each command runs in its own process group with its output read line by line as it arrives:
`on_event` gets every line (`OutputLine`), memtester's progress (`CheckProgress`) and each
verdict (`CheckFinished`) live, so a pane can show a long test moving. Setting the `cancel`
event stops the running command (its whole process group: SIGTERM, then SIGKILL) and skips the
rest; Ctrl-C does the same on the way out. The functions block: async code runs them in a
worker thread (`await asyncio.to_thread(run_checks, ...)`), and a UI marshals the events back.

Over ssh the system `ssh` runs with BatchMode (keys from the agent or ~/.ssh/config, never a
password prompt), and the remote command line is the check's fixed argv joined with
shlex.quote. A tool the target lacks comes back as exit status 127 from `env`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crashcart.hardware.checks import Check, InstallHint
from crashcart.hardware.parsers import Finding, Output, Verdict, overstrike, worst
from crashcart.recorder import open_private
from crashcart.safetext import clean

__all__ = [
    "CheckFinished",
    "CheckProgress",
    "CheckResult",
    "CheckStarted",
    "Event",
    "HardwareResult",
    "LocalTarget",
    "OutputLine",
    "SshTarget",
    "Target",
    "TargetError",
    "parse_ssh_destination",
    "run_checks",
    "save_hardware_json",
]

PASSWORD_ENV = "CRASHCART_IPMI_PASSWORD"  # never handed to a child process
# Where packages put these tools; sbin is missing from a normal user's PATH and from the PATH of
# a non-interactive ssh session on Debian, and smartctl, memtester and ras-mc-ctl live there.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_KEPT = 8 << 20  # bytes of a stream kept for the parser (the newest, if a tool prints more)
MAX_LINE = 1 << 20  # a "line" without a newline is cut here (memtester's spinner is ~15 KiB)
_POLL = 0.1  # seconds between looks at the cancel flag
_TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL

HARDWARE_JSON = "hardware.json"


class TargetError(Exception):
    """The target cannot be reached or named: a one-line reason."""


# -- events --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckStarted:
    check: str
    command: str


@dataclass(frozen=True, slots=True)
class OutputLine:
    check: str
    stream: str  # "stdout" or "stderr"
    text: str  # as a terminal would show it, control characters removed


@dataclass(frozen=True, slots=True)
class CheckProgress:
    check: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    verdict: Verdict
    evidence: tuple[str, ...]
    command: str
    install_hint: InstallHint | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "evidence": list(self.evidence),
            "command": self.command,
            "install_hint": self.install_hint.to_dict() if self.install_hint else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class CheckFinished:
    result: CheckResult


Event = CheckStarted | OutputLine | CheckProgress | CheckFinished


@dataclass(frozen=True, slots=True)
class HardwareResult:
    host: str
    via: str  # "local" or "ssh"
    started: float
    checks: tuple[CheckResult, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        return worst(check.verdict for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "via": self.via,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "checks": [check.to_dict() for check in self.checks],
        }


# -- targets -------------------------------------------------------------------------------------
class Target:
    host: str = ""
    via: str = ""
    remote: bool = False

    def argv(self, argv: Sequence[str]) -> list[str] | None:
        """The local argv that runs `argv` on the target; None when the tool is not there."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(PASSWORD_ENV, None)
        env["LC_ALL"] = "C"  # the parsers match English messages
        env["PATH"] = f"{env.get('PATH', '')}:{SYSTEM_PATH}".lstrip(":")
        return env


class LocalTarget(Target):
    via = "local"
    remote = False

    def __init__(self) -> None:
        self.host = socket.gethostname()

    def argv(self, argv: Sequence[str]) -> list[str] | None:
        path = shutil.which(argv[0], path=self.env()["PATH"])
        return None if path is None else [path, *argv[1:]]


_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
_OPTION_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def parse_ssh_destination(text: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (IPv6 as `[addr]:port` or a bare address) -> (user, host, port).

    The host reaches ssh's command line, so anything that ssh could take for an option (a
    leading `-`) or that a shell would interpret is refused, whatever ssh would make of it."""
    shown = " ".join(repr(text)[1:-1].split())
    user: str | None = None
    rest = text
    if "@" in text:
        user, rest = text.split("@", 1)
        if not _USER.fullmatch(user):
            raise TargetError(f"--ssh {shown!r}: not a valid user name")
    port: int | None = None
    if rest.startswith("["):
        addr, sep, tail = rest[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise TargetError(f"--ssh {shown!r}: expected [IPv6 address]:port")
        host, port_text = addr, tail[1:] if tail else ""
        _ipv6(host, shown)
    elif rest.count(":") > 1:
        host, port_text = rest, ""
        _ipv6(host, shown)
    else:
        host, _, port_text = rest.partition(":")
        if not _HOST.fullmatch(host):
            raise TargetError(f"--ssh {shown!r}: not a host name or address")
    if port_text or rest.endswith(":"):
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TargetError(f"--ssh {shown!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    return user, host, port


def _ipv6(text: str, shown: str) -> None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise TargetError(f"--ssh {shown!r}: not an IPv6 address") from None


class SshTarget(Target):
    """A machine reached with the system ssh client (keys from the agent or ssh config)."""

    via = "ssh"
    remote = True

    def __init__(
        self,
        destination: str,
        *,
        config: str | os.PathLike[str] | None = None,
        options: Sequence[str] = (),
        connect_timeout: int = 10,
    ) -> None:
        self.user, self.host, self.port = parse_ssh_destination(destination)
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or not _OPTION_KEY.fullmatch(key) or "\n" in value or "\0" in value:
                raise TargetError(f"--ssh-option {option!r}: expected KEY=VALUE")
        self.config = None if config is None else os.fspath(config)
        self.options = tuple(options)
        self.connect_timeout = connect_timeout

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def _ssh(self) -> list[str]:
        # ssh keeps the first value it is given for an option: BatchMode comes before the
        # operator's options so that none turns it into a password prompt that would hang a
        # headless run; the defaults after them are the operator's to change.
        argv = ["ssh", "-T", "-n", "-o", "BatchMode=yes"]
        if self.config is not None:
            argv += ["-F", self.config]
        for option in self.options:
            argv += ["-o", option]
        argv += ["-o", f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=15"]
        argv += ["-o", "LogLevel=ERROR"]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        return [*argv, "--", self.destination]

    def argv(self, argv: Sequence[str]) -> list[str] | None:
        # A fixed PATH (the remote login shell's may lack sbin) and C messages for the parsers.
        remote = f"env LC_ALL=C PATH={SYSTEM_PATH} {shlex.join(argv)}"
        return [*self._ssh(), remote]

    def check_reachable(self, timeout: float = 60.0) -> None:
        """Log in once and run `true`: TargetError with ssh's own reason if that fails."""
        argv = [*self._ssh(), "true"]
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                env=self.env(),
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise TargetError("ssh is not installed (apt install openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"ssh {self.destination}: no answer in {timeout:g} s") from None
        if done.returncode != 0:
            lines = [clean(line).strip() for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise TargetError(f"ssh {self.destination}: {reason}")


# -- running one command -------------------------------------------------------------------------
class _Stream:
    """One pipe's bytes split into lines, the newest MAX_KEPT bytes of them kept."""

    def __init__(self, name: str, on_line: Callable[[str, str], None]) -> None:
        self.name = name
        self.on_line = on_line
        self.pending = b""
        self.lines: deque[str] = deque()
        self.kept = 0

    def feed(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending or len(self.pending) > MAX_LINE:
            cut = self.pending.find(b"\n")
            if 0 <= cut <= MAX_LINE:
                line, self.pending = self.pending[:cut], self.pending[cut + 1 :]
            else:  # no newline in sight: cut here, keep every byte
                line, self.pending = self.pending[:MAX_LINE], self.pending[MAX_LINE:]
            self._line(line)

    def close(self) -> None:
        if self.pending:
            self._line(self.pending)
            self.pending = b""

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.lines.append(text)
        self.kept += len(text) + 1
        while self.kept > MAX_KEPT and len(self.lines) > 1:
            self.kept -= len(self.lines.popleft()) + 1
        self.on_line(self.name, text)

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, _TERM_GRACE)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def stream_command(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    on_line: Callable[[str, str], None] = lambda stream, text: None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> tuple[Output, str | None]:
    """Run `argv`, calling `on_line(stream, text)` per line as it arrives. Returns the output
    and why it was stopped early ("cancelled", "timed out after N s"), else None."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a cancel kills all of it
        )
    except OSError as exc:
        return Output("", f"{argv[0]}: {exc.strerror or exc}", 126), None
    assert proc.stdout is not None and proc.stderr is not None
    streams = {"stdout": _Stream("stdout", on_line), "stderr": _Stream("stderr", on_line)}
    deadline = None if timeout is None else time.monotonic() + timeout
    stopped: str | None = None
    selector = selectors.DefaultSelector()
    try:
        selector.register(proc.stdout, selectors.EVENT_READ, streams["stdout"])
        selector.register(proc.stderr, selectors.EVENT_READ, streams["stderr"])
        while stopped is None and (selector.get_map() or proc.poll() is None):
            stopped = _why_stop(cancel, deadline, timeout)
            if stopped is not None:
                break
            if not selector.get_map():
                # Both pipes closed, the process still running: wait for its exit status.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(_POLL)
                continue
            for key, _ in selector.select(_POLL):
                data = os.read(key.fd, 65536)
                if data:
                    key.data.feed(data)
                else:
                    selector.unregister(key.fileobj)
                    key.data.close()
    finally:
        selector.close()
        # Also after the leader exited: a stopped command's children may still hold the group.
        if stopped is not None or proc.poll() is None:
            _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    for stream in streams.values():
        stream.close()
    returncode = None if stopped else proc.returncode
    return Output(streams["stdout"].text(), streams["stderr"].text(), returncode), stopped


def _why_stop(
    cancel: threading.Event | None, deadline: float | None, timeout: float | None
) -> str | None:
    if cancel is not None and cancel.is_set():
        return "cancelled"
    if deadline is not None and time.monotonic() > deadline:
        return f"timed out after {timeout:g} s"
    return None


# -- running checks ------------------------------------------------------------------------------
def run_checks(
    checks: Sequence[Check],
    target: Target,
    *,
    on_event: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> HardwareResult:
    """Run `checks` in order on `target`; the result holds one CheckResult per check (a
    discovery check such as `smart` is replaced by the checks it found)."""
    emit = on_event or (lambda event: None)
    started = time.time()
    results: list[CheckResult] = []
    queue = deque(checks)
    while queue:
        check = queue.popleft()
        if cancel is not None and cancel.is_set():
            skipped = Finding.of(Verdict.UNAVAILABLE, ["cancelled before it ran"])
            results.append(_result(check, skipped, check.hint, 0.0))
            emit(CheckFinished(results[-1]))
            continue
        outcome = _run_one(check, target, emit, cancel)
        if isinstance(outcome, CheckResult):
            results.append(outcome)
            emit(CheckFinished(outcome))
        else:
            queue.extendleft(reversed(outcome))
    return HardwareResult(target.host, target.via, started, tuple(results))


def _result(check: Check, finding: Finding, hint: InstallHint | None, took: float) -> CheckResult:
    return CheckResult(check.name, finding.verdict, finding.evidence, check.command, hint, took)


def _run_one(
    check: Check, target: Target, emit: Callable[[Event], None], cancel: threading.Event | None
) -> CheckResult | list[Check]:
    if target.remote and check.remote is not None:
        check = check.remote
    t0 = time.monotonic()
    if check.probe is not None:
        emit(CheckStarted(check.name, check.command))
        return _result(check, check.probe(), None, time.monotonic() - t0)
    tried: list[tuple[Check, Finding, bool]] = []  # (check, finding, tool missing)
    current: Check | None = check
    while current is not None:
        emit(CheckStarted(current.name, current.command))
        outcome = _run_command(current, target, emit, cancel)
        if isinstance(outcome, list):
            return outcome
        finding, missing, stopped = outcome
        tried.append((current, finding, missing))
        if finding.verdict is not Verdict.UNAVAILABLE or stopped:
            break
        current = current.fallback
    last, finding, missing = tried[-1]
    took = time.monotonic() - t0
    if finding.verdict is not Verdict.UNAVAILABLE or len(tried) == 1:
        return _result(last, finding, last.hint, took)
    # Nothing gave a verdict: say why for each tool tried.
    lines = [line for _, f, _ in tried for line in f.evidence]
    merged = Finding.of(Verdict.UNAVAILABLE, lines)
    command = " || ".join(c.command for c, _, _ in tried)
    return CheckResult(check.name, merged.verdict, merged.evidence, command, check.hint, took)


def _run_command(
    check: Check, target: Target, emit: Callable[[Event], None], cancel: threading.Event | None
) -> tuple[Finding, bool, str | None] | list[Check]:
    """(finding, whether the tool was missing, why it was stopped) or the checks it expanded to."""
    argv = target.argv(check.argv)
    if argv is None:
        return _missing(check, target), True, None
    done = 0

    def on_line(stream: str, text: str) -> None:
        nonlocal done
        emit(OutputLine(check.name, stream, clean(overstrike(text))))
        if stream == "stdout" and check.progress_step is not None:
            step = check.progress_step(text)
            if step:
                done = min(done + step, check.progress_total)
                emit(CheckProgress(check.name, done, check.progress_total))

    out, stopped = stream_command(
        argv, env=target.env(), on_line=on_line, cancel=cancel, timeout=check.timeout
    )
    if out.returncode == 127 and (target.remote or check.argv[0] == "sh"):
        # 127: the shell (or env on the target) found no such program.
        return _missing(check, target), True, None
    if check.expand is not None:
        if stopped:
            return Finding.of(Verdict.UNAVAILABLE, [f"{check.command}: {stopped}"]), False, stopped
        expanded = check.expand(out)
        if isinstance(expanded, Finding):
            return expanded, False, None
        return list(expanded)
    assert check.parse is not None
    finding = check.parse(out)
    if stopped and finding.verdict is Verdict.PASS:
        # A check cut short proves nothing; a failure it found before is still a failure.
        finding = Finding.of(Verdict.UNAVAILABLE, [*finding.evidence, f"stopped: {stopped}"])
    elif stopped:
        finding = Finding.of(finding.verdict, [*finding.evidence, f"stopped: {stopped}"])
    return finding, False, stopped


def _missing(check: Check, target: Target) -> Finding:
    where = f" on {target.host}" if target.remote else ""
    tool = check.argv[0] if check.argv[0] != "sh" else "a shell or grep"
    how = f": {check.hint}" if check.hint else ""
    return Finding.of(Verdict.UNAVAILABLE, [f"{tool} is not installed{where}{how}"])


# -- incident folder -----------------------------------------------------------------------------
def save_hardware_json(incident_dir: Path, result: HardwareResult) -> Path:
    """Write INCIDENT/hardware.json (0600), replacing an earlier one whole: a reader never sees
    half a file."""
    import json

    if not incident_dir.is_dir():
        raise FileNotFoundError(f"{incident_dir}: no such incident folder")
    path = incident_dir / HARDWARE_JSON
    partial = incident_dir / f".{HARDWARE_JSON}.partial"
    with open_private(partial, "w") as f:
        json.dump(result.to_dict(), f, indent=2)
        f.write("\n")
    os.replace(partial, path)
    return path
