"""Fault tests for ipmi:// SOL (issue 6): things going wrong under a live console.

A real ipmitool against a real BMC (OpenIPMI's ipmi_sim, tests/ipmilab.py), recorded through
crashcart's own recording path (`Session`). What the server prints is written to the lab's host
pty (its ttyS0). Each test checks what an operator relies on after a fault:

* nothing printed while crashcart was connected is lost: the bytes before the outage are a
  prefix of what the server wrote, the bytes after it a suffix, and the `.log` is exactly what
  the connector delivered, with the `.cast` and events.jsonl marking the gap where it was;
* crashcart says plainly what happened (a signal, a busy console, a silent BMC) and why it is
  not connected yet, once per reason rather than once per attempt;
* the password shows up nowhere, even when ipmitool itself prints it.

Tests that damage the BMC (a stale payload, a restart, a stolen console) get a lab of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from ipmilab import (
    BmcLab,
    Tap,
    bmc_lab,
    run,
    running_bmc,
    start_ipmi_sim,
    stop_ipmi_sim,
    write_host,
)
from labtools import free_udp_port

from connectors import ConnectorError, open_connector
from connectors.base import Backoff, Connector, Fatal, StateChange
from connectors.ipmi import IpmiSolConnector, _with_queued, redact, session_lost_reason
from crashcart.recording import decode_cast
from crashcart.session import ConsoleOutput, ConsoleState, Session, SessionEvent

__all__ = ["bmc_lab"]  # the fixture, imported for pytest

# ipmitool gives up on a silent BMC after ~2 s instead of ~20 s; reconnect attempts every second
# at most, so each scenario takes seconds, not minutes.
QUERY = "timeout=1&retries=1"
FAST = Backoff(first=0.2, ceiling=1.0)


# -- pure logic ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (-9, "ipmitool was killed by signal 9 (SIGKILL)"),
        (-15, "ipmitool was killed by signal 15 (SIGTERM)"),
        (-11, "ipmitool was killed by signal 11 (SIGSEGV)"),
        (-200, "ipmitool was killed by signal 200"),  # no name: the number still says it
    ],
)
def test_a_killed_ipmitool_is_named_by_its_signal(status: int, reason: str) -> None:
    # What ipmitool wrote while the session started is no reason for it ending.
    said_earlier = ["Info: SOL payload already active on another session"]
    assert session_lost_reason(said_earlier, status) == reason
    assert session_lost_reason([], status) == reason


def test_an_ordinary_exit_keeps_its_wording() -> None:
    assert session_lost_reason([], 1) == "ipmitool exited (status 1)"
    assert session_lost_reason(["SOL session closed by BMC"], 0) == "SOL session closed by BMC"


def test_redact_blots_out_every_occurrence_of_the_password() -> None:
    assert redact("Error: hunter2 refused (hunter2)", "hunter2") == "Error: *** refused (***)"
    assert redact("nothing to hide", "hunter2") == "nothing to hide"


def test_output_already_queued_is_handed_on_as_one_chunk() -> None:
    """ipmitool writes each SOL packet as it comes; handing them on one by one, each followed by
    the connector's 30 ms coalescing pause, fell seconds behind a console printing lines."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for piece in (b"b", b"c", b"", b"never"):
        queue.put_nowait(piece)
    assert _with_queued(queue, b"a") == (b"abc", True)  # the end is noticed, not lost
    assert _with_queued(queue, b"x") == (b"xnever", False)
    assert _with_queued(queue, b"") == (b"", True)


class Flaky(Connector):
    """A real Connector whose connection attempts fail as a test scripts them.

    `outcomes` is consumed one per `_connect`: an exception to raise, or None to connect. Bytes
    put on `lines` are read; b"" drops the line (the far side closed).
    """

    coalesce_seconds = 0.0

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        super().__init__("flaky://console", "flaky", Backoff(first=0.001, ceiling=0.001))
        self.outcomes = deque(outcomes)
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()
        self.attempts = 0

    async def _connect(self) -> None:
        self.attempts += 1
        outcome = self.outcomes.popleft() if self.outcomes else None
        if outcome is not None:
            raise outcome

    async def _read(self) -> bytes:
        return await self.lines.get()

    async def _write(self, data: bytes) -> None:
        pass

    async def _disconnect(self) -> None:
        pass


def test_a_failed_reconnect_says_why_once_per_distinct_reason() -> None:
    busy = ConnectorError("flaky://console: in use by another session")
    silent = ConnectorError("flaky://console: no answer")
    gone = FileNotFoundError(2, "No such file or directory")

    async def scenario() -> tuple[Flaky, list[tuple[str, str]]]:
        conn = Flaky(
            [
                *(None, busy, busy, busy, gone, gone, busy, None),  # open, the first outage
                *(busy, busy, None),  # the second outage: told afresh
                *(silent, Fatal("flaky://console: the BMC rejected the password")),
            ]
        )
        await conn.open()
        tap = Tap(conn)
        for connected in (2, 3):
            await conn.lines.put(b"")  # the line drops; attempts fail, then one succeeds
            await tap.wait(lambda n=connected: tap.kinds().count("connected") == n, 5)
        await conn.lines.put(b"")  # and again, until a Fatal error ends the retrying
        await tap.wait(lambda: tap.kinds().count("disconnected") == 4, 5)
        await tap.finish()
        states = [(e.state, e.detail) for e in tap.events if isinstance(e, StateChange)]
        return conn, states

    conn, states = run(scenario(), timeout=10)
    assert conn.attempts == 13  # every attempt was made; fewer were reported
    assert states == [
        ("connected", "flaky://console"),
        ("disconnected", "end of stream"),
        ("reconnecting", "flaky://console: in use by another session"),
        ("reconnecting", "flaky://console: No such file or directory"),  # an OSError: URL added
        ("reconnecting", "flaky://console: in use by another session"),  # changed back: told
        ("connected", "flaky://console"),
        ("disconnected", "end of stream"),
        ("reconnecting", "flaky://console: in use by another session"),
        ("connected", "flaky://console"),
        ("disconnected", "end of stream"),
        ("reconnecting", "flaky://console: no answer"),
        ("disconnected", "flaky://console: the BMC rejected the password"),  # Fatal: gives up
    ]


# -- helpers for the lab tests -------------------------------------------------------------------
@pytest.fixture
def fresh_lab(shared_dir: Path, tmp_path: Path) -> Iterator[BmcLab]:
    """A BMC of this test's own, for a test that leaves it damaged."""
    with running_bmc(shared_dir, tmp_path / "bmc") as lab:
        yield lab


def sol(lab: BmcLab, **options: Any) -> IpmiSolConnector:
    conn = open_connector(lab.url(QUERY), password=lab.password, backoff=FAST, **options)
    assert isinstance(conn, IpmiSolConnector)
    return conn


def numbered(label: str, count: int) -> bytes:
    return b"".join(b"%s %04d\r\n" % (label.encode(), n) for n in range(count))


class Recorded:
    """crashcart's recording path on a connector: a real Session, streaming what it records.

    `events` holds the console output and the states in the order the Session handled them, so
    a test can tell which bytes came before the outage and which after.
    """

    def __init__(self, conn: Connector, record_dir: Path) -> None:
        self.conn = conn
        self.record_dir = record_dir
        self.events: list[ConsoleOutput | ConsoleState] = []
        self._changed = asyncio.Event()
        session = Session(conn, record_dir, on_event=self._on_event, stream=True)
        self._task = asyncio.create_task(session.run())

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConsoleOutput | ConsoleState):
            self.events.append(event)
            self._changed.set()

    def data(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, ConsoleOutput))

    def states(self) -> list[str]:
        return [e.state for e in self.events if isinstance(e, ConsoleState)]

    def details(self, state: str) -> list[str]:
        return [e.detail for e in self.events if isinstance(e, ConsoleState) and e.state == state]

    def split(self) -> tuple[bytes, bytes]:
        """The bytes delivered before the (first) disconnect, and those after the gap."""
        marks = [(i, e.state) for i, e in enumerate(self.events) if isinstance(e, ConsoleState)]
        lost = next(i for i, state in marks if state == "disconnected")
        gap = next(i for i, state in marks if state == "gap")

        def joined(events: list[ConsoleOutput | ConsoleState]) -> bytes:
            return b"".join(e.data for e in events if isinstance(e, ConsoleOutput))

        return joined(self.events[:lost]), joined(self.events[gap:])

    def reconnected_at(self) -> float:
        """When the console was heard again (time.time()): the `connected` after the gap."""
        gap = self.states().index("gap")
        return [e.at for e in self.events if isinstance(e, ConsoleState)][gap + 1]

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}: states {self.states()}, "
                f"{len(self.data())} bytes"
            ) from None

    async def finish(self) -> None:
        await self.conn.close()
        await asyncio.wait_for(self._task, 15)


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition no event announces (log records, say)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def check_recording(rec: Recorded) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """The recording is valid: the .log is exactly the delivered bytes, every .cast line is JSON
    and the cast decodes to the same bytes, events.jsonl lists the states the operator saw.
    Returns the cast's events and events.jsonl's records."""
    name = rec.conn.name
    folder = rec.record_dir / name
    logs, casts = sorted(folder.glob(f"{name}-*.log")), sorted(folder.glob(f"{name}-*.cast"))
    assert len(logs) == len(casts) == 1, sorted(folder.iterdir())
    raw = logs[0].read_bytes()
    assert raw == rec.data(), "the .log is not exactly what the connector delivered"
    lines = casts[0].read_text(encoding="utf-8").splitlines()
    cast = [json.loads(line) for line in lines]
    assert cast[0]["version"] == 2
    assert all(isinstance(e, list) and len(e) == 3 and e[1] in ("o", "m") for e in cast[1:])
    assert decode_cast(casts[0].read_bytes()) == raw
    events = [
        json.loads(line) for line in (folder / f"{name}.events.jsonl").read_text().splitlines()
    ]
    told = [e["event"].split(":", 1)[0] for e in events if "state" in e or "reason" in e]
    assert told == [*rec.states(), "closed"]  # and the recording's own end
    return cast[1:], events


def output_before_marker(cast: list[list[Any]], marker: str) -> bytes:
    """The console bytes the .cast holds before its first marker starting with `marker`."""
    out = b""
    for _, code, text in cast:
        if code == "m" and text.startswith(marker):
            return out
        if code == "o":
            out += text.encode("utf-8")
    raise AssertionError(f"no {marker!r} marker in the .cast")


def check_gap_marked(rec: Recorded, before: bytes, lost_reason: str) -> list[dict[str, Any]]:
    """A valid recording with one gap, marked where the bytes stopped; its events.jsonl."""
    cast, events = check_recording(rec)
    assert output_before_marker(cast, "gap: ") == before  # marked where the bytes stopped
    gaps = [e for e in events if e["event"].startswith("gap: ")]
    assert len(gaps) == 1 and gaps[0]["reason"] == lost_reason
    assert gaps[0]["started"] < gaps[0]["ended"]
    return events


class LineWriter:
    """The server printing numbered lines on its serial port, non-stop, from a thread.

    Only what the pty accepted counts as written, with when it was, so a test can say which
    bytes were written while crashcart was connected.
    """

    def __init__(self, fd: int, period: float = 0.005) -> None:
        self.fd = fd
        self.period = period
        self.written = bytearray()
        self.marks: list[tuple[float, int]] = []  # (time.time(), bytes written by then)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            view = memoryview(b"%06d the server keeps printing\r\n" % n)
            while view and not self._stop.is_set():
                try:
                    count = os.write(self.fd, view)
                except BlockingIOError:  # nobody reads the line now: wait, as a UART would
                    select.select([], [self.fd], [], 0.1)
                    continue
                self.written += view[:count]
                view = view[count:]
            self.marks.append((time.time(), len(self.written)))
            n += 1
            time.sleep(self.period)

    def stop(self) -> bytes:
        self._stop.set()
        self._thread.join(5)
        return bytes(self.written)

    def written_by(self, when: float) -> int:
        """How many bytes had been written at `when` (time.time())."""
        return max((n for at, n in self.marks if at <= when), default=0)


class Colleague:
    """Another admin's `ipmitool sol activate`, holding the console until it is told to quit."""

    def __init__(self, lab: BmcLab) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # the server's bytes as sent, no "\n" -> "\r\n"
        argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(lab.port)]
        self.proc = subprocess.Popen(
            [*argv, "-U", lab.user, "-E", "sol", "activate"],
            stdin=subprocess.PIPE,
            stdout=slave,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "IPMI_PASSWORD": lab.password},
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # EIO: it exited
                    break
        return marker in self.seen

    def quit(self) -> int:
        """End of file on its input: ipmitool releases the payload and exits, as after `~.`."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # by PID: our own child
            self.proc.wait(5)
        os.close(self.master)


# -- 1. ipmitool killed mid-session --------------------------------------------------------------
@pytest.mark.lab
def test_a_killed_ipmitool_is_reported_and_its_stale_session_reclaimed(
    fresh_lab: BmcLab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGKILL (the OOM killer, a stray kill -9) leaves our SOL payload active on the BMC; the
    reconnect frees that payload once instead of waiting a minute for the BMC to drop it."""
    lab = fresh_lab
    caplog.set_level(logging.INFO, logger="connectors")
    host = lab.open_host()
    writer = LineWriter(host)

    async def scenario() -> tuple[Recorded, IpmiSolConnector, float]:
        conn = sol(lab)
        await conn.open()
        rec = Recorded(conn, tmp_path / "rec")
        try:
            writer.start()
            # Long enough that "written over half a second before the kill" means something.
            await rec.wait(lambda: rec.data().count(b"\n") >= 300, 10, "streaming")
            assert conn.child_pid is not None
            killed_at = time.time()
            os.kill(conn.child_pid, signal.SIGKILL)
            await rec.wait(lambda: rec.states()[-2:] == ["gap", "connected"], 15, "reconnect")
            await asyncio.sleep(1.0)  # the server goes on printing to the new session
            tail = writer.stop()[-64:]
            await rec.wait(lambda: rec.data().endswith(tail), 10, "the last line")
        finally:
            writer.stop()
            await rec.finish()
        return rec, conn, killed_at

    try:
        rec, conn, killed_at = run(scenario(), timeout=40)
    finally:
        os.close(host)
    url = lab.url()  # as shown: options are not part of it
    # The operator is told what happened, and nothing else: one loss, one reconnect.
    assert rec.states() == ["connected", "disconnected", "gap", "connected", "closed"]
    assert rec.details("disconnected") == [f"{url}: ipmitool was killed by signal 9 (SIGKILL)"]
    assert conn.reclaimed_own_session and not conn.took_over
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "our own ipmitool was killed" in warnings[0]
    # Nothing the server printed while crashcart was connected is lost, nothing is doubled.
    written = bytes(writer.written)
    before, after = rec.split()
    assert rec.data() == before + after
    assert written.startswith(before) and written.endswith(after)
    assert len(before) + len(after) <= len(written)
    assert writer.written_by(killed_at - 0.5) > 0
    assert len(before) >= writer.written_by(killed_at - 0.5)  # all but what was in flight
    assert len(after) >= len(written) - writer.written_by(rec.reconnected_at())
    check_gap_marked(rec, before, rec.details("disconnected")[0])


# -- 2. the BMC restarts -------------------------------------------------------------------------
@pytest.mark.lab
def test_a_bmc_restart_is_waited_out_and_said_so(fresh_lab: BmcLab, tmp_path: Path) -> None:
    """The BMC reboots under a live session: crashcart says it is not answering while it is
    down, and is back by itself (with the gap marked) once the BMC is."""
    lab = fresh_lab
    host = lab.open_host()
    before, outage, after = (numbered(w, 20) for w in ("before", "during", "after"))

    async def scenario() -> tuple[Recorded, BmcLab]:
        conn = sol(lab)
        await conn.open()
        rec = Recorded(conn, tmp_path / "rec")
        try:
            write_host(host, before)
            await rec.wait(lambda: rec.data() == before, 10, "the first lines")
            command = await asyncio.to_thread(stop_ipmi_sim, lab)
            # A keystroke: ipmitool notices a dead BMC at its next packet (its SOL keep-alive
            # alone would take ~25 s).
            await conn.write(b"\r")
            await rec.wait(lambda: "reconnecting" in rec.states(), 15, "a failed reconnect")
            write_host(host, outage)  # the server does not know its BMC is rebooting
            await asyncio.sleep(1.0)  # more attempts fail meanwhile
            assert not conn.connected and rec.states()[-1] == "reconnecting"
            restarted = await asyncio.to_thread(start_ipmi_sim, lab, command)
            await rec.wait(lambda: rec.states()[-2:] == ["gap", "connected"], 15, "reconnect")
            write_host(host, after)
            await rec.wait(lambda: rec.data().endswith(after), 10, "the last lines")
        finally:
            await rec.finish()
        return rec, restarted

    try:
        rec, restarted = run(scenario(), timeout=50)
    finally:
        os.close(host)
    # The restarted simulator is the one stop_lab will stop.
    assert restarted.ipmi_sim_pid != lab.ipmi_sim_pid
    assert (lab.run_dir / "ipmi_sim.pid").read_text().strip() == str(restarted.ipmi_sim_pid)
    states = rec.states()
    assert states[:2] == ["connected", "disconnected"]
    assert states[-3:] == ["gap", "connected", "closed"]
    assert set(states[2:-3]) == {"reconnecting"}
    waiting = rec.details("reconnecting")
    assert "no answer from the BMC" in waiting[0]
    assert all(a != b for a, b in pairwise(waiting))  # one event per reason, not per attempt
    assert all("\n" not in d and d.startswith(lab.url() + ": ") for d in waiting)
    # What was printed while connected is all there; of what the BMC missed, nothing else.
    data = rec.data()
    assert data.startswith(before) and data.endswith(after)
    assert data[len(before) : len(data) - len(after)] in outage
    check_gap_marked(rec, before, rec.details("disconnected")[0])


# -- 3. someone else takes the console -----------------------------------------------------------
@pytest.mark.lab
def test_a_console_taken_by_someone_else_is_not_taken_back(
    fresh_lab: BmcLab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A colleague runs `sol deactivate` and `sol activate`: crashcart says the console is in use
    and why it is waiting, never kicks them, and is back by itself once they quit."""
    lab = fresh_lab
    caplog.set_level(logging.DEBUG, logger="connectors")
    host = lab.open_host()
    before, theirs, after = numbered("ours", 10), b"for the colleague\r\n", numbered("back", 10)

    def refusals() -> int:  # failed reconnect attempts: ipmitool's answer from the BMC, logged
        return sum("already active on another session" in r.getMessage() for r in caplog.records)

    async def scenario(colleague_holder: list[Colleague]) -> tuple[Recorded, IpmiSolConnector]:
        conn = sol(lab)
        await conn.open()
        rec = Recorded(conn, tmp_path / "rec")
        try:
            write_host(host, before)
            await rec.wait(lambda: rec.data() == before, 10, "the first lines")
            await asyncio.to_thread(lab.deactivate_sol)
            colleague = Colleague(lab)
            colleague_holder.append(colleague)
            assert await asyncio.to_thread(colleague.read_until, b"SOL Session operational", 10)
            await conn.write(b"\r")  # our ipmitool notices at its next packet
            await rec.wait(lambda: "reconnecting" in rec.states(), 15, "a failed reconnect")
            await eventually(lambda: refusals() >= 4, 10, "more reconnect attempts")
            # Still the colleague's: the server's output goes to them, not to crashcart.
            write_host(host, theirs)
            assert await asyncio.to_thread(colleague.read_until, theirs, 5)
            assert colleague.proc.poll() is None and not conn.connected
            assert await asyncio.to_thread(colleague.quit) == 0
            await rec.wait(lambda: rec.states()[-2:] == ["gap", "connected"], 15, "reconnect")
            write_host(host, after)
            await rec.wait(lambda: rec.data().endswith(after), 10, "the last lines")
        finally:
            await rec.finish()
        return rec, conn

    colleagues: list[Colleague] = []
    try:
        rec, conn = run(scenario(colleagues), timeout=50)
    finally:
        for colleague in colleagues:
            colleague.close()
        os.close(host)
    url = lab.url()  # as shown: options are not part of it
    # One reason, said once, for all those attempts.
    assert rec.states() == [
        "connected",
        "disconnected",
        "reconnecting",
        "gap",
        "connected",
        "closed",
    ]
    assert rec.details("disconnected") == [f"{url}: SOL session closed by BMC"]
    (waiting,) = rec.details("reconnecting")
    assert waiting.startswith(url) and "in use by another session" in waiting
    assert refusals() >= 4  # the BMC said "busy" every time; crashcart said so once
    # Nobody was kicked: no take-over, no reclaim, no `sol deactivate` of ours.
    assert not conn.took_over and not conn.reclaimed_own_session
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert rec.data() == before + after  # the colleague's line was theirs, ours all arrived
    events = check_gap_marked(rec, before, rec.details("disconnected")[0])
    told = [e for e in events if e.get("state") == "reconnecting"]
    assert [e["event"] for e in told] == [f"reconnecting: {waiting}"]


# -- 4. secrets in ipmitool's own output ---------------------------------------------------------
@pytest.mark.lab
def test_a_wrong_password_shows_up_nowhere(
    bmc_lab: BmcLab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped password (it may be the real one for another BMC) is not echoed anywhere."""
    lab = bmc_lab
    wrong = "cc" + secrets.token_hex(7)  # distinctive: found nowhere by chance
    record = tmp_path / "rec"
    watch = subprocess.run(
        [sys.executable, "-m", "crashcart", "watch", lab.url(QUERY), "--record", str(record)],
        env={**os.environ, "CRASHCART_IPMI_PASSWORD": wrong},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert watch.returncode == 2, watch.stderr
    assert "rejected the password for user 'admin'" in watch.stderr
    caplog.set_level(logging.DEBUG, logger="connectors")

    async def scenario() -> ConnectorError:
        conn = open_connector(lab.url(QUERY), password=wrong, backoff=FAST)
        with pytest.raises(Fatal) as caught:
            await conn.open()
        return caught.value

    error = run(scenario())
    assert str(error) == f"{lab.url()}: the BMC rejected the password for user 'admin'"
    assert any("RAKP 2 HMAC is invalid" in r.getMessage() for r in caplog.records)  # logged
    said = [watch.stdout, watch.stderr, str(error), repr(error), caplog.text]
    said += [r.getMessage() for r in caplog.records]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for secret in (wrong, lab.password):
        assert not [text for text in said if secret in text]
        assert [p.name for p in files if secret.encode() in p.read_bytes()] == []


@pytest.mark.lab
def test_a_password_ipmitool_prints_is_blotted_out_of_messages_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: a stand-in ipmitool (the real one cannot be made to) prints the
    password on stderr and on stdout before failing; errors and logs show `***` instead."""
    secret = "cc" + secrets.token_hex(7)
    stand_in = tmp_path / "ipmitool"
    stand_in.write_text(
        "#!/bin/sh\n"
        'echo "Info: stand-in ipmitool, logging in with $IPMI_PASSWORD"\n'
        'echo "Error: the BMC refused $IPMI_PASSWORD" >&2\n'
        "exit 1\n"
    )
    stand_in.chmod(0o755)
    shown = subprocess.run(
        [str(stand_in)], env={"IPMI_PASSWORD": secret}, capture_output=True, text=True
    )
    assert secret in shown.stdout and secret in shown.stderr  # it does print the password
    caplog.set_level(logging.DEBUG, logger="connectors")
    url = f"ipmi://admin@127.0.0.1:{free_udp_port()}"

    async def scenario() -> list[ConnectorError]:
        errors = []
        conn = open_connector(f"{url}?{QUERY}", password=secret, ipmitool=str(stand_in))
        for attempt in (conn.open, conn.take_over):  # `sol activate`, then `sol deactivate`
            with pytest.raises(ConnectorError) as caught:
                await attempt()
            errors.append(caught.value)
        return errors

    errors = run(scenario())
    assert [str(e) for e in errors] == [f"{url}: the BMC refused ***"] * 2
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.endswith("ipmitool, logging in with ***") for m in messages)  # its stdout
    assert any(m.endswith("Error: the BMC refused ***") for m in messages)  # its stderr
    assert not [m for m in [*messages, caplog.text, *map(repr, errors)] if secret in m]


@pytest.mark.lab
def test_console_bytes_after_the_banner_are_never_altered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The recording is lossless by contract: a server that prints the same string as the
    password gets it recorded as printed; only ipmitool's own words are blotted out."""
    secret = "cc" + secrets.token_hex(7)
    stand_in = tmp_path / "ipmitool"
    stand_in.write_text(
        "#!/bin/sh\n"
        "printf 'Info: connecting with %s\\n' \"$IPMI_PASSWORD\"\n"
        "printf '[SOL Session operational.  Use ~? for help]\\n'\n"
        "printf 'the server prints %s\\r\\n' \"$IPMI_PASSWORD\"\n"  # may share a read with banner
        "sleep 0.2\n"
        "printf 'and again %s\\r\\n' \"$IPMI_PASSWORD\"\n"  # after a pause: a read of its own
        "exec cat >/dev/null\n"  # until end of file on its input, as ipmitool does
    )
    stand_in.chmod(0o755)
    caplog.set_level(logging.INFO, logger="connectors")
    url = f"ipmi://admin@127.0.0.1:{free_udp_port()}"

    async def scenario() -> bytes:
        conn = open_connector(url, password=secret, ipmitool=str(stand_in))
        await conn.open()
        tap = Tap(conn)
        try:
            await tap.wait(lambda: tap.data().count(b"\r\n") == 2, 5)
        finally:
            await conn.close()
            await tap.finish()
        return tap.data()

    printed = secret.encode()
    assert run(scenario()) == b"the server prints %s\r\nand again %s\r\n" % (printed, printed)
    assert any(r.getMessage().endswith("connecting with ***") for r in caplog.records)
    assert secret not in caplog.text
