"""Serial consoles on pyserial: local devices, RFC 2217 console servers and raw TCP ports.

    /dev/ttyUSB0
    serial:///dev/ttyS0?baud=115200&parity=N&bits=8&stop=1&rtscts=0&xonxoff=0
    rfc2217://console-server:7001?baud=115200      (line settings are sent to the server)
    socket://console-server:7001                   (raw TCP: no line settings, no BREAK)

Local devices are read through the event loop (`add_reader` on the non-blocking fd), so an idle
console costs nothing. pyserial's network ports are blocking objects: each connection gets one
dedicated reader thread that blocks in `read()` with a short timeout (so close is prompt) and
never spins. Reconnection (a USB adapter re-plugged, a console server restarted) is the base
class's loop: `_read` raises when the line drops and `_connect` fails until it is back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import re
import socket
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import serial
import serial.rfc2217
import serial.urlhandler.protocol_socket

from connectors import ConsoleURL, console_name
from connectors.base import Backoff, Connector, ConnectorError, Unsupported

__all__ = [
    "LineSettings",
    "LocalSerialConnector",
    "NetworkSerialConnector",
    "SerialConnector",
    "connect_serial",
    "parse_line_settings",
]

#: How long a network read blocks before it looks again at whether the connector is closing.
READ_TIMEOUT = 0.2
#: BREAK length: what tcsendbreak(fd, 0) gives, and what sysrq-over-serial expects.
BREAK_SECONDS = 0.25
READ_SIZE = 65536

_PARITIES = {
    "N": serial.PARITY_NONE,
    "E": serial.PARITY_EVEN,
    "O": serial.PARITY_ODD,
    "M": serial.PARITY_MARK,
    "S": serial.PARITY_SPACE,
}
_STOPBITS = {
    "1": serial.STOPBITS_ONE,
    "1.5": serial.STOPBITS_ONE_POINT_FIVE,
    "2": serial.STOPBITS_TWO,
}
_LINE_OPTIONS = ("baud", "parity", "bits", "stop", "rtscts", "xonxoff")
_MAX_BAUD = 20_000_000


# -- options ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineSettings:
    """A serial line's settings, validated. Defaults are a Linux console's: 115200 8N1."""

    baud: int = 115200
    parity: str = "N"
    bits: int = 8
    stop: str = "1"
    rtscts: bool = False
    xonxoff: bool = False

    def pyserial_kwargs(self) -> dict[str, Any]:
        return {
            "baudrate": self.baud,
            "parity": _PARITIES[self.parity],
            "bytesize": self.bits,
            "stopbits": _STOPBITS[self.stop],
            "rtscts": self.rtscts,
            "xonxoff": self.xonxoff,
        }

    def __str__(self) -> str:
        flow = "rtscts" if self.rtscts else "xonxoff" if self.xonxoff else "no flow control"
        return f"{self.baud} {self.bits}{self.parity}{self.stop}, {flow}"


def parse_line_settings(options: Mapping[str, object], where: str) -> LineSettings:
    """Validate baud/parity/bits/stop/rtscts/xonxoff; ConnectorError (one line) otherwise."""
    unknown = sorted(set(options) - set(_LINE_OPTIONS))
    if unknown:
        raise ConnectorError(
            f"{where}: unknown option {unknown[0]!r} (known: {', '.join(_LINE_OPTIONS)})"
        )
    defaults = LineSettings()
    return LineSettings(
        baud=_baud(options.get("baud", defaults.baud), where),
        parity=_parity(options.get("parity", defaults.parity), where),
        bits=_bits(options.get("bits", defaults.bits), where),
        stop=_stop(options.get("stop", defaults.stop), where),
        rtscts=_flag(options.get("rtscts", defaults.rtscts), "rtscts", where),
        xonxoff=_flag(options.get("xonxoff", defaults.xonxoff), "xonxoff", where),
    )


def _baud(value: object, where: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= _MAX_BAUD:
        raise ConnectorError(
            f"{where}: baud must be a positive whole number, e.g. 115200 (got {value!r})"
        )
    return int(text)


def _parity(value: object, where: str) -> str:
    text = str(value).strip().upper()
    if text not in _PARITIES:
        raise ConnectorError(f"{where}: parity must be one of N, E, O, M, S (got {value!r})")
    return text


def _bits(value: object, where: str) -> int:
    text = str(value).strip()
    if text not in ("5", "6", "7", "8"):
        raise ConnectorError(f"{where}: bits must be 5, 6, 7 or 8 (got {value!r})")
    return int(text)


def _stop(value: object, where: str) -> str:
    text = str(value).strip()
    text = {"1.0": "1", "2.0": "2"}.get(text, text)
    if text not in _STOPBITS:
        raise ConnectorError(f"{where}: stop must be 1, 1.5 or 2 (got {value!r})")
    return text


def _flag(value: object, name: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text not in ("0", "1"):
        raise ConnectorError(f"{where}: {name} must be 0 or 1 (got {value!r})")
    return text == "1"


# -- errors ----------------------------------------------------------------------------------
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\] ([^\]\[:']+)")
_FRIENDLY = {
    errno.EBUSY: "busy: another program has it open",
    errno.ENOENT: "no such device",
    errno.EACCES: "permission denied (is this user in the dialout group?)",
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


# pyserial's words for "the far end closed the TCP connection" (socket://, rfc2217://).
_CLOSED_BY_PEER = ("socket disconnected", "reader thread died")


def _reason(exc: BaseException) -> str:
    """One line for an operator out of pyserial's nested messages ("Could not open port ...")."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if any(phrase in text for phrase in _CLOSED_BY_PEER):
        return "connection closed by the server"
    if "exclusively lock" in text:  # flock(LOCK_EX|LOCK_NB) failed: EAGAIN
        return "busy: another program has it open (exclusive lock)"
    code = getattr(exc, "errno", None)
    match = _ERRNO_IN_TEXT.search(text)
    if not isinstance(code, int) and match:
        code = int(match.group(1))
    if isinstance(code, int) and code in _FRIENDLY:
        return _FRIENDLY[code]
    if match:
        return match.group(2).strip()
    if text.lower().startswith("could not open port"):
        return text.rsplit(": ", 1)[-1]
    return text


def _error(display: str, exc: BaseException) -> ConnectorError:
    return ConnectorError(f"{display}: {_reason(exc)}")


# -- connectors ------------------------------------------------------------------------------
class SerialConnector(Connector):
    """Common to local and network serial ports: settings, the pyserial object, errors."""

    def __init__(
        self, url: ConsoleURL, settings: LineSettings, backoff: Backoff | None = None
    ) -> None:
        super().__init__(url.display, console_name(url), backoff)
        self.console_url = url
        self.settings = settings
        self._port: serial.SerialBase | None = None
        # One write at a time: concurrent writers would interleave their bytes on the line
        # (and, locally, replace each other's add_writer callback).
        self._write_lock = asyncio.Lock()

    def _require_port(self) -> serial.SerialBase:
        if self._port is None:
            raise ConnectorError(f"{self.url}: not connected")
        return self._port


class LocalSerialConnector(SerialConnector):
    """A device node: /dev/ttyS0, /dev/ttyUSB0, a pty. Read with `add_reader`, no threads."""

    def __init__(
        self, url: ConsoleURL, settings: LineSettings, backoff: Backoff | None = None
    ) -> None:
        super().__init__(url, settings, backoff)
        self.path = url.path or ""
        self._fd: int | None = None  # the open port's fd, for the event loop

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ConnectorError(f"{self.url}: not connected")
        return self._fd

    async def _connect(self) -> None:
        try:
            # exclusive=True takes flock(LOCK_EX): a second crashcart (or picocom) on the same
            # port fails here instead of the two stealing bytes from each other.
            port = _ConsoleSerial(
                self.path, exclusive=True, timeout=0, **self.settings.pyserial_kwargs()
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise _error(self.url, exc) from exc
        fd = port.fileno()
        try:
            _block_until_a_byte(fd)
        except termios.error as exc:
            port.close()
            raise ConnectorError(f"{self.url}: not a terminal device ({exc.args[-1]})") from exc
        self._port, self._fd = port, fd

    async def _read(self) -> bytes:
        fd = self._require_fd()
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                await _wait_fd(fd, readable=True)
                continue
            except OSError as exc:  # EIO: the adapter went away, or a pty lost its other end
                raise ConnectorError(f"{self.url}: {exc.strerror or exc}") from exc
            if not data:
                # With VMIN=1 a read of 0 bytes is a hang-up, never "nothing yet".
                raise ConnectorError(f"{self.url}: device hung up")
            return data

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            await self._write_all(self._require_fd(), memoryview(data))

    async def _write_all(self, fd: int, view: memoryview) -> None:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await _wait_fd(fd, readable=False)
            except OSError as exc:
                raise ConnectorError(f"{self.url}: write failed: {exc.strerror or exc}") from exc

    async def _send_break(self) -> None:
        fd = self._require_fd()
        if _is_pty(fd):
            # Linux ptys have no break_ctl: tcsendbreak returns 0 at once and nothing reaches
            # the other end. Saying so beats a BREAK (a sysrq attempt) that silently vanishes.
            raise Unsupported(
                f"{self.url}: a pseudo-terminal cannot carry a BREAK (Linux drops it); "
                "reach the machine through its real serial port or console server"
            )
        try:
            # Duration 0 is the standard 0.25-0.5 s break (pyserial's send_break(0.25) would
            # ask for 0.1 s through TCSBRKP).
            await asyncio.to_thread(termios.tcsendbreak, fd, 0)
        except (termios.error, OSError) as exc:
            raise ConnectorError(f"{self.url}: BREAK failed: {_reason(exc)}") from exc

    async def _disconnect(self) -> None:
        port, self._port, self._fd = self._port, None, None
        if port is not None:
            _close_quietly(port)  # the device may be gone already; closing is all we want


class NetworkSerialConnector(SerialConnector):
    """rfc2217:// and socket:// through pyserial: a dedicated, sleeping reader thread."""

    def __init__(
        self, url: ConsoleURL, settings: LineSettings, backoff: Backoff | None = None
    ) -> None:
        super().__init__(url, settings, backoff)
        self.pyserial_url = f"{url.scheme}://{_host_for_url(url.host or '')}:{url.port}"
        self._stopping = threading.Event()
        # Held by the reader thread while it is inside pyserial, so that close never pulls the
        # port from under a read in progress.
        self._reading = threading.Lock()
        self._reader: concurrent.futures.ThreadPoolExecutor | None = None
        # socket:// only: the TCP connection as an asyncio stream (see _read).
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _connect(self) -> None:
        opening = asyncio.ensure_future(asyncio.to_thread(self._open_port))
        try:
            port = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # close() while connecting: the thread still finishes the open; close what it opens.
            opening.add_done_callback(_close_when_opened)
            raise
        except (serial.SerialException, OSError, ValueError) as exc:
            raise _error(self.url, exc) from exc
        self._stopping.clear()
        self._port = port
        # One thread per connection, not the loop's shared default pool: a reader blocks for
        # as long as the console is quiet, and twenty consoles must not starve everyone else.
        self._reader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"crashcart-{self.name}"
        )

    def _open_port(self) -> serial.SerialBase:
        kwargs = self.settings.pyserial_kwargs()
        # Our subclasses of pyserial's URL handlers, not serial_for_url: see _KeepInput.
        port: serial.SerialBase
        if self.console_url.scheme == "rfc2217":
            port = _ConsoleRFC2217(None, timeout=READ_TIMEOUT, **kwargs)
        else:
            port = _ConsoleSocket(None, timeout=READ_TIMEOUT)
        port.port = self.pyserial_url
        port.open()
        return port

    async def _read(self) -> bytes:
        port = self._require_port()
        loop = asyncio.get_running_loop()
        try:
            stream = await self._tcp_stream(port)
            if stream is not None:
                # socket:// is plain TCP: read it on the event loop, with the socket registered
                # once. A thread hand-off and pyserial's select loop per burst cost about 1 % of
                # a core per 115200-baud console; a fleet of 32 must stay well under one core.
                data = await stream[0].read(READ_SIZE)
                if not data:
                    raise ConnectorError(f"{self.url}: connection closed by the server")
                return data
            return await loop.run_in_executor(self._reader, self._blocking_read, port)
        except (serial.SerialException, OSError) as exc:
            raise _error(self.url, exc) from exc

    async def _tcp_stream(
        self, port: serial.SerialBase
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The TCP connection under a socket:// port as an asyncio stream, else None."""
        if not isinstance(port, _ConsoleSocket):
            return None
        if self._stream is None:
            sock: socket.socket = port._socket  # pyserial opened and owns it until we take it
            port._socket = None  # the stream owns it now: pyserial must not close it twice
            port.is_open = False
            self._stream = await asyncio.open_connection(sock=sock, limit=READ_SIZE * 4)
        return self._stream

    def _blocking_read(self, port: serial.SerialBase) -> bytes:
        """In the reader thread: block until some bytes arrive, the line drops, or close."""
        with self._reading:
            while not self._stopping.is_set():
                first = port.read(1)  # sleeps up to READ_TIMEOUT in select/queue.get
                if first:
                    try:
                        return first + self._drain(port)
                    except (serial.SerialException, OSError):
                        return first  # deliver what arrived; the next read reports the drop
            raise ConnectorError(f"{self.url}: closed")

    def _drain(self, port: serial.SerialBase) -> bytes:
        """Whatever else is already there, without waiting (one console burst, one Chunk)."""
        if isinstance(port, serial.rfc2217.Serial):
            waiting = port.in_waiting  # bytes already decoded by pyserial's own thread
            return port.read(waiting) if waiting else b""
        # socket://: in_waiting only says 0 or 1, so read non-blocking for one recv's worth.
        port.timeout = 0
        try:
            return port.read(READ_SIZE)
        finally:
            port.timeout = READ_TIMEOUT

    async def _write(self, data: bytes) -> None:
        port = self._require_port()
        try:
            async with self._write_lock:
                stream = await self._tcp_stream(port)
                if stream is not None:
                    stream[1].write(data)
                    await stream[1].drain()
                else:
                    await asyncio.to_thread(port.write, data)
        except (serial.SerialException, OSError) as exc:
            raise ConnectorError(f"{self.url}: write failed: {_reason(exc)}") from exc

    async def _send_break(self) -> None:
        port = self._require_port()
        if not isinstance(port, _ConsoleRFC2217):
            raise Unsupported(
                f"{self.url}: a raw TCP port cannot carry a BREAK; use rfc2217:// or telnet:// "
                "if the console server offers it"
            )
        try:
            await asyncio.to_thread(port.timed_break, BREAK_SECONDS)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConnectorError(
                f"{self.url}: BREAK refused by the server: {_reason(exc)}"
            ) from exc

    async def _disconnect(self) -> None:
        port, self._port = self._port, None
        reader, self._reader = self._reader, None
        stream, self._stream = self._stream, None
        self._stopping.set()
        if stream is not None:
            stream[1].close()
            with contextlib.suppress(OSError, ConnectionError):
                await stream[1].wait_closed()
        if port is not None:
            await asyncio.to_thread(self._close_after_reader, port)
        if reader is not None:
            reader.shutdown(wait=False)

    def _close_after_reader(self, port: serial.SerialBase) -> None:
        # The reader notices _stopping within READ_TIMEOUT; wait for it, then close.
        with self._reading:
            _close_quietly(port)


class _KeepInput(serial.SerialBase):
    """Never discard console output: pyserial's network ports "start clean" at open, which
    throws away what a console server sends the moment we connect and, over RFC 2217, sends
    PURGE-DATA so that the server flushes the device's input queue. After a reconnect that
    is exactly where the panic that scrolled by while we were away is waiting."""

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _ConsoleSerial(serial.Serial):
    """pyserial's local port without the tcflush(TCIFLUSH) at open (see _KeepInput): what the
    UART and the tty buffer received while we were reconnecting is console output too."""

    def _reset_input_buffer(self) -> None:
        pass


class _ConsoleSocket(_KeepInput, serial.urlhandler.protocol_socket.Serial):
    """pyserial's socket:// port, keeping its input (see _KeepInput)."""


class _ConsoleRFC2217(_KeepInput, serial.rfc2217.Serial):
    """pyserial's RFC 2217 client, adjusted for watching consoles.

    - Input is never purged at open (see _KeepInput).
    - DTR/RTS are left as the console server has them. pyserial sets both at open and waits for
      the server's acknowledgement; a server port that cannot drive modem lines (ser2net on a
      pty, some terminal servers) never acknowledges, and the open would fail after 3 s. A
      console monitor has no business toggling them anyway: on some boards they are wired to
      reset.
    - `timed_break` tolerates a wrong acknowledgement of BREAK-OFF: ser2net 4.3 answers it with
      the BREAK-ON value although it did clear the break (seen with strace: TIOCCBRK issued).
    """

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def timed_break(self, duration: float) -> None:
        self.break_condition = True  # waits for the server's acknowledgement, raises if refused
        try:
            time.sleep(duration)
        finally:
            # "remote rejected value" here is ser2net's answer to BREAK-OFF, see above.
            with contextlib.suppress(ValueError):
                self.break_condition = False


# -- helpers ---------------------------------------------------------------------------------
def _block_until_a_byte(fd: int) -> None:
    """VMIN=1, VTIME=0: pyserial leaves VMIN=0, where a read with nothing to return gives 0
    bytes instead of EAGAIN, which would be indistinguishable from a hang-up."""
    attrs = termios.tcgetattr(fd)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


async def _wait_fd(fd: int, *, readable: bool) -> None:
    """Sleep until the event loop reports the fd readable (or writable)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    add: Callable[..., None] = loop.add_reader if readable else loop.add_writer
    remove: Callable[[int], bool] = loop.remove_reader if readable else loop.remove_writer
    add(fd, _resolve, ready)
    try:
        await ready
    finally:
        remove(fd)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# UNIX98 pty slaves are majors 136-143 (/dev/pts/N); legacy BSD ptys 2 and 3; ptmx is 5:2.
_PTY_MAJORS = frozenset(range(136, 144)) | {2, 3}


def _is_pty(fd: int) -> bool:
    rdev = os.fstat(fd).st_rdev
    return os.major(rdev) in _PTY_MAJORS or (os.major(rdev), os.minor(rdev)) == (5, 2)


def _close_when_opened(opening: asyncio.Future[serial.SerialBase]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        port = opening.result()
        threading.Thread(target=_close_quietly, args=(port,), daemon=True).start()


def _close_quietly(port: serial.SerialBase) -> None:
    with contextlib.suppress(OSError, serial.SerialException):
        port.close()


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- factory ---------------------------------------------------------------------------------
def connect_serial(url: ConsoleURL, **options: Any) -> Connector:
    """The connector for a serial, rfc2217:// or socket:// URL (not yet opened).

    URL query options are checked strictly (an operator's typo must not pass silently):
    baud, parity, bits, stop, rtscts, xonxoff. Keyword options from the program override them,
    plus `backoff` (a Backoff); keywords meant for other transports are ignored, as elsewhere.
    """
    backoff = options.get("backoff")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConnectorError(f"{url.display}: backoff must be a Backoff")
    if url.scheme == "socket":
        if url.options:
            raise ConnectorError(
                f"{url.display}: a raw TCP port carries no line settings "
                f"({', '.join(sorted(url.options))}); set them on the console server "
                "or use rfc2217://"
            )
        return NetworkSerialConnector(url, LineSettings(), backoff)
    overrides = {k: v for k, v in options.items() if k in _LINE_OPTIONS}
    settings = parse_line_settings({**url.options, **overrides}, url.display)
    if url.scheme == "rfc2217":
        return NetworkSerialConnector(url, settings, backoff)
    if url.scheme == "serial" and url.path:
        return LocalSerialConnector(url, settings, backoff)
    raise ConnectorError(f"{url.display}: not a serial console URL")
