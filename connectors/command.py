"""A command in a pseudo-terminal as a console: `cmd:ssh -t conserver console web01`.

Whatever already reaches a console (a conserver client, `virsh console vm1`, `ipmitool sol
activate`, `ssh -t bastion screen -x`) can be watched by crashcart without crashcart knowing the
protocol: the command runs in a pty, its output is the console stream, keystrokes go to it.

- The command line is split with shlex and executed directly, never through a shell, so nothing
  in it is expanded twice. A program that cannot be found fails `open()` with one line.
- The child gets a session of its own with the pty as its controlling terminal (programs such as
  ssh -t and virsh check for one), TERM from the `term` option (default ``xterm``), and no
  COLUMNS/LINES from our environment, so the pty's window size is the only size it sees.
  Python's subprocess can make a new session but cannot give it a controlling terminal, and
  running Python code between fork and exec is unsafe in a threaded program (Textual runs
  threads), so a tiny `python -I -S` trampoline does the TIOCSCTTY and execs the command.
- `set_window_size(cols, rows)` sets the pty size (TIOCSWINSZ on the master); the kernel then
  sends SIGWINCH to the child's foreground process group. The size is kept for re-runs.
- Output is read with `loop.add_reader` on the master (no polling thread, no busy loop).
- When the child exits the console reports ``StateChange("disconnected", "exited with status
  N")`` (or ``"killed by signal 9 (SIGKILL)"``) after delivering everything it printed. By default
  the command is run again with back-off (`virsh console` exits whenever the VM reboots, ssh when
  the network blips); ``once=1`` turns that off. A command that keeps exiting straight away is
  re-run with growing delays, since every re-run "connects" and the base class would otherwise
  restart its back-off each time.
- Teardown (close, or the end of a run) sends SIGHUP, as a terminal hang-up would, and SIGTERM
  to the child's process group, waits `grace` seconds (default 2), then SIGKILLs the group, and
  always reaps the child: no zombies, nothing left running that we started. Signals go to the
  group only while its leader is known to be alive, so a recycled PID is never signalled.
- `send_break` raises Unsupported: a pty has no line to hold in BREAK, and each console client
  has its own way to ask for one (ssh: Enter ``~B``; conserver: ``^Ecl0``), which the operator
  can type.

Options (keyword arguments to `open_connector`; a `cmd:` URL has no room for a query string):
``once`` (bool), ``backoff`` (Backoff), ``cols``/``rows`` (initial size, default 80x24),
``grace`` (seconds), ``term`` (TERM for the child). Unknown options are ignored: the session may
pass options meant for other transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import shlex
import shutil
import signal
import struct
import sys
import termios
import time
from typing import Any

from connectors import ConsoleURL, console_name
from connectors.base import Backoff, Connector, ConnectorError, Unsupported

__all__ = ["CommandConnector", "connect_command"]

DEFAULT_GRACE_SECONDS = 2.0
# A run shorter than this counts as "exited straight away" for the growing re-run delay.
STABLE_RUN_SECONDS = 5.0
READ_SIZE = 64 * 1024

# Runs in the child, after setsid (start_new_session) and before the command: make the pty on
# fd 0 the controlling terminal, then become the command (same PID, so signals and exit status
# are the command's).
_TRAMPOLINE = """\
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
try:
    os.execv(sys.argv[1], sys.argv[2:])
except OSError as exc:
    sys.stderr.write(f"{sys.argv[2]}: {exc.strerror}\\n")
    os._exit(127)
"""


class CommandConnector(Connector):
    """A console that is a command's terminal (see module doc)."""

    def __init__(
        self,
        url: str,
        name: str,
        argv: list[str],
        *,
        once: bool = False,
        backoff: Backoff | None = None,
        cols: int = 80,
        rows: int = 24,
        grace: float = DEFAULT_GRACE_SECONDS,
        term: str = "xterm",
    ) -> None:
        super().__init__(url, name, backoff)
        self.argv = argv
        self.reconnects = not once
        self.grace = grace
        self.runs = 0
        self._size = (cols, rows)
        self._env = _child_env(term)
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Task[int] | None = None
        self._master: int | None = None
        self._buffer = bytearray()
        self._eof = False
        self._wake = asyncio.Event()
        self._teardown: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._ended_at = 0.0
        self._quick_exits = 0

    @property
    def pid(self) -> int | None:
        """The running command's PID (also its process group and session id)."""
        return self._proc.pid if self._proc is not None else None

    def set_window_size(self, cols: int, rows: int) -> None:
        """Resize the terminal; the child is told by SIGWINCH. Kept for later re-runs."""
        self._size = (cols, rows)
        if self._master is not None:
            _set_window_size(self._master, cols, rows)

    async def close(self) -> None:
        await super().close()
        # The pump may have been cancelled in the middle of a teardown: finish it, so that
        # close() returning means the child is gone and reaped.
        if self._teardown is not None:
            await self._teardown

    # -- starting a run ---------------------------------------------------------------------
    async def _connect(self) -> None:
        executable = _find_program(self.argv[0], self.url)
        await self._pause_after_quick_exits()
        master, slave = pty.openpty()
        try:
            _set_window_size(master, *self._size)
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-I", "-S", "-c", _TRAMPOLINE, executable, *self.argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=self._env,
                start_new_session=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # only the child holds the slave now: its exit reads as EOF here
        self._start_run(proc, master)

    async def _pause_after_quick_exits(self) -> None:
        if self.runs == 0:
            return
        quick = self._ended_at - self._started_at < STABLE_RUN_SECONDS
        self._quick_exits = self._quick_exits + 1 if quick else 0
        if self._quick_exits:
            first, ceiling = self.backoff.first, self.backoff.ceiling
            await asyncio.sleep(min(first * (2**self._quick_exits - 1), ceiling))
        if self._closed:
            raise ConnectorError(f"{self.url}: closed")

    def _start_run(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.runs += 1
        self._started_at = time.monotonic()
        self._proc, self._master = proc, master
        self._buffer = bytearray()
        self._eof = False
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._on_readable, master)
        self._exit = asyncio.ensure_future(proc.wait())
        self._exit.add_done_callback(lambda _: self._wake.set())

    # -- reading ----------------------------------------------------------------------------
    def _on_readable(self, master: int) -> None:
        try:
            data = os.read(master, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every slave descriptor is closed (the child and its heirs exited)
        if data:
            self._buffer += data
        else:
            self._eof = True
            asyncio.get_running_loop().remove_reader(master)
        self._wake.set()

    async def _read(self) -> bytes:
        assert self._exit is not None
        while True:
            if self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                return data
            if self._exit.done() and not self._eof:
                self._drain()  # what it printed just before exiting may not have been read yet
                if self._buffer:
                    continue
            if self._eof or self._exit.done():
                raise ConnectorError(await self._exit_reason())
            self._wake.clear()
            await self._wake.wait()

    def _drain(self) -> None:
        assert self._master is not None
        while not self._eof:
            try:
                data = os.read(self._master, READ_SIZE)
            except BlockingIOError:
                return  # a background child still holds the terminal; nothing more for now
            except OSError:
                data = b""
            if not data:
                self._eof = True
                asyncio.get_running_loop().remove_reader(self._master)
            self._buffer += data

    async def _exit_reason(self) -> str:
        assert self._exit is not None
        try:
            status = await asyncio.wait_for(asyncio.shield(self._exit), self.grace)
        except TimeoutError:
            return "closed its terminal"  # still running: the teardown will stop it
        return _describe_exit(status)

    # -- writing ----------------------------------------------------------------------------
    async def _write(self, data: bytes) -> None:
        master = self._master
        if master is None:
            raise ConnectorError(f"{self.url}: not running")
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(master, view) :]
            except BlockingIOError:
                await _writable(master)  # the child is not reading: wait, don't spin
            except OSError as exc:
                raise ConnectorError(f"{self.url}: {exc.strerror or exc}") from exc

    async def _send_break(self) -> None:
        raise Unsupported(
            f"{self.url}: a pty has no BREAK; use the console client's own sequence "
            "(ssh: Enter ~B, conserver: ^Ecl0)"
        )

    # -- stopping ---------------------------------------------------------------------------
    async def _disconnect(self) -> None:
        if self._proc is None or self._exit is None or self._master is None:
            return
        proc, exit_task, master = self._proc, self._exit, self._master
        self._proc = self._exit = self._master = None
        asyncio.get_running_loop().remove_reader(master)
        # Shielded: a cancelled caller must not leave a half-stopped child; close() awaits it.
        self._teardown = asyncio.ensure_future(self._stop(proc, exit_task, master))
        await asyncio.shield(self._teardown)

    async def _stop(
        self, proc: asyncio.subprocess.Process, exit_task: asyncio.Task[int], master: int
    ) -> None:
        try:
            if not exit_task.done():
                _signal_group(proc, signal.SIGHUP)  # what closing a terminal would send
                _signal_group(proc, signal.SIGTERM)  # for programs that ignore hang-ups
                try:
                    await asyncio.wait_for(asyncio.shield(exit_task), self.grace)
                except TimeoutError:
                    _signal_group(proc, signal.SIGKILL)
            await exit_task  # reaped: no zombie
        finally:
            os.close(master)
            self._ended_at = time.monotonic()


# -- helpers ------------------------------------------------------------------------------------


def _find_program(program: str, display: str) -> str:
    if "/" in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return program
        reason = "not executable" if os.path.exists(program) else "no such file"
        raise ConnectorError(f"{display}: {program}: {reason}")
    found = shutil.which(program)
    if found is None:
        raise ConnectorError(f"{display}: command not found: {program}")
    return found


def _child_env(term: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = term
    return env


def _set_window_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if proc.returncode is not None:
        return  # reaped: its group id may belong to someone else by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _describe_exit(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            return f"killed by signal {-status}"
        return f"killed by signal {-status} ({name})"
    return f"exited with status {status}"


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_writable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, on_writable)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def connect_command(url: ConsoleURL, **options: Any) -> CommandConnector:
    """The connector for `cmd:COMMAND LINE` (not yet started: call `await conn.open()`)."""
    command = url.path or ""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConnectorError(f"{url.display}: cannot split the command line: {exc}") from exc
    if not argv:
        raise ConnectorError(f"{url.display}: no command")
    backoff = options.get("backoff")
    try:
        return CommandConnector(
            url.display,
            console_name(url),
            argv,
            once=_flag(options.get("once", False)),
            backoff=backoff if isinstance(backoff, Backoff) else None,
            cols=int(options.get("cols", 80)),
            rows=int(options.get("rows", 24)),
            grace=float(options.get("grace", DEFAULT_GRACE_SECONDS)),
            term=str(options.get("term", "xterm")),
        )
    except ValueError as exc:
        raise ConnectorError(f"{url.display}: bad option: {exc}") from exc
