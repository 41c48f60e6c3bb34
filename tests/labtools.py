"""Helpers for tests that talk to real peers (socat, ser2net, ipmi_sim, ipmitool, qemu).

A missing peer skips the test with a reason on a laptop, but under CRASHCART_REQUIRE_LAB=1 (CI,
which installs every peer) it is a failure: a green run must have exercised the real thing.
Processes are started in their own session and killed by PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

LAB_REQUIRED = os.environ.get("CRASHCART_REQUIRE_LAB") == "1"


def require_commands(*names: str) -> dict[str, str]:
    """Absolute paths of these commands; skip (or fail under CI) if any is missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
        )
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        message = f"needs {', '.join(missing)} (a real peer) on PATH"
        if LAB_REQUIRED:
            pytest.fail(message + " and CRASHCART_REQUIRE_LAB=1", pytrace=False)
        pytest.skip(message)
    return found


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_for_path(path: Path, timeout: float = 10.0) -> bool:
    return wait_for(lambda: path.exists(), timeout)


def wait_for_tcp(port: int, timeout: float = 10.0) -> bool:
    def ready() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    return wait_for(ready, timeout)


class Processes:
    """Processes a test started; `stop_all` kills exactly those, by PID (process group)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], **kwargs) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


@pytest.fixture
def processes() -> Iterator[Processes]:
    group = Processes()
    try:
        yield group
    finally:
        group.stop_all()
