"""Replay connector: real recordings from the QEMU corpus, and small timed ones made here."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from connectors import Chunk, ConnectorError, ConnectorEvent, StateChange, open_connector
from connectors.base import Unsupported
from connectors.replay import ReplayConnector


def run(coro: Awaitable[None]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, 20)

    asyncio.run(bounded())


def replay(path: Path, **options: object) -> ReplayConnector:
    conn = open_connector(str(path), **options)
    assert isinstance(conn, ReplayConnector)
    return conn


async def play(conn: ReplayConnector) -> tuple[list[ConnectorEvent], float]:
    """All events of a whole replay and how long it took from open()."""
    started = time.monotonic()
    await conn.open()
    events = [event async for event in conn]
    return events, time.monotonic() - started


def data_of(events: list[ConnectorEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Chunk))


def write_cast(path: Path, events: list[list[object]], version: int = 2) -> Path:
    header: dict[str, object] = {"version": version, "width": 80, "height": 25}
    if version == 3:
        header = {"version": 3, "term": {"cols": 80, "rows": 25}}
    lines = [json.dumps(header), *(json.dumps(e) for e in events)]
    path.write_text("\n".join(lines) + "\n")
    return path


def one_second_cast(path: Path) -> Path:
    """21 output events 0.05 s apart: one second of a console printing a line at a time."""
    return write_cast(path, [[i * 0.05, "o", f"line {i:02d}\r\n"] for i in range(21)])


EXPECTED_ONE_SECOND = b"".join(b"line %02d\r\n" % i for i in range(21))


@pytest.mark.parametrize("name", ["oops_null_panic", "ansi_shell_then_sysrq_crash"])
def test_cast_replays_byte_identical_to_its_log(qemu_corpus: Path, name: str) -> None:
    async def scenario() -> None:
        events, _ = await play(replay(qemu_corpus / f"{name}.cast", speed="inf"))
        assert data_of(events) == (qemu_corpus / f"{name}.log").read_bytes()
        assert isinstance(events[0], StateChange) and events[0].state == "connected"
        last = events[-1]
        assert isinstance(last, StateChange)
        assert (last.state, last.detail) == ("disconnected", "end of recording")

    run(scenario())


def test_speed_scales_recorded_time(tmp_path: Path) -> None:
    cast = one_second_cast(tmp_path / "one_second.cast")

    async def scenario() -> None:
        events, took = await play(replay(cast, speed=10))
        assert data_of(events) == EXPECTED_ONE_SECOND
        assert 0.08 <= took < 0.6, took  # 1 s of recording at speed 10: about 0.1 s
        chunks = [e for e in events if isinstance(e, Chunk)]
        assert len(chunks) > 5  # paced, not dumped at once
        _, fast = await play(replay(cast, speed=0))
        assert fast < 0.08

    run(scenario())


def test_real_recording_keeps_its_timing(qemu_corpus: Path) -> None:
    # oops_null_panic.cast lasts 7.46 s (the panic line arrives at 7.46 s).
    async def scenario() -> None:
        events, took = await play(replay(qemu_corpus / "oops_null_panic.cast", speed=40))
        assert 0.15 <= took < 1.0, took
        assert data_of(events) == (qemu_corpus / "oops_null_panic.log").read_bytes()

    run(scenario())


def test_pause_holds_output_until_resume(tmp_path: Path) -> None:
    cast = one_second_cast(tmp_path / "one_second.cast")

    async def scenario() -> None:
        conn = replay(cast, speed=2)  # 0.5 s of replay
        started = time.monotonic()
        await conn.open()
        received: list[Chunk] = []

        async def collect() -> None:
            async for event in conn:
                if isinstance(event, Chunk):
                    received.append(event)

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.1)
        conn.pause()
        assert conn.paused
        held_at = len(received)
        position = conn.position
        assert 0 < held_at < 21 and 0.1 <= position <= 0.4
        await asyncio.sleep(0.4)
        assert len(received) == held_at  # nothing while paused
        assert conn.position == position
        conn.resume()
        await task
        took = time.monotonic() - started
        assert b"".join(c.data for c in received) == EXPECTED_ONE_SECOND
        assert 0.85 <= took < 1.6, took  # 0.5 s of replay plus 0.4 s paused
        assert received[held_at].at - received[held_at - 1].at >= 0.35  # the pause is in the stream

    run(scenario())


def test_speed_can_change_mid_replay(tmp_path: Path) -> None:
    cast = one_second_cast(tmp_path / "one_second.cast")

    async def scenario() -> None:
        conn = replay(cast, speed=1)
        started = time.monotonic()
        await conn.open()
        task = asyncio.create_task(play_rest(conn))
        await asyncio.sleep(0.1)
        conn.set_speed(float("inf"))
        data = await task
        assert data == EXPECTED_ONE_SECOND
        assert time.monotonic() - started < 0.5

    async def play_rest(conn: ReplayConnector) -> bytes:
        return data_of([event async for event in conn])

    run(scenario())


def test_log_replays_at_serial_line_speed(qemu_corpus: Path, tmp_path: Path) -> None:
    log = qemu_corpus / "oops_null_panic.log"
    small = tmp_path / "console.log"
    small.write_bytes(log.read_bytes()[:2304])  # 0.2 s at 115200 baud 8N1 (11520 bytes/s)

    async def scenario() -> None:
        events, _ = await play(replay(log, speed="inf"))
        assert data_of(events) == log.read_bytes()
        events, took = await play(replay(small, speed=2))
        assert data_of(events) == small.read_bytes()
        assert 0.08 <= took < 0.6, took
        chunks = [e for e in events if isinstance(e, Chunk)]
        # Paced, not dumped at once (a loaded machine may merge chunks that fell due together).
        assert len(chunks) >= 2

    run(scenario())


def test_asciicast_v3_intervals_and_other_events(tmp_path: Path) -> None:
    cast = write_cast(
        tmp_path / "v3.cast",
        [[0.05, "o", "a"], [0.05, "i", "typed"], [0.05, "r", "100x30"], [0.05, "o", "b\u00e9"]],
        version=3,
    )
    cast.write_text(cast.read_text() + '# a comment\n[0.05, "m", "mark"]\n[0.0, "x", "0"]\n')

    async def scenario() -> None:
        events, took = await play(replay(cast, speed=1))
        assert data_of(events) == "abé".encode()
        assert took >= 0.18  # 4 intervals of 0.05 s before "bé"

    run(scenario())


def test_idle_time_limit_caps_silences(tmp_path: Path) -> None:
    cast = tmp_path / "idle.cast"
    header = {"version": 2, "width": 80, "height": 25, "idle_time_limit": 0.1}
    cast.write_text(f'{json.dumps(header)}\n[0.0, "o", "a"]\n[30.0, "o", "b"]\n')

    async def scenario() -> None:
        events, took = await play(replay(cast, speed=1))
        assert data_of(events) == b"ab" and took < 0.5

    run(scenario())


def test_replay_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cast"
    bad.write_text("this is not json\n")

    async def scenario() -> None:
        with pytest.raises(ConnectorError, match="no such file"):
            await replay(tmp_path / "missing.cast").open()
        with pytest.raises(ConnectorError, match="not an asciicast recording"):
            await replay(bad).open()
        conn = replay(one_second_cast(tmp_path / "ok.cast"), speed=0)
        await conn.open()
        with pytest.raises(Unsupported):
            await conn.write(b"x")
        with pytest.raises(Unsupported):
            await conn.send_break()
        await conn.close()

    run(scenario())
    with pytest.raises(ConnectorError, match="speed"):
        replay(bad, speed=-1)
    with pytest.raises(ConnectorError, match="speed"):
        replay(bad, speed="fast")
