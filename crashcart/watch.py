"""`crashcart watch`: record many consoles at once, headless, and report each crash in one line.

    crashcart watch /dev/ttyUSB0 rfc2217://cs1:7001 ipmi://admin@bmc7 --record /var/crash/consoles

One Session per console, all in one event loop. stdout gets one line per crash (JSON lines with
`--json`); connection changes go to stderr. `--exit-on-crash` exits 3 once the first crash's
incident folder is complete; `--on-crash CMD` runs CMD with the incident folder as its last
argument, without a shell, so nothing the console printed can reach a command line. Ctrl-C and
SIGTERM close every console and flush every recording before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from connectors import Connector, ConnectorError, open_connector, parse_console_url
from crashcart.recorder import SPOOL_LIMIT
from crashcart.safetext import clean
from crashcart.session import (
    RESUME_RETRY_SECONDS,
    ConsoleState,
    CrashDetected,
    IncidentUnsaved,
    RecordingFailed,
    RecordingResumed,
    Session,
    SessionEvent,
)

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_CRASH = 3
EXIT_FAILED = 1  # a console's recording stopped on an error (disk full, unwritable folder)
PASSWORD_ENV = "CRASHCART_IPMI_PASSWORD"


@dataclass(frozen=True, slots=True)
class WatchOptions:
    urls: tuple[str, ...]
    record_dir: Path
    exit_on_crash: bool = False
    json: bool = False
    on_crash: str | None = None
    password_file: str | None = None
    takeover: bool = False
    speed: float | None = None  # replay speed for recordings
    fallback: Path | None = None  # where recording goes on if the --record disk fails


def read_ipmi_password(password_file: str | None) -> str:
    """The BMC password: --password-file, else the environment, else a prompt on a terminal."""
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise ConnectorError(f"cannot read --password-file: {exc.strerror or exc}") from exc
        if not password:
            raise ConnectorError("--password-file is empty")
        return password
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if sys.stdin.isatty():
        return getpass.getpass("IPMI password: ")
    raise ConnectorError(
        f"an IPMI password is needed: set {PASSWORD_ENV}, use --password-file, "
        "or run on a terminal to be asked"
    )


def build_connectors(options: WatchOptions) -> list[Connector]:
    connectors: list[Connector] = []
    password: str | None = None
    for url in options.urls:
        parsed = parse_console_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.scheme == "ipmi":
            password = password or read_ipmi_password(options.password_file)
            kwargs["password"] = password
            if options.takeover:
                kwargs["takeover"] = True
        if parsed.scheme == "replay" and options.speed is not None:
            kwargs["speed"] = options.speed
        connectors.append(open_connector(url, **kwargs))
    seen: dict[str, int] = {}
    for conn in connectors:  # two consoles must never share a recording folder
        count = seen.get(conn.name, 0)
        seen[conn.name] = count + 1
        if count:
            conn.name = f"{conn.name}-{count + 1}"
    return connectors


class Watcher:
    def __init__(self, options: WatchOptions, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.exit_code = EXIT_OK
        self.stop = asyncio.Event()
        self.sessions: list[Session] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._children: set[asyncio.Task[None]] = set()

    async def run(self, connectors: list[Connector]) -> int:
        opened: list[Connector] = []
        try:
            for conn in connectors:
                await self._open(conn)
                opened.append(conn)
        except ConnectorError:
            for conn in opened:
                with contextlib.suppress(Exception):
                    await conn.close()
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        for conn in opened:
            if getattr(conn, "multi_console", False):
                self._spawn(self._follow_multi(conn))
            else:
                self._start_session(conn)
        waiter = asyncio.create_task(self.stop.wait())
        while not self.stop.is_set():
            pending = [t for t in self._tasks if not t.done()]
            if not pending and not any(getattr(c, "multi_console", False) for c in opened):
                break
            await asyncio.wait([waiter, *pending], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await self._shutdown(opened)
        return self.exit_code

    async def _open(self, conn: Connector) -> None:
        """Open a console; a held IPMI SOL console is taken over only on the operator's word."""
        try:
            await conn.open()
        except ConnectorError as exc:
            busy = type(exc).__name__ == "SolSessionBusy" and hasattr(conn, "take_over")
            if not busy:
                raise
            if not sys.stdin.isatty():
                raise ConnectorError(f"{exc} (rerun with --takeover to deactivate it)") from exc
            answer = await asyncio.to_thread(
                input, f"{clean(str(exc))}\nDeactivate the other session and take over? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise ConnectorError(f"{exc} (not taken over)") from exc
            await conn.take_over()

    def _spawn(self, coro: Any, console: str = "") -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=console or None)
        task.add_done_callback(self._report_failure)
        self._tasks.append(task)
        return task

    def _report_failure(self, task: asyncio.Task[None]) -> None:
        """A console's session that died says so at once, and the exit status says so too:
        a recording that stopped must never look like a clean run."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        self._say(f"{task.get_name()}: stopped recording: {reason or type(exc).__name__}{where}")
        if self.exit_code == EXIT_OK:
            self.exit_code = EXIT_FAILED

    def _start_session(self, conn: Connector) -> None:
        session = Session(
            conn, self.options.record_dir, on_event=self._on_event, fallback=self.options.fallback
        )
        self.sessions.append(session)
        self._spawn(session.run(), conn.name)

    async def _follow_multi(self, receiver: Any) -> None:
        """A netconsole listener: one session per source host, as each is first heard."""
        async for console in receiver.consoles():
            await console.open()
            self._start_session(console)

    async def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConsoleState):
            self._say(f"{event.console}: {event.state} ({event.detail})")
            return
        if isinstance(event, RecordingFailed | RecordingResumed | IncidentUnsaved):
            await self._on_disk_event(event)
            return
        if not isinstance(event, CrashDetected):
            return  # live-view events; a headless watcher does not ask for them
        self._print_crash(event)
        if self.options.on_crash:
            await self._run_hook(self.options.on_crash, event.incident)
        if self.options.exit_on_crash:
            self.exit_code = EXIT_CRASH
            self.stop.set()

    async def _on_disk_event(
        self, event: RecordingFailed | RecordingResumed | IncidentUnsaved
    ) -> None:
        """A failing recording disk: say what happened and what crashcart does about it."""
        if isinstance(event, RecordingResumed):
            held = f" ({event.spooled} bytes written from memory)" if event.spooled else ""
            lost = f", {event.dropped} bytes lost (memory was full)" if event.dropped else ""
            where = f"moved to {event.log.parent}" if event.moved else f"resumed in {event.log}"
            self._say(f"{event.console}: recording {where}{held}{lost}")
        elif isinstance(event, IncidentUnsaved):
            self._say(
                f"{event.console}: crash '{event.report.title}' detected, but its incident "
                f"folder could not be written ({event.reason}); kept in memory"
            )
        elif event.fallback is not None:
            self._say(
                f"{event.console}: recording failed: {event.reason} ({event.path}); "
                f"moving it to {event.fallback}"
            )
        else:
            hint = "; free space, or use --fallback DIR" if self.options.fallback is None else ""
            self._say(
                f"{event.console}: recording failed: {event.reason} ({event.path}); holding the "
                f"console in memory (up to {SPOOL_LIMIT >> 20} MiB), retrying every "
                f"{RESUME_RETRY_SECONDS:.0f} s{hint}"
            )

    def _print_crash(self, event: CrashDetected) -> None:
        r = event.report
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.at))
        if self.options.json:
            record = {
                "console": event.console,
                "time": when,
                "kind": r.kind,
                "title": r.title,
                "function": r.function,
                "module": r.module,
                "incident": str(event.incident),
            }
            self.out.write(json.dumps(record) + "\n")
        else:
            where = f" [{r.module}]" if r.module else ""
            self.out.write(
                clean(f"{when} {event.console} {r.kind}: {r.title}{where} -> {event.incident}")
                + "\n"
            )
        self.out.flush()

    async def _run_hook(self, command: str, incident: Path) -> None:
        # shlex, never a shell: the incident path is one argv element, console text is in none.
        argv = [*shlex.split(command), str(incident)]
        try:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
            status = await proc.wait()
        except OSError as exc:
            self._say(f"--on-crash command failed to start: {exc.strerror or exc}")
            return
        if status != 0:
            self._say(f"--on-crash command exited with status {status}")

    def _say(self, message: str) -> None:
        self.err.write("crashcart: " + " ".join(clean(message).split()) + "\n")
        self.err.flush()

    async def _shutdown(self, opened: list[Connector]) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in opened:
            with contextlib.suppress(Exception):
                await conn.close()
        for session in self.sessions:  # what no disk took is gone with this process: say so
            if session.unwritten_bytes or session.unsaved:
                parts = []
                if session.unwritten_bytes:
                    parts.append(f"{session.unwritten_bytes} bytes of console")
                if session.unsaved:
                    parts.append(f"{len(session.unsaved)} crash folder(s)")
                failure = session.recorder.failure
                why = f" ({failure.strerror or failure})" if failure else ""
                self._say(f"{session.name}: {' and '.join(parts)} never written to disk{why}")
                if self.exit_code == EXIT_OK:
                    self.exit_code = EXIT_FAILED


async def watch(options: WatchOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    connectors = build_connectors(options)
    return await Watcher(options, out, err).run(connectors)
