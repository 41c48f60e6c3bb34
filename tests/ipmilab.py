"""A real BMC for tests: OpenIPMI's ipmi_sim on loopback, started by shared/lab/ipmi's scripts.

`start_bmc.sh` wires ipmi_sim's SOL to a socat pty pair (SOL_HOST_PTY plays the server's ttyS0)
and records the PIDs it started; `stop_bmc.sh` kills exactly those. Each lab gets its own ports,
folder and a random password, so parallel runs and stale state cannot meet. The password is
distinctive so that a test can search process lists and files for it.

`stop_ipmi_sim` and `start_ipmi_sim` stop the simulator alone and start it again the way
start_bmc.sh did (a BMC rebooting under a live SOL session), while socat, and so the server's
serial line, stays up.

Also here: `Tap`, which drains a connector's events in a background task so a test can wait for
a condition with a deadline (a timed-out `anext()` would close the event iterator for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from labtools import free_tcp_port, free_udp_port, require_commands

from connectors.base import Chunk, Connector, ConnectorEvent, Gap, StateChange

T = TypeVar("T")

LAB_COMMANDS = ("ipmi_sim", "ipmitool", "socat", "sdrcomp", "bc")


@dataclass(frozen=True)
class BmcLab:
    run_dir: Path
    port: int
    console_port: int
    user: str
    password: str
    host_pty: Path
    ipmi_sim_pid: int
    socat_pid: int

    def url(self, query: str = "") -> str:
        return f"ipmi://{self.user}@127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def ipmitool(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """A one-shot ipmitool command; the password goes by environment (-E), as ours does."""
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(
            [*argv, "-U", self.user, "-E", *args],
            env={**os.environ, "IPMI_PASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def deactivate_sol(self) -> None:
        self.ipmitool("sol", "deactivate")

    def reset_sol_sequence(self) -> None:
        """Work around an ipmi_sim bug: it keeps the last SOL packet sequence number across
        sessions and drops a new session's first packet if it has the same number (a session
        that sent exactly one packet makes the next session lose its first keystrokes).

        A session of our own sends two packets (CRs the host end will see) and quits with ~.
        """
        master, slave = os.openpty()
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(self.port)]
        proc = subprocess.Popen(
            [*argv, "-U", self.user, "-E", "sol", "activate"],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "IPMI_PASSWORD": self.password},
            start_new_session=True,
        )
        os.close(slave)
        try:
            _read_pty_until(master, b"SOL Session operational", 10)
            for keys in (b"\r", b"\r", b"~."):  # separate packets: ipmitool waits for each ACK
                os.write(master, keys)
                time.sleep(0.05)
            proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            os.close(master)

    def console(self, *commands: str) -> list[str]:
        """Run ipmi_sim emulator commands (ipmi_sim_cmd(5)) over its telnet console."""
        replies = []
        with socket.create_connection(("127.0.0.1", self.console_port), timeout=5) as sock:
            _read_prompt(sock)  # telnet negotiation and the first prompt
            for command in commands:
                sock.sendall(command.encode() + b"\n")
                replies.append(_read_prompt(sock).decode(errors="replace"))
        return replies

    def set_cpu_temp(self, celsius: int) -> None:
        (self.run_dir / "cpu_temp.val").write_text(f"{celsius}\n")

    def open_host(self) -> int:
        """The server's end of the SOL line (its ttyS0), non-blocking, drained."""
        fd = os.open(self.host_pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        read_host(fd, quiet=0.05)
        return fd


def _read_pty_until(fd: int, marker: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # EIO: ipmitool exited
                break
    return seen


def _read_prompt(sock: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"> "):
        data = sock.recv(4096)
        if not data:
            break
        buf += data
    return buf


def read_host(fd: int, quiet: float = 0.3, until: bytes | None = None) -> bytes:
    """What arrived on the host end until `quiet` seconds passed without a byte (or `until`)."""
    got = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (until and until in got):
        ready, _, _ = select.select([fd], [], [], quiet)
        if not ready:
            if until is None:
                break
            continue
        with contextlib.suppress(BlockingIOError):
            got += os.read(fd, 65536)
    return got


def write_host(fd: int, data: bytes) -> None:
    """Write everything to the (non-blocking) host end, waiting when the pty is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


@contextlib.contextmanager
def running_bmc(shared_dir: Path, lab_dir: Path) -> Iterator[BmcLab]:
    require_commands(*LAB_COMMANDS)
    scripts = shared_dir / "lab" / "ipmi" / "scripts"
    if not (scripts / "start_bmc.sh").is_file():
        pytest.fail(f"the IPMI lab scripts are missing in {scripts}", pytrace=False)
    env = {
        **os.environ,
        "LAB_DIR": str(lab_dir),
        "RUN": str(lab_dir / "run"),
        "BMC_PORT": str(free_udp_port()),
        "CONSOLE_PORT": str(free_tcp_port()),
        "BMC_USER": "admin",
        "BMC_PASS": "cc" + secrets.token_hex(7),  # 16 characters, found nowhere by chance
        "SOL_HISTORY": "0",  # gotcha 4: history loses bytes
    }
    started = subprocess.run(
        ["bash", str(scripts / "start_bmc.sh")], env=env, capture_output=True, text=True
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"start_bmc.sh failed: {started.stderr.strip()}", pytrace=False)
        values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        yield BmcLab(
            run_dir=lab_dir / "run",
            port=int(values["BMC_PORT"]),
            console_port=int(values["CONSOLE_PORT"]),
            user=values["BMC_USER"],
            password=env["BMC_PASS"],
            host_pty=Path(values["SOL_HOST_PTY"]),
            ipmi_sim_pid=int(values["IPMI_SIM_PID"]),
            socat_pid=int(values["SOCAT_PID"]),
        )
    finally:
        stop_lab(lab_dir / "run", int(env["BMC_PORT"]))


def stop_lab(run_dir: Path, port: int) -> None:
    """What stop_bmc.sh does, in parallel: SIGTERM the PIDs start_bmc.sh recorded, wait, SIGKILL.

    stop_bmc.sh stops one process after the other and counts a zombie as alive (this machine's
    init reaps late), so it takes ~4 s; this takes ~1.2 s. A PID is signalled only while its
    command line still names the program that start_bmc.sh recorded it for.
    """
    pids = {}
    for name in ("ipmi_sim", "socat"):
        pid_file = run_dir / f"{name}.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if _runs(pid, name):
                pids[pid] = name
                os.kill(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + 3
    while any(_runs(pid, name) for pid, name in pids.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid, name in pids.items():
        if _runs(pid, name):
            os.kill(pid, signal.SIGKILL)
            if name == "ipmi_sim":
                _drop_stale_lock(port, pid)
    for pty_link in (run_dir / "sol-host", *run_dir.glob("sol-bmc-*")):
        pty_link.unlink(missing_ok=True)


def _drop_stale_lock(port: int, pid: int) -> None:
    """A SIGKILLed ipmi_sim leaves its UUCP lock behind (gotchas 6/7): drop it if it is `pid`'s."""
    lock = Path(f"/var/lock/LCK..sol-bmc-{port}")
    with contextlib.suppress(OSError, ValueError):
        if int(lock.read_text().split()[0]) == pid:
            lock.unlink()


@dataclass(frozen=True)
class SimCommand:
    """How ipmi_sim was started: its argv and working folder."""

    argv: tuple[str, ...]
    cwd: Path


def stop_ipmi_sim(lab: BmcLab) -> SimCommand:
    """The BMC goes down: SIGTERM ipmi_sim by its PID (socat, so the host pty, stays up).

    Returns how it was started, read from /proc rather than copied from start_bmc.sh: the
    restart is then exactly what the script ran (the same lan.conf, lab.emu, state folder and
    cwd), even after the script changes.
    """
    pid = lab.ipmi_sim_pid
    if not _runs(pid, "ipmi_sim"):
        pytest.fail(f"ipmi_sim (pid {pid}) is not running", pytrace=False)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    command = SimCommand(
        tuple(a.decode() for a in cmdline if a), Path(os.readlink(f"/proc/{pid}/cwd"))
    )
    os.kill(pid, signal.SIGTERM)  # its shutdown handlers remove the UUCP lock
    if not _wait(lambda: not _runs(pid, "ipmi_sim"), 5):
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _runs(pid, "ipmi_sim"), 5)
        _drop_stale_lock(lab.port, pid)
    return command


def start_ipmi_sim(lab: BmcLab, command: SimCommand) -> BmcLab:
    """The BMC is back: ipmi_sim started as before, answering RMCP+. Returns the lab with the
    new PID, which is also written to RUN/ipmi_sim.pid so that stop_lab stops this one."""
    # Gotcha 5: the SOL pty must be there when ipmi_sim starts, or it looks again only after 10 s.
    sol_pty = lab.run_dir / f"sol-bmc-{lab.port}"
    if not sol_pty.exists():
        pytest.fail(f"{sol_pty} is gone (socat died?): ipmi_sim would not find it", pytrace=False)
    # `cmd & echo $!` from a shell that then exits, like start_bmc.sh's `(exec ipmi_sim) &`: the
    # simulator is nobody's child here, so no zombie of it waits on this test process.
    script = 'cd "$1" || exit 1; shift; "$@" </dev/null >>"$LOG" 2>&1 & echo $!'
    launched = subprocess.run(
        ["sh", "-c", script, "sh", str(command.cwd), *command.argv],
        env={**os.environ, "LOG": str(lab.run_dir / "ipmi_sim.log")},  # appended: both runs kept
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    pid = int(launched.stdout)
    (lab.run_dir / "ipmi_sim.pid").write_text(f"{pid}\n")
    restarted = dataclasses.replace(lab, ipmi_sim_pid=pid)

    def answers() -> bool:
        if not _runs(pid, "ipmi_sim"):
            log = (lab.run_dir / "ipmi_sim.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the restarted ipmi_sim died:\n{log}", pytrace=False)
        # Get Device ID, as start_bmc.sh asks; -N/-R: a BMC still starting gets asked again soon.
        return restarted.ipmitool("-N", "1", "-R", "1", "raw", "0x06", "0x01").returncode == 0

    if not _wait(answers, 20):
        pytest.fail("the restarted ipmi_sim did not answer within 20 s", pytrace=False)
    return restarted


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _runs(pid: int, name: str) -> bool:
    """Whether `pid` is a live (not zombie) process running `name`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and os.path.basename(argv0.decode(errors="replace")) == name


@pytest.fixture(scope="module")
def bmc_lab(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BmcLab]:
    with running_bmc(shared_dir, tmp_path_factory.mktemp("bmc-lab")) as lab:
        yield lab


# -- async helpers -------------------------------------------------------------------------------
def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run one test coroutine with a hard deadline (pytest-timeout is the backstop)."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


class Tap:
    """Collects a connector's events in the background; `wait` polls a condition on them."""

    def __init__(self, conn: Connector) -> None:
        self.events: list[ConnectorEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain(conn))

    async def _drain(self, conn: Connector) -> None:
        async for event in conn:
            self.events.append(event)
            self._changed.set()

    def data(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, Chunk))

    def kinds(self) -> list[str]:
        """States and gaps in order: "connected", "disconnected", "gap", ..."""
        return [
            e.state if isinstance(e, StateChange) else "gap"
            for e in self.events
            if isinstance(e, StateChange | Gap)
        ]

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def finish(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._task, 5)
