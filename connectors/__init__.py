"""Console transports. `open_connector(url)` picks one by the URL's scheme (see DESIGN.md):

    local serial      /dev/ttyUSB0, serial:///dev/ttyS0?baud=115200&parity=N&bits=8&stop=1&rtscts=0
    console servers   rfc2217://host:port, socket://host:port
    telnet (IAC)      telnet://host:port
    IPMI v2 SOL       ipmi://user@bmc[:port][?cipher=3]
    netconsole (UDP)  netconsole://127.0.0.1:6666
    a command (pty)   cmd:ssh -t conserver console web01
    replay            FILE.cast, FILE.log

Each transport lives in its own module and is imported only when used, so that a rescue system
without, say, ipmitool can still watch its serial ports.
"""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.base import (
    Backoff,
    Chunk,
    Connector,
    ConnectorError,
    ConnectorEvent,
    Fatal,
    Gap,
    StateChange,
    Unsupported,
)

__all__ = [
    "Backoff",
    "Chunk",
    "Connector",
    "ConnectorError",
    "ConnectorEvent",
    "ConsoleURL",
    "Fatal",
    "Gap",
    "StateChange",
    "Unsupported",
    "console_name",
    "open_connector",
    "parse_console_url",
]

# scheme -> (module, factory function name). Each factory takes (ConsoleURL, **options).
_TRANSPORTS: dict[str, tuple[str, str]] = {
    "serial": ("connectors.serial", "connect_serial"),
    "rfc2217": ("connectors.serial", "connect_serial"),
    "socket": ("connectors.serial", "connect_serial"),
    "telnet": ("connectors.telnet", "connect_telnet"),
    "ipmi": ("connectors.ipmi", "connect_ipmi"),
    "netconsole": ("connectors.netconsole", "connect_netconsole"),
    "cmd": ("connectors.command", "connect_command"),
    "replay": ("connectors.replay", "connect_replay"),
}


@dataclass(frozen=True, slots=True)
class ConsoleURL:
    """A parsed console URL. `display` never contains a password."""

    scheme: str
    raw: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    path: str | None = None  # device path, file path, or the command line for cmd:
    options: dict[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        if self.scheme in ("serial",) and self.path:
            return self.path
        if self.scheme == "cmd":
            return f"cmd:{self.path}"
        if self.scheme == "replay":
            return str(self.path)
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{user}{self.host or ''}{port}"


def parse_console_url(url: str) -> ConsoleURL:
    """Parse a console URL; ConnectorError (one line) for anything unusable."""
    url = url.strip()
    if not url:
        raise ConnectorError("empty console URL")
    if url.startswith("cmd:"):
        command = url[4:].strip()
        if not command:
            raise ConnectorError("cmd: needs a command, e.g. 'cmd:ssh -t console-server web01'")
        return ConsoleURL("cmd", url, path=command)
    if url.startswith("/dev/") or (url.startswith("/") and "://" not in url and _is_device(url)):
        return ConsoleURL("serial", url, path=url)
    if "://" not in url:
        if url.endswith((".cast", ".log")) or Path(url).is_file():
            return ConsoleURL("replay", url, path=url)
        raise ConnectorError(f"not a console URL or a recording: {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _TRANSPORTS:
        known = ", ".join(sorted(s for s in _TRANSPORTS if s not in ("replay", "cmd")))
        raise ConnectorError(f"unknown console URL scheme {scheme!r} (known: {known}, cmd:)")
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if scheme == "serial":
        if not parts.path:
            raise ConnectorError(f"{url}: serial:// needs a device path, e.g. serial:///dev/ttyS0")
        return ConsoleURL("serial", url, path=unquote(parts.path), options=options)
    if parts.password:
        raise ConnectorError(
            "a password in the URL would show in process lists and logs: use "
            "CRASHCART_IPMI_PASSWORD or --password-file"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConnectorError(f"{url}: bad port") from exc
    if not parts.hostname:
        raise ConnectorError(f"{url}: missing host")
    if scheme in ("rfc2217", "socket", "telnet", "netconsole") and port is None:
        raise ConnectorError(f"{url}: missing port")
    return ConsoleURL(
        scheme,
        url,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        options=options,
    )


def _is_device(path: str) -> bool:
    p = Path(path)
    return p.exists() and not p.is_file() and not p.is_dir()


def console_name(url: ConsoleURL) -> str:
    """A short name for a console, safe as a file or folder name."""
    if url.scheme == "serial" and url.path:
        base = Path(url.path).name
    elif url.scheme == "replay" and url.path:
        base = Path(url.path).stem
    elif url.scheme == "cmd" and url.path:
        try:
            words = shlex.split(url.path)
        except ValueError:
            words = url.path.split()
        base = words[-1] if words else "cmd"
    else:
        base = f"{url.host}-{url.port}" if url.port is not None else str(url.host)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "console"


def open_connector(url: str, **options: Any) -> Connector:
    """The connector for `url` (not yet opened: call `await conn.open()`)."""
    parsed = parse_console_url(url)
    module_name, factory_name = _TRANSPORTS[parsed.scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConnectorError(f"{parsed.display}: transport unavailable ({exc})") from exc
    factory = getattr(module, factory_name)
    connector: Connector = factory(parsed, **options)
    return connector
