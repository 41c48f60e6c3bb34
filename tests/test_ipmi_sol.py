"""ipmi:// SOL connector: pure helpers, then a real ipmitool against a real BMC (ipmi_sim).

The lab tests start OpenIPMI's simulator with shared/lab/ipmi's scripts (tests/ipmilab.py). What
the server "prints" is written to the lab's host pty (its ttyS0) and must come out of the
connector unchanged; what the operator types must arrive there unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipmilab import BmcLab, Tap, bmc_lab, read_host, run, write_host
from labtools import Processes, free_udp_port, require_commands, wait_for

from connectors import ConnectorError, open_connector, parse_console_url
from connectors.base import Fatal
from connectors.ipmi import (
    BREAK_NOTICE,
    PASSWORD_ENV,
    IpmiSolConnector,
    NoticeFilter,
    SolOptions,
    SolSessionBusy,
    classify_ipmitool_failure,
    escape_sol_input,
    ipmitool_env,
    resolve_ipmi_password,
    session_lost_reason,
)

__all__ = ["bmc_lab"]  # the fixture, imported for pytest

URL = "ipmi://admin@bmc.example:6230"


# -- escapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "start", "sent", "end"),
    [
        (b"~.", True, b"~~.", False),  # at the start of the session ~. would quit
        (b"ls\r~.", False, b"ls\r~~.", False),
        (b"a~.b", True, b"a~.b", False),  # mid-line ~ is not an escape: passed as is
        (b"\n~B", False, b"\n~~B", False),
        (b"~~", True, b"~~~", False),  # only the first ~ opens an escape
        (b"x\r", False, b"x\r", True),
        (b"", True, b"", True),
        (b"", False, b"", False),
    ],
)
def test_escape_doubles_only_a_tilde_at_a_line_start(
    typed: bytes, start: bool, sent: bytes, end: bool
) -> None:
    assert escape_sol_input(typed, start) == (sent, end)


def test_escape_state_carries_across_writes() -> None:
    out, state = escape_sol_input(b"echo\r", False)
    out2, state = escape_sol_input(b"~?", state)
    assert out + out2 == b"echo\r~~?"
    assert state is False


# -- ipmitool's notices --------------------------------------------------------------------------
def test_break_notice_is_removed_even_split_across_reads() -> None:
    notices = NoticeFilter()
    notices.expect(BREAK_NOTICE, deadline=100.0)
    out = notices.feed(b"[  1.0] sysrq: ~B [se", now=1.0)
    assert out == b"[  1.0] sysrq: "  # the tail that may start the notice is held
    assert notices.waiting_until == 100.0
    out += notices.feed(b"nd break]\nHELP\r\n", now=1.1)
    assert out == b"[  1.0] sysrq: HELP\r\n"
    assert notices.waiting_until is None


def test_held_bytes_are_released_when_the_notice_never_comes() -> None:
    notices = NoticeFilter()
    notices.expect(BREAK_NOTICE, deadline=2.0)
    assert notices.feed(b"login: ~", now=1.0) == b"login: "
    assert notices.feed(b"", now=2.5) == b"~"  # past the deadline: given back unchanged
    assert notices.feed(b"~B [send break]\n", now=2.6) == b"~B [send break]\n"


def test_notice_text_is_console_data_when_no_break_was_sent() -> None:
    assert NoticeFilter().feed(BREAK_NOTICE, now=0.0) == BREAK_NOTICE


def test_flush_returns_what_was_held() -> None:
    notices = NoticeFilter()
    notices.expect(BREAK_NOTICE, deadline=9.0)
    assert notices.feed(b"abc~B [", now=0.0) == b"abc"
    assert notices.flush() == b"~B ["


# -- ipmitool's failures -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (["Info: SOL payload already active on another session"], "in use by another session"),
        (["Loading IANA PEN Registry...", "> RAKP 2 HMAC is invalid"], "rejected the password"),
        (["RAKP 2 message indicates an error : unauthorized name"], "no (enabled) user 'admin'"),
        (["Get Auth Capabilities error", "Error: Unable to establish"], "no answer from the BMC"),
        (["Info: SOL payload disabled"], "SOL is disabled"),
        (["Error: Unable to establish IPMI v2 / RMCP+ session"], "Unable to establish IPMI v2"),
        ([], "ipmitool exited (status 1)"),
    ],
)
def test_failures_become_one_line(stderr: list[str], expected: str) -> None:
    error = classify_ipmitool_failure(stderr, URL, "admin", 1)
    assert expected in str(error)
    assert "\n" not in str(error)
    assert isinstance(error, SolSessionBusy) == ("another session" in expected)
    # Credentials the BMC refused are never retried: BMCs lock accounts after bad logins.
    credentials = ("rejected the password", "no (enabled) user")
    assert isinstance(error, Fatal) == any(c in expected for c in credentials)


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            ["Error: No response to keepalive - Terminating session", "Info: SOL payload already"],
            "the BMC stopped answering the SOL keep-alive (session lost or taken over)",
        ),
        (
            ["Error sending SOL data: FAIL", "SOL session closed by BMC"],
            "SOL session closed by BMC",
        ),
        (["Loading IANA PEN Registry...", "Error: something new"], "something new"),
        (["tcgetattr: Inappropriate ioctl for device"], "ipmitool exited (status 1)"),
    ],
)
def test_why_a_running_session_ended(stderr: list[str], reason: str) -> None:
    assert session_lost_reason(stderr, 1) == reason


# -- options, argv, password -----------------------------------------------------------------------
def test_argv_takes_the_password_from_the_environment_only() -> None:
    assert SolOptions.from_url(parse_console_url(URL + "?cipher=0")).cipher == 0
    options = SolOptions.from_url(parse_console_url(URL + "?cipher=17&timeout=3&retries=1"))
    argv = options.activate_argv()
    assert argv[:5] == ["ipmitool", "-I", "lanplus", "-C", "17"]
    assert "-E" in argv and "-P" not in argv and "-f" not in argv
    assert argv[-3:] == ["sol", "activate", "usesolkeepalive"]
    assert argv[argv.index("-N") : argv.index("-N") + 4] == ["-N", "3", "-R", "1"]
    defaults = SolOptions.from_url(parse_console_url("ipmi://root@10.0.0.9"))
    assert (defaults.port, defaults.cipher, defaults.keepalive) == (623, 3, "sol")
    plain = SolOptions.from_url(parse_console_url(URL + "?keepalive=deviceid"))
    assert plain.activate_argv()[-2:] == ["sol", "activate"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ipmi://bmc.example", "needs a user"),
        (URL + "?chiper=3", "unknown option 'chiper'"),
        (URL + "?cipher=99", "cipher must be a number from 0 to 17"),
        (URL + "?interface=lan", "interface=lanplus"),
        (URL + "?keepalive=often", "keepalive must be one of"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        SolOptions.from_url(parse_console_url(url))


def test_child_environment_carries_ipmi_password_but_not_ours() -> None:
    env = ipmitool_env("s3cret", {PASSWORD_ENV: "s3cret", "PATH": "/usr/bin"})
    assert env["IPMI_PASSWORD"] == "s3cret"
    assert PASSWORD_ENV not in env and env["PATH"] == "/usr/bin"


def test_password_file_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "bmc.pass"
    secret.write_bytes(b"from-file \r\n")
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert resolve_ipmi_password(str(secret), prompt=False) == "from-file "  # only EOL dropped
    assert resolve_ipmi_password(None, prompt=False) == "from-env"


def test_password_prompt_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-in")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert resolve_ipmi_password(None, prompt=True) == "typed-in"
    with pytest.raises(ConnectorError, match="no IPMI password: set CRASHCART_IPMI_PASSWORD"):
        resolve_ipmi_password(None, prompt=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConnectorError, match="no IPMI password"):
        resolve_ipmi_password(None, prompt=True)


def test_bad_passwords_are_refused_without_showing_them(tmp_path: Path) -> None:
    long = tmp_path / "long"
    long.write_text("x" * 21 + "TOPSECRET")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, message in (
        (long, "at most 20 bytes"),
        (empty, "empty"),
        (tmp_path / "no", "No such"),
    ):
        with pytest.raises(ConnectorError, match=message) as caught:
            resolve_ipmi_password(str(path), prompt=False)
        assert "TOPSECRET" not in str(caught.value)


def test_registry_uses_the_environment_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "env-secret")
    conn = open_connector(URL)
    assert isinstance(conn, IpmiSolConnector)
    assert conn.url == URL and conn.name == "bmc.example-6230"
    assert "env-secret" not in repr(conn) + repr(vars(conn).get("options"))
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConnectorError, match="no IPMI password"):
        open_connector(URL)


# -- against the real BMC ------------------------------------------------------------------------
@pytest.fixture
def lab(bmc_lab: BmcLab) -> Iterator[BmcLab]:
    """The module's BMC with its SOL payload free, before and after each test."""
    bmc_lab.deactivate_sol()
    bmc_lab.reset_sol_sequence()
    yield bmc_lab
    bmc_lab.deactivate_sol()


@pytest.fixture
def host(lab: BmcLab) -> Iterator[int]:
    fd = lab.open_host()
    yield fd
    os.close(fd)


def sol(lab: BmcLab, query: str = "", **options: object) -> IpmiSolConnector:
    conn = open_connector(lab.url(query), password=lab.password, **options)
    assert isinstance(conn, IpmiSolConnector)
    return conn


def stale_session(lab: BmcLab, processes: Processes) -> None:
    """Leave the SOL payload held by a dead client: activate, then SIGKILL (no ~.)."""
    master, slave = os.openpty()
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(lab.port)]
    proc = processes.start(
        [*argv, "-U", lab.user, "-E", "sol", "activate"],
        stdin=slave,
        stdout=slave,
        env={**os.environ, "IPMI_PASSWORD": lab.password},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 10
    while b"SOL Session operational" not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            seen += os.read(master, 4096)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    os.close(master)
    assert b"SOL Session operational" in seen


def processes_holding(secret: bytes, what: str) -> set[int]:
    """PIDs whose /proc/PID/`what` (cmdline, environ) contains `secret`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if secret in (entry / what).read_bytes():
                    found.add(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


@pytest.mark.lab
def test_capture_arrives_sha256_identical_and_the_password_stays_secret(
    lab: BmcLab, host: int, qemu_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture = (qemu_corpus / "oops_null_panic.log").read_bytes()
    secret = lab.password.encode()
    out = tmp_path / "out"
    out.mkdir()
    handler = logging.FileHandler(out / "connector.log")
    logging.getLogger("connectors").addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="connectors")

    async def scenario() -> bytes:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            await asyncio.to_thread(write_host, host, capture)
            await tap.wait(lambda: len(tap.data()) >= len(capture), 20)
            # While connected: argv everywhere is clean; only ipmitool's environment has it.
            child = conn.child_pid
            assert child is not None
            assert processes_holding(secret, "cmdline") == set()
            # ipmi_sim and socat inherited it from start_bmc.sh: the BMC knows its password.
            lab_pids = {lab.ipmi_sim_pid, lab.socat_pid}
            assert processes_holding(secret, "environ") - lab_pids == {child}
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            assert b"-E" in cmdline and b"-P" not in cmdline
            assert PASSWORD_ENV.encode() not in Path(f"/proc/{child}/environ").read_bytes()
            ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, check=True)
            assert secret not in ps.stdout and str(child).encode() in ps.stdout
            await conn.write(b"root\r")
            assert await asyncio.to_thread(read_host, host, 0.3, b"root\r") == b"root\r"
            return tap.data()
        finally:
            await conn.close()
            await tap.finish()

    received = run(scenario())
    logging.getLogger("connectors").removeHandler(handler)
    handler.close()
    (out / "console.bin").write_bytes(received)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(capture).hexdigest()
    assert b"SOL Session operational" not in received  # ipmitool's banner is not console data
    assert "SOL Session operational" in caplog.text  # ... it is logged instead
    written = [*out.iterdir(), *lab.run_dir.glob("*.log")]
    assert [p.name for p in written if secret in p.read_bytes()] == []
    assert lab.password not in caplog.text


@pytest.mark.lab
def test_typed_escapes_reach_the_server_verbatim(lab: BmcLab, host: int) -> None:
    typed = b"~.\r~B\r~?x~y\r~~\r~\x1a"  # quit, break, help, literal ~, suspend: all just text

    async def scenario() -> None:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            await conn.write(typed)
            assert await asyncio.to_thread(read_host, host, 0.5, typed) == typed
            assert conn.connected and conn.child_pid is not None
            os.kill(conn.child_pid, 0)  # still running: nothing ended or suspended it
            assert tap.data() == b""  # no "[terminated ipmitool]", no help text
        finally:
            await conn.close()
            await tap.finish()

    run(scenario())


@pytest.mark.lab
def test_break_reaches_the_simulator_serial_port(
    lab: BmcLab, host: int, tmp_path: Path, processes: Processes
) -> None:
    """ipmi_sim turns a SOL BREAK into tcsendbreak() on its serial device: strace shows it."""
    strace = require_commands("strace")["strace"]
    trace, log_file = tmp_path / "ioctl.trace", tmp_path / "strace.err"
    with log_file.open("wb") as err:
        tracer = processes.start(
            [strace, "-p", str(lab.ipmi_sim_pid), "-e", "trace=ioctl", "-o", str(trace)],
            stderr=err,
        )
    assert wait_for(lambda: b"attached" in log_file.read_bytes(), 10)

    def breaks() -> int:
        return trace.read_text().count("TCSBRK") if trace.exists() else 0

    async def scenario() -> None:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            await conn.send_break()  # at the start of the session: no CR needed
            assert await asyncio.to_thread(wait_for, lambda: breaks() == 1, 5)
            assert await asyncio.to_thread(read_host, host, 0.3) == b""  # nothing typed
            await conn.write(b"abc")
            await conn.send_break()  # mid-line: ipmitool needs a CR first, and it is sent
            assert await asyncio.to_thread(wait_for, lambda: breaks() == 2, 5)
            assert await asyncio.to_thread(read_host, host, 0.3) == b"abc\r"
            write_host(host, b"SysRq : HELP\r\n")
            await tap.wait(lambda: b"HELP\r\n" in tap.data(), 5)
            assert tap.data() == b"SysRq : HELP\r\n"  # ipmitool's "~B [send break]" left out
        finally:
            await conn.close()
            await tap.finish()

    run(scenario())
    processes.stop(tracer)


@pytest.mark.lab
def test_busy_console_is_taken_over_only_when_asked(
    lab: BmcLab, host: int, processes: Processes
) -> None:
    stale_session(lab, processes)

    async def scenario() -> None:
        conn = sol(lab)
        with pytest.raises(SolSessionBusy) as busy:
            await conn.open()
        assert "in use by another session" in str(busy.value) and "\n" not in str(busy.value)
        with pytest.raises(SolSessionBusy):  # nothing was taken silently: still busy
            await sol(lab).open()
        await conn.take_over()
        tap = Tap(conn)
        try:
            assert conn.connected and conn.took_over
            write_host(host, b"after take-over\r\n")
            await tap.wait(lambda: tap.data() == b"after take-over\r\n", 5)
        finally:
            await conn.close()
            await tap.finish()

    run(scenario())


@pytest.mark.lab
def test_takeover_option_deactivates_only_a_busy_console(
    lab: BmcLab, host: int, processes: Processes
) -> None:
    async def scenario() -> None:
        free = sol(lab, takeover=True)
        await free.open()
        assert not free.took_over  # nobody held it: nobody was kicked
        await free.close()
        stale_session(lab, processes)
        conn = sol(lab, takeover=True)
        await conn.open()
        tap = Tap(conn)
        try:
            assert conn.took_over
            write_host(host, b"ok\r\n")
            await tap.wait(lambda: tap.data() == b"ok\r\n", 5)
        finally:
            await conn.close()
            await tap.finish()

    run(scenario())


@pytest.mark.lab
def test_wrong_password_is_one_clear_line(lab: BmcLab) -> None:
    async def scenario() -> None:
        conn = open_connector(lab.url(), password="not-the-password")
        with pytest.raises(ConnectorError) as caught:
            await conn.open()
        message = str(caught.value)
        assert not isinstance(caught.value, SolSessionBusy)
        assert message == f"{lab.url()}: the BMC rejected the password for user 'admin'"
        assert not conn.connected

    run(scenario())


@pytest.mark.lab
def test_unreachable_bmc_is_one_clear_line(bmc_lab: BmcLab) -> None:
    nobody = f"ipmi://admin@127.0.0.1:{free_udp_port()}?timeout=1&retries=1"

    async def scenario() -> None:
        conn = open_connector(nobody, password="whatever")
        started = time.monotonic()
        with pytest.raises(ConnectorError) as caught:
            await conn.open()
        assert time.monotonic() - started < 10
        assert "no answer from the BMC" in str(caught.value)
        assert "\n" not in str(caught.value)

    run(scenario())


@pytest.mark.lab
def test_reconnects_after_the_session_is_deactivated_elsewhere(lab: BmcLab, host: int) -> None:
    async def scenario() -> None:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            first = conn.child_pid
            lab.deactivate_sol()  # another admin's `ipmitool sol deactivate`
            # A keystroke makes ipmitool notice within seconds (its SOL keep-alive alone takes
            # ~25 s: see the slow test below).
            await conn.write(b"\r")
            await tap.wait(lambda: tap.kinds()[-2:] == ["gap", "connected"], 20)
            assert tap.kinds() == ["connected", "disconnected", "gap", "connected"]
            lost = next(e for e in tap.events if getattr(e, "state", "") == "disconnected")
            assert "SOL session closed by BMC" in lost.detail
            assert conn.child_pid not in (None, first)
            write_host(host, b"back again\r\n")
            await tap.wait(lambda: tap.data().endswith(b"back again\r\n"), 5)
        finally:
            await conn.close()
            await tap.finish()

    run(scenario(), timeout=40)


@pytest.mark.lab
def test_close_frees_the_console_without_typing_anything(lab: BmcLab, host: int) -> None:
    async def scenario() -> None:
        conn = sol(lab)
        await conn.open()
        pid = conn.child_pid
        await conn.write(b"half-typed")  # no CR: `~.` could not end this session cleanly
        await conn.close()  # end of file on ipmitool's input instead
        assert conn.child_pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid or 0, 0)  # gone (and reaped)
        assert await asyncio.to_thread(read_host, host, 0.3) == b"half-typed"  # and no CR
        again = sol(lab)
        await again.open()  # not SolSessionBusy: ipmitool released its payload
        await again.close()

    run(scenario())


@pytest.mark.lab
@pytest.mark.slow
def test_keepalive_notices_a_lost_console_without_any_typing(lab: BmcLab, host: int) -> None:
    """usesolkeepalive: ipmitool's default keep-alive would never notice (measured > 60 s)."""

    async def scenario() -> None:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            lab.deactivate_sol()
            await tap.wait(lambda: tap.kinds()[-1:] == ["connected"] and len(tap.kinds()) > 1, 45)
            assert tap.kinds() == ["connected", "disconnected", "gap", "connected"]
            lost = next(e for e in tap.events if getattr(e, "state", "") == "disconnected")
            assert "SOL keep-alive" in lost.detail
            write_host(host, b"heard again\r\n")
            await tap.wait(lambda: tap.data().endswith(b"heard again\r\n"), 5)
        finally:
            await conn.close()
            await tap.finish()

    run(scenario(), timeout=60)


@pytest.mark.lab
def test_a_console_printing_line_by_line_at_115200_baud_is_not_left_behind(
    lab: BmcLab, host: int, qemu_corpus: Path
) -> None:
    """Each SOL packet is a small read; handed on one at a time (each followed by the
    connector's 30 ms batching pause) they capped a console near 1 KB/s."""
    lines = (qemu_corpus / "normal_boot_login.log").read_bytes().splitlines(keepends=True)
    text = b"".join(lines)[: 24 << 10]
    line_rate = 11520  # bytes/s at 115200 baud, 8N1

    async def scenario() -> float:
        conn = sol(lab)
        await conn.open()
        tap = Tap(conn)
        try:
            started = time.monotonic()
            for line in text.splitlines(keepends=True):
                await asyncio.to_thread(write_host, host, line)
                await asyncio.sleep(len(line) / line_rate)
            sent_in = time.monotonic() - started
            await tap.wait(lambda: len(tap.data()) >= len(text), 20)
            assert tap.data() == text
            return time.monotonic() - started - sent_in
        finally:
            await conn.close()
            await tap.finish()

    behind = run(scenario(), timeout=40)
    assert behind < 1.0, f"the last line arrived {behind:.1f} s after it was printed"
