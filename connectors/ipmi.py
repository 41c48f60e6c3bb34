"""IPMI v2 Serial-over-LAN: the real `ipmitool sol activate`, run in a pty we own.

Why ipmitool: python-ipmi has no SOL (it drops SOL payloads), and ipmitool is what every BMC
vendor tests against. Its output goes to a pty (raw, so no byte is translated; a terminal keeps
its stdout line-buffered, so its notices arrive whole) whose master we read with
`loop.add_reader` (no polling). Its input is a pipe, so that closing it is an end-of-file:
ipmitool then sends what was typed, deactivates its own SOL payload and exits. Its stderr is a
third pipe, so its messages never mix with the console bytes.

Decisions an SRE should know about (each one is tested in tests/test_ipmi_sol.py or, for what
happens when things break, tests/test_faults_ipmi.py):

* The password reaches ipmitool only in its environment (`IPMI_PASSWORD` with `-E`), never in
  argv (which every user can read in `ps`), never in a log line, a URL or an exception. The
  child's environment is readable only by its owner and root (/proc/PID/environ is 0400).
  Defence in depth: should an ipmitool (another version, a wrapper script) ever print the
  password, it is replaced by `***` in everything of ipmitool's we keep or show: its stderr
  lines (which become log lines and error messages), whatever it printed on stdout before the
  SOL banner, and the output of one-shot commands. Console bytes after the banner are never
  altered: the recording is exactly what the server sent.
* ipmitool's own notices are not console output and are kept out of the byte stream, so a
  recording is exactly what the server sent: the "[SOL Session operational. Use ~? for help]"
  banner (always first, before any SOL data can arrive) and the "~B [send break]" line it prints
  after a BREAK (removed only while one is expected, for two seconds; if it never shows up the
  bytes held back meanwhile are delivered unchanged). They are logged at INFO instead.
* Escapes: ipmitool acts on `~.`, `~B`, `~?`, `~^Z` typed right after a CR/LF or at the start of
  the session. Whatever the operator types is passed through with such a `~` doubled (`~~`,
  which ipmitool sends as one `~`), so typing can never end or suspend the session.
* BREAK is `~B`, preceded by a CR only if the last byte typed was not already a CR/LF (ipmitool
  sees escapes only at a line start; the CR does reach the server, which is the price of asking
  for a BREAK in the middle of a typed line).
* Keep-alive: ipmitool's default keep-alive (Get Device ID) keeps the *session* alive but never
  notices that the SOL *payload* was taken away (`sol deactivate` from elsewhere): the console
  would go silent forever. We pass `usesolkeepalive` (URL option `keepalive=sol`, the default),
  with which ipmitool exits about 25 s after losing the payload, or about 4 s after the next
  keystroke; we then reconnect with back-off.
* A payload held by another session raises `SolSessionBusy` from open(). It is never taken
  silently: `take_over()` (or the `takeover=True` option, meant for a CLI that asked the
  operator) runs `sol deactivate` and activates again. A take-over is for that one open() only:
  a reconnect that finds the console busy keeps waiting with back-off, it never kicks whoever
  holds it now (two crashcarts would otherwise steal it from each other forever). While it
  waits, the reconnect loop reports `reconnecting` with "in use by another session", once.
* One exception, for our own corpse: when OUR ipmitool dies by a signal crashcart did not send
  (the OOM killer, a stray `kill -9`, a segfault; the disconnect then says "ipmitool was killed
  by signal 9 (SIGKILL)"), it could not deactivate its payload, and the BMC keeps it until the
  dead session times out (ipmi_sim: ~30 s; real BMCs: a minute or more). The reconnect would
  then meet "in use by another session" and wait that long, deaf, at the worst moment. A
  payload that is busy right after our own ipmitool was killed is almost certainly that dead
  session's, so the connector runs `sol deactivate` once, logs a WARNING saying why, and sets
  `reclaimed_own_session`. Only once per death and only within
  `_RECLAIM_WINDOW` (60 s, the IPMI session inactivity timeout; later, a busy console belongs
  to someone else); never after an ordinary loss (the BMC closed the session, the keep-alive
  failed, someone ran `sol deactivate`): so a colleague who takes the console, and another
  crashcart, are still never kicked. The small risk left: someone who frees our dead payload
  and activates their own within that minute loses it once; crashcart does not retry the
  deactivation, so it cannot turn into a tug of war.
* Close: end-of-file on ipmitool's input, its own orderly exit (what `~.` does, without the CR
  that `~.` needs after a half-typed line, which the server would execute). The payload is
  released, so the next attach works at once. Only if ipmitool has not exited within 2 s is it
  sent SIGTERM, then SIGKILL, by PID; a BMC then keeps the payload until its session times out.
  `sol deactivate` is never run on close, not even after a take-over: by then the payload may
  belong to someone else, and kicking them is not ours to decide. (If crashcart itself dies,
  the pipe closes all the same, and ipmitool still releases the payload.)
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import re
import signal
import subprocess
import sys
import time
import tty
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import ConsoleURL, console_name
from connectors.base import Backoff, Connector, ConnectorError, Fatal

__all__ = [
    "BREAK_NOTICE",
    "PASSWORD_ENV",
    "REDACTED",
    "IpmiSolConnector",
    "NoticeFilter",
    "SolOptions",
    "SolSessionBusy",
    "classify_ipmitool_failure",
    "connect_ipmi",
    "escape_sol_input",
    "ipmitool_env",
    "redact",
    "resolve_ipmi_password",
    "session_lost_reason",
]

log = logging.getLogger(__name__)

PASSWORD_ENV = "CRASHCART_IPMI_PASSWORD"
DEFAULT_PORT = 623
DEFAULT_CIPHER = 3  # HMAC-SHA1 + AES-CBC-128: what nearly every BMC offers; ipmi_sim needs -C 3
MAX_PASSWORD_BYTES = 20  # IPMI v2 user passwords are at most 20 bytes
KEEPALIVES = {"sol": ["usesolkeepalive"], "deviceid": [], "none": ["nokeepalive"]}
INTERFACES = ("lanplus",)  # ipmitool runs SOL only over lanplus (IPMI v2 / RMCP+)
URL_OPTIONS = ("cipher", "interface", "keepalive", "timeout", "retries")

_ESCAPE = 0x7E  # "~", ipmitool's default SOL escape character
_LINE_ENDS = (0x0D, 0x0A)
_BANNER = re.compile(rb"\[SOL Session operational\.[^\]\n]*\]\r?\n")
BREAK_NOTICE = b"~B [send break]\n"  # printed by ipmitool 1.8.x on stdout after `~B`
_NOTICE_WAIT = 2.0  # seconds a notice is waited for before held-back bytes are let through
_CLOSE_WAIT = 2.0  # seconds ipmitool gets to deactivate its payload after end-of-file
_EXIT_WAIT = 2.0  # seconds for a failed ipmitool to exit (and finish its stderr)
_ACTIVATE_TIMEOUT = 60.0  # ipmitool's own retries give up on a silent BMC after ~20 s
# How long after our own ipmitool was killed a busy payload is taken to be its: the IPMI
# session inactivity timeout (60 s by the spec's default), after which a BMC has dropped it.
_RECLAIM_WINDOW = 60.0
REDACTED = "***"


class SolSessionBusy(ConnectorError):
    """The BMC's SOL payload is active on another session (a colleague, or a dead client)."""


# -- password ----------------------------------------------------------------------------------
def resolve_ipmi_password(password_file: str | None, prompt: bool, *, user_at: str = "") -> str:
    """The BMC password: `--password-file` if given, else $CRASHCART_IPMI_PASSWORD, else a prompt.

    The explicit flag wins over the environment. The prompt is offered only when `prompt` is set
    and stdin is a terminal (a CLI calls this before a TUI takes the terminal; `watch` passes
    prompt=False). Messages never contain the password.
    """
    if password_file is not None:
        return _read_password_file(Path(password_file))
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return _checked_password(from_env, f"${PASSWORD_ENV}")
    if prompt and sys.stdin.isatty():
        asked = getpass.getpass(f"IPMI password{' for ' + user_at if user_at else ''}: ")
        return _checked_password(asked, "the password typed")
    raise ConnectorError(
        f"no IPMI password: set {PASSWORD_ENV}, pass --password-file FILE, "
        "or run on a terminal to be asked"
    )


def _read_password_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConnectorError(f"--password-file {path}: {exc.strerror or exc}") from None
    # Only the line ending an editor adds is dropped: other whitespace may be part of it.
    for ending in (b"\r\n", b"\n"):
        if raw.endswith(ending):
            raw = raw[: -len(ending)]
            break
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConnectorError(f"--password-file {path}: not UTF-8 text") from None
    return _checked_password(text, f"--password-file {path}")


def _checked_password(password: str, source: str) -> str:
    if not password:
        raise ConnectorError(f"{source}: the IPMI password is empty")
    if "\0" in password or "\n" in password:
        raise ConnectorError(f"{source}: the IPMI password contains a NUL or newline")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ConnectorError(f"{source}: IPMI v2 passwords are at most {MAX_PASSWORD_BYTES} bytes")
    return password


def ipmitool_env(password: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ours, minus our own secret variable, plus IPMI_PASSWORD for -E."""
    env = dict(os.environ if base is None else base)
    env.pop(PASSWORD_ENV, None)  # ipmitool does not need it: keep the secret in one place
    env["IPMI_PASSWORD"] = password
    env["LC_ALL"] = "C"  # its messages are matched in English
    return env


def redact(text: str, password: str) -> str:
    """`text` with every occurrence of the password replaced by `***`.

    For what ipmitool prints, not for console bytes. A very short password blots out more than
    itself (every "a" for a password "a"): a garbled message is the lesser harm.
    """
    return text.replace(password, REDACTED) if password else text


# -- options -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SolOptions:
    """Where and how to run ipmitool; everything here may appear in argv (no secrets)."""

    host: str
    user: str
    port: int = DEFAULT_PORT
    cipher: int = DEFAULT_CIPHER
    interface: str = "lanplus"
    keepalive: str = "sol"
    # ipmitool -N (seconds to wait for an answer) and -R (tries): by default it gives up on a
    # silent BMC after ~20 s; `?timeout=1&retries=1` makes that ~2 s on a local network.
    timeout: int | None = None
    retries: int | None = None
    ipmitool: str = "ipmitool"

    @classmethod
    def from_url(cls, url: ConsoleURL, ipmitool: str | None = None) -> SolOptions:
        where = url.display
        if not url.host:
            raise ConnectorError(f"{where}: missing BMC host")
        if not url.user:
            raise ConnectorError(f"{where}: needs a user, e.g. ipmi://admin@{url.host}")
        unknown = sorted(set(url.options) - set(URL_OPTIONS))
        if unknown:
            known = ", ".join(URL_OPTIONS)
            raise ConnectorError(f"{where}: unknown option {unknown[0]!r} (known: {known})")
        opts = url.options
        interface = opts.get("interface", "lanplus")
        if interface not in INTERFACES:
            raise ConnectorError(f"{where}: SOL needs IPMI v2, interface=lanplus")
        keepalive = opts.get("keepalive", "sol")
        if keepalive not in KEEPALIVES:
            raise ConnectorError(f"{where}: keepalive must be one of {', '.join(KEEPALIVES)}")
        cipher = _int_option(where, opts, "cipher", 0, 17)
        return cls(
            host=url.host,
            user=url.user,
            port=url.port if url.port is not None else DEFAULT_PORT,
            cipher=DEFAULT_CIPHER if cipher is None else cipher,
            interface=interface,
            keepalive=keepalive,
            timeout=_int_option(where, opts, "timeout", 1, 300),
            retries=_int_option(where, opts, "retries", 0, 20),
            ipmitool=ipmitool or "ipmitool",
        )

    def argv(self, *command: str) -> list[str]:
        """ipmitool's argv for `command`. `-E`: the password comes from IPMI_PASSWORD."""
        argv = [self.ipmitool, "-I", self.interface, "-C", str(self.cipher)]
        argv += ["-H", self.host, "-p", str(self.port), "-U", self.user, "-E"]
        if self.timeout is not None:
            argv += ["-N", str(self.timeout)]
        if self.retries is not None:
            argv += ["-R", str(self.retries)]
        # -v only adds stderr lines; they tell a wrong password from an unreachable BMC.
        return [*argv, "-v", *command]

    def activate_argv(self) -> list[str]:
        return self.argv("sol", "activate", *KEEPALIVES[self.keepalive])


def _int_option(where: str, opts: dict[str, str], key: str, low: int, high: int) -> int | None:
    if key not in opts:
        return None
    value = opts[key]
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConnectorError(f"{where}: {key} must be a number from {low} to {high}")
    return int(value)


# -- pure helpers --------------------------------------------------------------------------------
def escape_sol_input(data: bytes, at_line_start: bool) -> tuple[bytes, bool]:
    """Double every `~` that ipmitool would take as an escape; return it and the new state.

    Mirrors ipmitool's processSolUserInput: a `~` right after CR/LF (or at the start) opens an
    escape; `~~` sends one `~` and leaves the line start.
    """
    if _ESCAPE not in data:
        return data, (data[-1] in _LINE_ENDS) if data else at_line_start
    out = bytearray()
    for byte in data:
        if byte == _ESCAPE and at_line_start:
            out += b"~~"
            at_line_start = False
        else:
            out.append(byte)
            at_line_start = byte in _LINE_ENDS
    return bytes(out), at_line_start


class NoticeFilter:
    """Removes notices ipmitool prints into the console stream while one is expected.

    While a notice is expected, a tail of the stream that could be its beginning is held back;
    `waiting_until` says until when. Past that deadline the expectation is dropped and the held
    bytes are released unchanged, so nothing the server sent can be lost or kept for long.
    """

    def __init__(self) -> None:
        self._expected: deque[tuple[bytes, float]] = deque()
        self._held = b""

    def expect(self, notice: bytes, deadline: float) -> None:
        self._expected.append((notice, deadline))

    @property
    def waiting_until(self) -> float | None:
        return self._expected[0][1] if self._held and self._expected else None

    def feed(self, data: bytes, now: float) -> bytes:
        buf = self._held + data
        self._held = b""
        out = bytearray()
        while self._expected:
            notice, deadline = self._expected[0]
            found = buf.find(notice)
            if found < 0 and deadline <= now:
                self._expected.popleft()  # another ipmitool version words it differently
                continue
            if found < 0:
                break
            out += buf[:found]
            buf = buf[found + len(notice) :]
            self._expected.popleft()
            log.info("ipmitool: %s", notice.decode("ascii", "replace").strip())
        if self._expected:
            keep = _partial_tail(buf, self._expected[0][0])
            if keep:
                self._held, buf = buf[-keep:], buf[:-keep]
        out += buf
        return bytes(out)

    def flush(self) -> bytes:
        """Everything held back; no more expectations (the stream ended)."""
        held, self._held = self._held, b""
        self._expected.clear()
        return held


def _partial_tail(buf: bytes, notice: bytes) -> int:
    """Length of the longest tail of `buf` that is a proper prefix of `notice`."""
    for size in range(min(len(buf), len(notice) - 1), 0, -1):
        if notice.startswith(buf[-size:]):
            return size
    return 0


_NOISE = (
    "Loading IANA PEN Registry",
    "Running Get VSO",
    "Invalid completion code",
    "Discovered",
    "tcgetattr",  # its input is a pipe, not a terminal: nothing to make raw
)


def classify_ipmitool_failure(
    lines: list[str], where: str, user: str, status: int | None = None
) -> ConnectorError:
    """One operator-readable line for what ipmitool wrote on stderr before giving up."""
    text = "\n".join(lines)
    if "already active on another session" in text or "activation limit reached" in text:
        return SolSessionBusy(
            f"{where}: the SOL console is in use by another session (a colleague, or a client "
            "that died without ~.); take it over only if you are sure"
        )
    if "RAKP 2 HMAC is invalid" in text:
        return Fatal(f"{where}: the BMC rejected the password for user {user!r}")
    if "unauthorized name" in text:
        return Fatal(f"{where}: the BMC has no (enabled) user {user!r}")
    if "nsufficient privilege" in text or "requested privilege level" in text.lower():
        return Fatal(f"{where}: user {user!r} lacks the privilege for SOL")
    if "Get Auth Capabilities error" in text or "Authentication Capabilities" in text:
        return ConnectorError(
            f"{where}: no answer from the BMC (host, port, a firewall on UDP, "
            "or IPMI over LAN disabled?)"
        )
    if "payload disabled" in text or "payload type disabled" in text:
        return ConnectorError(f"{where}: SOL is disabled on the BMC (ipmitool sol set enabled)")
    meaningful = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(_NOISE)]
    errors = [ln for ln in meaningful if ln.startswith(("Error", "Info"))] or meaningful
    if errors:
        return ConnectorError(f"{where}: {errors[-1].removeprefix('Error: ')}")
    return ConnectorError(f"{where}: ipmitool exited (status {status})")


def session_lost_reason(lines: list[str], status: int | None) -> str:
    """Why a running SOL session ended, from ipmitool's last words on stderr.

    A signal comes first: a killed ipmitool has no last words, and what it wrote while the
    session started (in `lines` too) would read as the reason.
    """
    if status is not None and status < 0:
        return f"ipmitool was killed by {_signal_words(-status)}"
    text = "\n".join(lines)
    if "No response to keepalive" in text:
        return "the BMC stopped answering the SOL keep-alive (session lost or taken over)"
    if "SOL session closed by BMC" in text:
        return "SOL session closed by BMC"
    meaningful = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(_NOISE)]
    if meaningful:
        return meaningful[-1].removeprefix("Error: ")
    return f"ipmitool exited (status {status})"


def _signal_words(number: int) -> str:
    """'signal 9 (SIGKILL)', as `kill -l` would name it; the bare number if Python cannot."""
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


# -- the ipmitool child ------------------------------------------------------------------------
class _SolProcess:
    """One ipmitool: its output (a pty) on a queue (b"" = end), its stderr lines kept apart,
    its input a pipe we write to and close to make it quit."""

    def __init__(self, argv: list[str], env: dict[str, str], password: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.password = password  # only to blot it out of what ipmitool says
        # Whether we sent it a signal: a death by a signal we did not send is someone else's
        # doing (see the module docstring, on reclaiming our own payload).
        self.signalled = False
        self.output: asyncio.Queue[bytes] = asyncio.Queue()
        self.stderr: deque[str] = deque(maxlen=40)
        self.stderr_done = asyncio.Event()
        self._stderr_buf = b""
        self.master, self.stdin, self.err, self.proc = _spawn(argv, env)
        self._watching = True
        self.loop.add_reader(self.master, self._on_output)
        self.loop.add_reader(self.err, self._on_stderr)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _on_output(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every copy of the slave is closed, ipmitool is gone
            data = b""
        if not data:
            self.loop.remove_reader(self.master)
        self.output.put_nowait(data)

    def _on_stderr(self) -> None:
        try:
            data = os.read(self.err, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self.err)
            if self._stderr_buf:
                self._add_stderr_line(self._stderr_buf)
            self.stderr_done.set()
            return
        *lines, self._stderr_buf = (self._stderr_buf + data).split(b"\n")
        for line in lines:
            self._add_stderr_line(line)

    def _add_stderr_line(self, raw: bytes) -> None:
        line = redact(raw.decode("utf-8", "replace").rstrip("\r"), self.password)
        self.stderr.append(line)
        if line and not line.startswith(_NOISE):
            log.info("ipmitool[%d]: %s", self.proc.pid, line)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.stdin, view)
            except BlockingIOError:
                await self._writable()
                continue
            except OSError as exc:  # EPIPE: ipmitool is gone (EBADF: we closed its input)
                raise ConnectorError(f"ipmitool is gone ({exc.strerror or exc})") from None
            view = view[written:]

    async def _writable(self) -> None:
        ready = self.loop.create_future()
        self.loop.add_writer(self.stdin, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            self.loop.remove_writer(self.stdin)

    async def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.proc.poll()

    async def finished(self) -> int | None:
        """Wait (briefly) for ipmitool to exit and its stderr to be complete."""
        status = await self.wait_exit(_EXIT_WAIT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stderr_done.wait(), 0.5)
        return status

    async def stop(self) -> bool:
        """End of file on its input (ipmitool releases its payload and exits), else signals.

        True if ipmitool exited by itself.
        """
        self._close_stdin()
        if self.alive:
            await self.wait_exit(_CLOSE_WAIT)
        by_itself = not self.alive
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
            if not self.alive:
                break
            self.signalled = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)  # by PID; Popen refuses once it has reaped it
            await self.wait_exit(wait)
        return by_itself

    def _close_stdin(self) -> None:
        if self.stdin >= 0:
            self.loop.remove_writer(self.stdin)
            with contextlib.suppress(OSError):
                os.close(self.stdin)
            self.stdin = -1

    def close_now(self) -> None:
        """Synchronous last resort: kill if still running, reap, close the fds. Idempotent."""
        self._close_stdin()
        if self._watching:
            self._watching = False
            self.loop.remove_reader(self.master)
            self.loop.remove_reader(self.err)
        if self.alive:
            self.signalled = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(1.0)
        for fd in (self.master, self.err):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.err = -1


def _with_queued(output: asyncio.Queue[bytes], first: bytes) -> tuple[bytes, bool]:
    """`first` and every piece of output already queued behind it, as one; and whether the end
    (b"") was among them.

    ipmitool writes each SOL packet as it comes (tens of bytes while a console prints line by
    line), and each becomes a queued piece. Handed on one by one they would each cost the
    connector's coalescing pause (30 ms): about a kilobyte a second, so the console would fall
    further and further behind, and a killed ipmitool's last bytes would take seconds to drain.
    """
    if not first:
        return b"", True
    pieces = [first]
    while not output.empty():
        piece = output.get_nowait()
        if not piece:
            return b"".join(pieces), True
        pieces.append(piece)
    return b"".join(pieces), False


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[int, int, int, subprocess.Popen[bytes]]:
    """Start ipmitool: stdout on a raw pty, stdin and stderr on pipes. (master, in, err, proc)."""
    master, slave = os.openpty()
    in_read, in_write = os.pipe()
    err_read, err_write = os.pipe()
    ours = (master, in_write, err_read)
    try:
        # Raw: the pty must not turn "\n" into "\r\n" (ipmitool makes only its stdin raw, and
        # its stdin is a pipe). Its own session: our terminal's signals never reach it.
        tty.setraw(slave)
        proc = subprocess.Popen(
            argv,
            stdin=in_read,
            stdout=slave,
            stderr=err_write,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        _close_all(ours)
        raise ConnectorError(
            f"{argv[0]} not found: install ipmitool (apt-get install ipmitool)"
        ) from None
    except BaseException:
        _close_all(ours)
        raise
    finally:
        # Only the child keeps these ends: its exit then reads as EIO / EOF here.
        _close_all((slave, in_read, err_write))
    for fd in ours:
        os.set_blocking(fd, False)
    return master, in_write, err_read, proc


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# -- the connector -----------------------------------------------------------------------------
class IpmiSolConnector(Connector):
    """A BMC's serial console over IPMI v2 SOL, through ipmitool (see the module docstring)."""

    def __init__(
        self,
        url: ConsoleURL,
        password: str,
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        takeover: bool = False,
        ipmitool: str | None = None,
        activate_timeout: float = _ACTIVATE_TIMEOUT,
    ) -> None:
        self.options = SolOptions.from_url(url, ipmitool)
        super().__init__(url.display, name or console_name(url), backoff)
        self._password = _checked_password(password, url.display)
        self._takeover_armed = takeover
        self.took_over = False  # whether this connector ever deactivated someone else's session
        # Whether it ever deactivated the payload its own killed ipmitool left behind, and until
        # when (time.monotonic()) a busy console is taken to be that dead session's.
        self.reclaimed_own_session = False
        self._reclaim_until: float | None = None
        self._activate_timeout = activate_timeout
        self._proc: _SolProcess | None = None
        self._pending = b""
        self._eof = False
        self._filter = NoticeFilter()
        self._at_line_start = True
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:  # the default would do, but make sure nothing secret ever shows
        return f"<IpmiSolConnector {self.url} connected={self.connected}>"

    @property
    def child_pid(self) -> int | None:
        """The running ipmitool's PID (for diagnostics), None when not connected."""
        return self._proc.proc.pid if self._proc is not None else None

    # -- take-over ---------------------------------------------------------------------------
    async def take_over(self) -> None:
        """Deactivate the SOL session someone else holds, then connect (open()).

        Only on the operator's word: whoever held the console loses it.
        """
        if self.connected or self._closed:
            raise ConnectorError(
                f"{self.url}: already {'connected' if self.connected else 'closed'}"
            )
        await self._deactivate_payload()
        await self.open()

    async def _deactivate_payload(self) -> None:
        log.warning("%s: taking over the SOL console (sol deactivate)", self.url)
        await self._sol_deactivate()
        self.took_over = True

    async def _reclaim_own_payload(self) -> None:
        """Free the payload our killed ipmitool left active (see the module docstring)."""
        self._reclaim_until = None  # once per death, whatever comes of it
        log.warning(
            "%s: our own ipmitool was killed and left its SOL payload active on the BMC; "
            "deactivating that payload once to reconnect (sol deactivate)",
            self.url,
        )
        await self._sol_deactivate()
        self.reclaimed_own_session = True

    async def _sol_deactivate(self) -> None:
        status, lines = await self._run_ipmitool("sol", "deactivate")
        if status != 0:
            raise classify_ipmitool_failure(lines, self.url, self.options.user, status)

    async def _run_ipmitool(self, *command: str) -> tuple[int | None, list[str]]:
        """A one-shot ipmitool command (no tty needed); its exit status and output lines."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.options.argv(*command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=ipmitool_env(self._password),
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ConnectorError(f"{self.options.ipmitool} not found: install ipmitool") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self._activate_timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return proc.returncode, redact(out.decode("utf-8", "replace"), self._password).splitlines()

    # -- Connector ---------------------------------------------------------------------------
    async def _connect(self) -> None:
        try:
            await self._activate()
        except SolSessionBusy:
            if self._takeover_armed:
                self._takeover_armed = False
                await self._deactivate_payload()
            elif self._reclaim_until is not None and time.monotonic() < self._reclaim_until:
                await self._reclaim_own_payload()
            else:
                raise
            await self._activate()
        self._takeover_armed = False  # for the first open() only, never for reconnects
        self._reclaim_until = None  # connected: whatever blocked us is gone

    async def _activate(self) -> None:
        argv = self.options.activate_argv()
        log.debug("%s: starting %s", self.url, " ".join(argv))  # argv holds no secret
        proc = _SolProcess(argv, ipmitool_env(self._password), self._password)
        try:
            leftover = await asyncio.wait_for(self._await_banner(proc), self._activate_timeout)
        except TimeoutError:
            proc.close_now()
            raise ConnectorError(
                f"{self.url}: no SOL session after {self._activate_timeout:.0f} s"
            ) from None
        except BaseException:
            proc.close_now()
            raise
        self._proc = proc
        self._pending = leftover
        self._eof = False
        self._filter = NoticeFilter()
        self._at_line_start = True  # a fresh ipmitool treats the start like a line start

    async def _await_banner(self, proc: _SolProcess) -> bytes:
        """Read until ipmitool says the session is up; return what followed the banner."""
        seen = b""
        while True:
            data = await proc.output.get()
            if not data:
                status = await proc.finished()
                # Some ipmitool messages go to stdout: they count (stderr's last, as the more
                # likely to hold the error).
                said = [*self._ipmitool_stdout(proc, seen), *proc.stderr]
                raise classify_ipmitool_failure(said, self.url, self.options.user, status)
            seen += data
            match = _BANNER.search(seen)
            if match:
                # Before the banner no SOL data can have arrived: all of that is ipmitool's.
                self._ipmitool_stdout(proc, seen[: match.start()])
                log.info("ipmitool[%d]: %s", proc.proc.pid, match.group().decode().strip())
                return seen[match.end() :]

    def _ipmitool_stdout(self, proc: _SolProcess, before_banner: bytes) -> list[str]:
        """ipmitool's own stdout lines (before any SOL data), password blotted out, logged."""
        text = redact(before_banner.decode("utf-8", "replace"), self._password)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in lines:
            if not line.startswith(_NOISE):
                log.info("ipmitool[%d]: %s", proc.proc.pid, line)
        return lines

    async def _read(self) -> bytes:
        proc = self._proc
        if proc is None:
            raise ConnectorError(f"{self.url}: not connected")
        while True:
            if self._eof:
                raise await self._lost(proc)
            if self._pending:
                data, self._pending = self._pending, b""
                out = self._filter.feed(data, time.monotonic())
                if out:
                    return out
                continue
            data = await self._next_output(proc)
            if data is None:  # a notice never came: let the held bytes through
                out = self._filter.feed(b"", time.monotonic())
            else:
                data, ended = _with_queued(proc.output, data)
                out = self._filter.feed(data, time.monotonic()) if data else b""
                if ended:
                    self._eof = True
                    out += self._filter.flush()
            if out:
                return out

    async def _next_output(self, proc: _SolProcess) -> bytes | None:
        until = self._filter.waiting_until
        if until is None:
            return await proc.output.get()
        try:
            return await asyncio.wait_for(proc.output.get(), max(0.0, until - time.monotonic()))
        except TimeoutError:
            return None

    async def _lost(self, proc: _SolProcess) -> ConnectorError:
        status = await proc.finished()
        if status is not None and status < 0 and not proc.signalled:
            # Killed by someone else: its payload is likely still active; the reconnect may
            # free it (see the module docstring).
            self._reclaim_until = time.monotonic() + _RECLAIM_WINDOW
        return ConnectorError(f"{self.url}: {session_lost_reason(list(proc.stderr), status)}")

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            proc = self._require_proc()
            escaped, self._at_line_start = escape_sol_input(data, self._at_line_start)
            await proc.write(escaped)

    async def _send_break(self) -> None:
        async with self._write_lock:
            proc = self._require_proc()
            sequence = b"~B" if self._at_line_start else b"\r~B"
            self._filter.expect(BREAK_NOTICE, time.monotonic() + _NOTICE_WAIT)
            await proc.write(sequence)
            self._at_line_start = True  # ipmitool's escape keeps its line-start state

    def _require_proc(self) -> _SolProcess:
        if self._proc is None:
            raise ConnectorError(f"{self.url}: not connected")
        return self._proc

    async def _disconnect(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if not await proc.stop():
                log.warning(
                    "%s: ipmitool had to be killed; the BMC may hold the SOL console until its "
                    "session times out",
                    self.url,
                )
        except Exception:  # must not raise; close_now below still cleans up
            log.exception("%s: stopping ipmitool", self.url)
        finally:
            proc.close_now()


def connect_ipmi(url: ConsoleURL, **options: Any) -> IpmiSolConnector:
    """Registry factory for ipmi://user@bmc[:port][?cipher=3&keepalive=sol&timeout=&retries=].

    Options: `password` (the CLI resolves it with resolve_ipmi_password), else `password_file`,
    else $CRASHCART_IPMI_PASSWORD (never a prompt here: the caller may not own a terminal);
    `takeover` (only after the operator agreed), `backoff`, `name`, `ipmitool` (path).
    Options meant for other transports are ignored.
    """
    password = options.get("password")
    if password is None:
        password = resolve_ipmi_password(options.get("password_file"), prompt=False)
    return IpmiSolConnector(
        url,
        password,
        name=options.get("name"),
        backoff=options.get("backoff"),
        takeover=bool(options.get("takeover", False)),
        ipmitool=options.get("ipmitool"),
    )
