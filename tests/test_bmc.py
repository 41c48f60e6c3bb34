"""The BMC side (connectors.bmc): SEL decoding from raw records, then a real BMC (ipmi_sim).

Events are put into the simulator's SEL the way hardware does it: a sensor changes state (the
emulator console's `sensor_set_bit`) and the BMC logs the event; they are read back over RMCP+
by python-ipmi and decoded by our tables.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from ipmilab import BmcLab, bmc_lab
from pyipmi.sel import SelEntry

from connectors.bmc import (
    Bmc,
    BmcError,
    NotConfirmed,
    SelEvent,
    SensorInfo,
    decode_sel_record,
    discrete_status,
    sensor_type_name,
    threshold_status,
    unit_name,
)

__all__ = ["bmc_lab"]  # the fixture, imported for pytest

NOW = 1_790_000_000  # an epoch timestamp (2026)


def record(
    sensor_type: int,
    event_type: int,
    data1: int,
    data2: int = 0xFF,
    data3: int = 0xFF,
    *,
    number: int = 7,
    deassert: bool = False,
    timestamp: int = NOW,
    record_id: int = 0x0102,
    record_type: int = 0x02,
) -> bytes:
    """A 16-byte system event record as a BMC stores it (IPMI v2.0 table 32-1)."""
    return bytes(
        [
            record_id & 0xFF,
            record_id >> 8,
            record_type,
            *timestamp.to_bytes(4, "little"),
            0x20,  # generator: the BMC itself
            0x00,
            0x04,  # event message format revision
            sensor_type,
            number,
            (0x80 if deassert else 0) | event_type,
            data1,
            data2,
            data3,
        ]
    )


# -- decoding ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sensor_type", "data1", "text", "severity"),
    [
        (0x20, 0x01, "OS run-time critical stop (panic)", "critical"),
        (0x20, 0x00, "OS critical stop during OS load / initialization", "critical"),
        (0x0C, 0x00, "Correctable ECC / other correctable memory error", "warning"),
        (0x0C, 0x01, "Uncorrectable ECC / other uncorrectable memory error", "critical"),
        (0x0C, 0x21, "Uncorrectable ECC / other uncorrectable memory error, DIMM 3", "critical"),
        (0x07, 0x00, "IERR (internal processor error)", "critical"),
        (0x07, 0x01, "Thermal trip", "critical"),
        (0x07, 0x0B, "Machine check exception (uncorrectable)", "critical"),
        (0x07, 0x0C, "Correctable machine check error", "warning"),
        (0x08, 0x01, "Power supply failure detected", "critical"),
        (0x08, 0x03, "Power supply input lost (AC/DC)", "critical"),
        (0x08, 0x02, "Power supply predictive failure", "warning"),
        (0x09, 0x04, "AC lost / power input lost", "critical"),
        (0x09, 0x06, "Power unit failure detected", "critical"),
        (0x23, 0x01, "Watchdog hard reset", "critical"),
        (0x23, 0x08, "Watchdog timer interrupt", "warning"),
        (0x13, 0x09, "Fatal NMI", "critical"),
        (0x10, 0x04, "SEL full", "warning"),
        (0x1D, 0x07, "System restart", "info"),
    ],
)
def test_sensor_specific_events(sensor_type: int, data1: int, text: str, severity: str) -> None:
    event = decode_sel_record(record(sensor_type, 0x6F, data1, data3=3))
    assert (event.description, event.severity, event.asserted) == (text, severity, True)
    assert event.offset == data1 & 0x0F
    assert event.sensor_type_name == sensor_type_name(sensor_type)


def test_threshold_event_shows_reading_and_threshold() -> None:
    # data1: bits 7:6 = 01 (byte 2 is the reading), 5:4 = 01 (byte 3 the threshold), offset 9
    raw = record(0x01, 0x01, 0x59, 93, 90, number=1)
    event = decode_sel_record(raw)
    assert event.description == "Upper Critical going high (reading 93, threshold 90)"
    assert event.severity == "critical"
    named = decode_sel_record(raw, {1: SensorInfo("CPU Temp", "degrees C", lambda r: r / 2)})
    assert named.sensor_name == "CPU Temp"
    assert named.description == (
        "Upper Critical going high (reading 46.5 degrees C, threshold 45 degrees C)"
    )
    unc = decode_sel_record(record(0x01, 0x01, 0x07))  # no reading bytes: just the crossing
    assert (unc.description, unc.severity) == ("Upper Non-critical going high", "warning")


def test_deassertion_is_information() -> None:
    event = decode_sel_record(record(0x0C, 0x6F, 0x01, deassert=True))
    assert not event.asserted and event.severity == "info"
    assert str(event).endswith("(deasserted) [info]")


def test_timestamps_before_the_clock_was_set_and_unknown() -> None:
    assert decode_sel_record(record(0x20, 0x6F, 1)).epoch == NOW
    assert decode_sel_record(record(0x20, 0x6F, 1)).when == time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime(NOW)
    )
    early = decode_sel_record(record(0x20, 0x6F, 1, timestamp=100))
    assert (early.epoch, early.when) == (None, "BMC start +100s")
    unknown = decode_sel_record(record(0x20, 0x6F, 1, timestamp=0xFFFFFFFF))
    assert (unknown.epoch, unknown.when) == (None, "time unknown")


def test_generic_oem_and_unknown_records() -> None:
    severity = decode_sel_record(record(0x02, 0x07, 0x02))
    assert severity.description == "Transition to Critical from less severe"
    assert severity.severity == "critical"
    redundancy = decode_sel_record(record(0x08, 0x0B, 0x01))
    assert (redundancy.description, redundancy.severity) == ("Redundancy Lost", "critical")
    oem_sensor = decode_sel_record(record(0xC5, 0x6F, 0x02))
    assert oem_sensor.description == "OEM sensor type 0xc5 state 2"
    oem = decode_sel_record(record(0x00, 0x00, 0x00, record_type=0xC1))
    assert oem.description.startswith("OEM record type 0xc1: 20 00 04")
    assert oem.epoch == NOW
    untimed = decode_sel_record(record(0x00, 0x00, 0x00, record_type=0xE0))
    assert untimed.when == "time unknown"
    with pytest.raises(ValueError, match="16 bytes"):
        decode_sel_record(b"\x01" * 15)


def test_record_layout_agrees_with_python_ipmi() -> None:
    raw = record(0x0C, 0x6F, 0x21, 0x00, 0x05, number=9, deassert=True, record_id=0x1234)
    theirs = SelEntry(raw)
    ours = decode_sel_record(raw)
    assert (ours.record_id, ours.timestamp, ours.generator_id) == (
        theirs.record_id,
        theirs.timestamp,
        theirs.generator_id,
    )
    assert (ours.sensor_type, ours.sensor_number, ours.event_type) == (
        theirs.sensor_type,
        theirs.sensor_number,
        theirs.event_type,
    )
    assert list(ours.data) == list(theirs.event_data)
    assert ours.asserted == (theirs.event_direction == 0)


def test_sensor_status_helpers() -> None:
    assert threshold_status(0) == "ok"
    assert threshold_status(0b001000) == "non-critical"  # above upper non-critical
    assert threshold_status(0b011000) == "critical"
    assert threshold_status(0b111000) == "non-recoverable"
    assert threshold_status(None) == "no reading"
    assert discrete_status(0x0C, 0x6F, 0b11) == (
        "Correctable ECC / other correctable memory error, "
        "Uncorrectable ECC / other uncorrectable memory error"
    )
    assert discrete_status(0x20, 0x6F, 0) == "ok"
    assert discrete_status(0x0C, 0x08, 0b10) == "Device Inserted / Present"
    assert discrete_status(0x0C, 0x6F, 1 << 14) == "state 14"
    assert (unit_name(1), unit_name(18), unit_name(0, True), unit_name(200)) == (
        "degrees C",
        "RPM",
        "%",
        "unit 200",
    )


def test_power_actions_need_confirmation_before_any_packet() -> None:
    bmc = Bmc("192.0.2.1", "admin", "never-sent")  # TEST-NET-1: nothing would answer
    for action in (bmc.power_cycle, bmc.power_off, bmc.power_on, bmc.power_reset):
        with pytest.raises(NotConfirmed, match="needs confirm=True"):
            action()
    assert "never-sent" not in repr(bmc)


def test_from_url_takes_the_console_url() -> None:
    bmc = Bmc.from_url("ipmi://ops@10.1.2.3:6230?cipher=17", "pw")
    assert (bmc.user, bmc.host, bmc.port, bmc.cipher) == ("ops", "10.1.2.3", 6230, 17)
    with pytest.raises(BmcError, match="not an ipmi://user@bmc URL"):
        Bmc.from_url("telnet://10.1.2.3:23", "pw")


# -- against the real BMC ------------------------------------------------------------------------
@pytest.fixture
def bmc(bmc_lab: BmcLab) -> Iterator[Bmc]:
    conn = Bmc("127.0.0.1", bmc_lab.user, bmc_lab.password, port=bmc_lab.port)
    yield conn
    conn.close()


def new_events(before: list[SelEvent], after: list[SelEvent]) -> list[SelEvent]:
    seen = {e.record_id for e in before}
    return [e for e in after if e.record_id not in seen]


@pytest.mark.lab
def test_sel_events_from_the_simulator_are_read_back_decoded(bmc_lab: BmcLab, bmc: Bmc) -> None:
    before = bmc.read_sel()
    bmc_lab.console(
        # an event is logged only when a state changes: clear both bits silently first
        "sensor_set_bit 0x20 0 3 1 0 0",
        "sensor_set_bit 0x20 0 2 0 0 0",
        "sensor_set_bit 0x20 0 3 1 1 1",  # OS Critical Stop, run-time: what a panic logs
        "sensor_set_bit 0x20 0 2 0 1 1",  # correctable memory ECC
    )
    started = time.time()
    # documented use from async code: the blocking call in a worker thread
    after = asyncio.run(asyncio.to_thread(bmc.read_sel))
    events = new_events(before, after)
    assert [(e.sensor_name, e.description, e.severity) for e in events] == [
        ("OS Stop", "OS run-time critical stop (panic)", "critical"),
        ("Dimm A1", "Correctable ECC / other correctable memory error", "warning"),
    ]
    for event in events:
        assert event.epoch is not None and abs(event.epoch - started) < 120  # SEL clock set
        assert event.asserted and event.generator_id == 0x20
    assert str(events[0]).endswith("OS Stop': OS run-time critical stop (panic) [critical]")


@pytest.mark.lab
def test_power_status_and_guarded_power_control(bmc_lab: BmcLab, bmc: Bmc) -> None:
    power_file = bmc_lab.run_dir / "power.state"  # what the simulated chassis does
    assert bmc.power_status() == "on"
    with pytest.raises(NotConfirmed):
        bmc.power_off()
    assert bmc.power_status() == "on" and power_file.read_text().strip() == "1"
    bmc.power_off(confirm=True)
    assert bmc.power_status() == "off" and power_file.read_text().strip() == "0"
    bmc.power_on(confirm=True)
    assert bmc.power_status() == "on"
    bmc.power_cycle(confirm=True)  # ipmi_sim powers off, and on again about 1 s later
    deadline = time.monotonic() + 10
    while bmc.power_status() != "on" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bmc.power_status() == "on"


@pytest.mark.lab
def test_sensors_follow_the_cpu_temperature(bmc_lab: BmcLab, bmc: Bmc) -> None:
    def cpu() -> object:
        return next(s for s in bmc.sensors() if s.name == "CPU Temp")

    first = cpu()
    assert (first.value, first.unit, first.status, first.sensor_type) == (
        45.0,
        "degrees C",
        "ok",
        "Temperature",
    )
    names = {s.name: s.status for s in bmc.sensors()}
    assert names["Watchdog"] == "event-only" and "Dimm A1" in names and "OS Stop" in names
    before = bmc.read_sel()
    bmc_lab.set_cpu_temp(93)  # ipmi_sim polls the file once a second
    try:
        deadline = time.monotonic() + 5
        while cpu().value != 93.0 and time.monotonic() < deadline:
            time.sleep(0.2)
        hot = cpu()
        assert (hot.value, hot.status) == (93.0, "critical")  # above UC 90, below UNR 100
        crossings = [e.description for e in new_events(before, bmc.read_sel())]
        assert "Upper Critical going high (reading 93 degrees C, threshold 90 degrees C)" in (
            crossings
        )
    finally:
        bmc_lab.set_cpu_temp(45)


@pytest.mark.lab
def test_wrong_password_is_one_clear_line(bmc_lab: BmcLab) -> None:
    wrong = Bmc("127.0.0.1", bmc_lab.user, "not-the-password", port=bmc_lab.port)
    with pytest.raises(BmcError) as caught:
        wrong.power_status()
    assert str(caught.value) == (
        f"ipmi://admin@127.0.0.1:{bmc_lab.port}: the BMC rejected user 'admin' or its password"
    )
    assert "not-the-password" not in str(caught.value)
