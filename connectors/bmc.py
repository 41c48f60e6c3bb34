"""The BMC beside the console: power, the System Event Log and sensors, via python-ipmi.

python-ipmi speaks RMCP+ (IPMI v2, "lanplus") natively, so no ipmitool process per request. Its
calls block (UDP round trips, a 2 s timeout each): `Bmc` is a plain synchronous class, and async
code runs its methods in a worker thread, e.g. `events = await asyncio.to_thread(bmc.read_sel)`.
Calls are serialized by a lock, so two threads may share one `Bmc`.

The SEL decoding is pure (`decode_sel_record` on the 16 raw bytes of a record, tables from the
IPMI v2.0 spec, section 42), so it is tested without a BMC. Power control is guarded: every
method that changes the power state needs `confirm=True`, i.e. the caller asked the operator.

The password is held in memory only: python-ipmi's `Session.__str__` prints it, so no session
object is ever formatted or logged here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors import ConsoleURL, parse_console_url
from connectors.base import ConnectorError

__all__ = [
    "Bmc",
    "BmcError",
    "NotConfirmed",
    "SelEvent",
    "SensorInfo",
    "SensorReading",
    "decode_sel_record",
    "discrete_status",
    "sensor_type_name",
    "threshold_status",
    "unit_name",
]

T = TypeVar("T")


class BmcError(ConnectorError):
    """The BMC could not be asked, or refused: a one-line reason."""


class NotConfirmed(BmcError):
    """A power action was requested without the operator's confirmation."""


# -- tables (IPMI v2.0, tables 42-1 to 42-3 and 43-15) -------------------------------------------
_SENSOR_TYPES: dict[int, str] = {
    0x01: "Temperature",
    0x02: "Voltage",
    0x03: "Current",
    0x04: "Fan",
    0x05: "Physical Security",
    0x06: "Platform Security",
    0x07: "Processor",
    0x08: "Power Supply",
    0x09: "Power Unit",
    0x0A: "Cooling Device",
    0x0B: "Other Units",
    0x0C: "Memory",
    0x0D: "Drive Slot",
    0x0E: "POST Memory Resize",
    0x0F: "System Firmware Progress",
    0x10: "Event Logging Disabled",
    0x11: "Watchdog 1",
    0x12: "System Event",
    0x13: "Critical Interrupt",
    0x14: "Button / Switch",
    0x15: "Module / Board",
    0x16: "Microcontroller",
    0x17: "Add-in Card",
    0x18: "Chassis",
    0x19: "Chip Set",
    0x1A: "Other FRU",
    0x1B: "Cable / Interconnect",
    0x1C: "Terminator",
    0x1D: "System Boot / Restart",
    0x1E: "Boot Error",
    0x1F: "OS Boot",
    0x20: "OS Critical Stop",
    0x21: "Slot / Connector",
    0x22: "System ACPI Power State",
    0x23: "Watchdog 2",
    0x24: "Platform Alert",
    0x25: "Entity Presence",
    0x26: "Monitor ASIC",
    0x27: "LAN",
    0x28: "Management Subsystem Health",
    0x29: "Battery",
    0x2A: "Session Audit",
    0x2B: "Version Change",
    0x2C: "FRU State",
}

# Severity of an asserted event: "critical" (something failed or the OS died), "warning"
# (degraded, correctable, predictive), "info". A deassertion is always "info".
CRIT, WARN, INFO = "critical", "warning", "info"

# Sensor-specific offsets (event/reading type 0x6F): (text, severity) per offset.
_SPECIFIC: dict[int, tuple[tuple[str, str], ...]] = {
    0x05: (
        ("General chassis intrusion", WARN),
        ("Drive bay intrusion", WARN),
        ("I/O card area intrusion", WARN),
        ("Processor area intrusion", WARN),
        ("LAN leash lost", WARN),
        ("Unauthorized dock", WARN),
        ("Fan area intrusion", WARN),
    ),
    0x07: (
        ("IERR (internal processor error)", CRIT),
        ("Thermal trip", CRIT),
        ("FRB1/BIST failure", CRIT),
        ("FRB2/hang in POST", CRIT),
        ("FRB3/processor startup failure", CRIT),
        ("Configuration error", CRIT),
        ("Uncorrectable CPU-complex error", CRIT),
        ("Processor presence detected", INFO),
        ("Processor disabled", WARN),
        ("Terminator presence detected", INFO),
        ("Processor automatically throttled", WARN),
        ("Machine check exception (uncorrectable)", CRIT),
        ("Correctable machine check error", WARN),
    ),
    0x08: (
        ("Power supply presence detected", INFO),
        ("Power supply failure detected", CRIT),
        ("Power supply predictive failure", WARN),
        ("Power supply input lost (AC/DC)", CRIT),
        ("Power supply input lost or out of range", CRIT),
        ("Power supply input out of range, but present", WARN),
        ("Power supply configuration error", WARN),
        ("Power supply inactive (standby)", INFO),
    ),
    0x09: (
        ("Power off / power down", INFO),
        ("Power cycle", INFO),
        ("240VA power down", WARN),
        ("Interlock power down", WARN),
        ("AC lost / power input lost", CRIT),
        ("Soft power control failure", CRIT),
        ("Power unit failure detected", CRIT),
        ("Power unit predictive failure", WARN),
    ),
    0x0C: (
        ("Correctable ECC / other correctable memory error", WARN),
        ("Uncorrectable ECC / other uncorrectable memory error", CRIT),
        ("Memory parity error", CRIT),
        ("Memory scrub failed", WARN),
        ("Memory device disabled", WARN),
        ("Correctable ECC logging limit reached", WARN),
        ("Memory presence detected", INFO),
        ("Memory configuration error", WARN),
        ("Memory spare", INFO),
        ("Memory automatically throttled", WARN),
        ("Memory critical overtemperature", CRIT),
    ),
    0x0F: (
        ("System firmware error (POST error)", CRIT),
        ("System firmware hang", CRIT),
        ("System firmware progress", INFO),
    ),
    0x10: (
        ("Correctable memory error logging disabled", WARN),
        ("Event type logging disabled", WARN),
        ("Log area reset/cleared", INFO),
        ("All event logging disabled", WARN),
        ("SEL full", WARN),
        ("SEL almost full", WARN),
        ("Correctable machine check error logging disabled", WARN),
    ),
    0x11: (
        ("BIOS watchdog reset", CRIT),
        ("OS watchdog reset", CRIT),
        ("OS watchdog shut down", CRIT),
        ("OS watchdog power down", CRIT),
        ("OS watchdog power cycle", CRIT),
        ("OS watchdog NMI / diagnostic interrupt", CRIT),
        ("OS watchdog expired, status only", WARN),
        ("OS watchdog pre-timeout interrupt, non-NMI", WARN),
    ),
    0x12: (
        ("System reconfigured", INFO),
        ("OEM system boot event", INFO),
        ("Undetermined system hardware failure", CRIT),
        ("Entry added to auxiliary log", INFO),
        ("PEF action", INFO),
        ("Timestamp clock synchronization", INFO),
    ),
    0x13: (
        ("Front panel NMI / diagnostic interrupt", CRIT),
        ("Bus timeout", CRIT),
        ("I/O channel check NMI", CRIT),
        ("Software NMI", WARN),
        ("PCI PERR", CRIT),
        ("PCI SERR", CRIT),
        ("EISA fail-safe timeout", CRIT),
        ("Bus correctable error", WARN),
        ("Bus uncorrectable error", CRIT),
        ("Fatal NMI", CRIT),
        ("Bus fatal error", CRIT),
        ("Bus degraded", WARN),
    ),
    0x1D: (
        ("System restart: power up", INFO),
        ("System restart: hard reset", INFO),
        ("System restart: warm reset", INFO),
        ("System restart: user requested PXE boot", INFO),
        ("System restart: automatic boot to diagnostic", INFO),
        ("System restart: OS initiated hard reset", INFO),
        ("System restart: OS initiated warm reset", INFO),
        ("System restart", INFO),
    ),
    0x1E: (
        ("No bootable media", WARN),
        ("Non-bootable diskette left in drive", WARN),
        ("PXE server not found", WARN),
        ("Invalid boot sector", WARN),
        ("Timeout waiting for boot source selection", WARN),
    ),
    0x20: (
        ("OS critical stop during OS load / initialization", CRIT),
        ("OS run-time critical stop (panic)", CRIT),
        ("OS graceful stop", INFO),
        ("OS graceful shutdown", INFO),
        ("Soft shutdown initiated by PEF", INFO),
        ("OS agent not responding", WARN),
    ),
    0x23: (
        ("Watchdog timer expired, status only", WARN),
        ("Watchdog hard reset", CRIT),
        ("Watchdog power down", CRIT),
        ("Watchdog power cycle", CRIT),
        ("", INFO),
        ("", INFO),
        ("", INFO),
        ("", INFO),
        ("Watchdog timer interrupt", WARN),
    ),
}

_THRESHOLD_LEVELS = (
    ("Lower Non-critical", WARN),
    ("Lower Critical", CRIT),
    ("Lower Non-recoverable", CRIT),
    ("Upper Non-critical", WARN),
    ("Upper Critical", CRIT),
    ("Upper Non-recoverable", CRIT),
)

# Generic discrete event/reading types 0x02-0x0C: offset texts.
_GENERIC: dict[int, tuple[str, ...]] = {
    0x02: ("Transition to Idle", "Transition to Active", "Transition to Busy"),
    0x03: ("State Deasserted", "State Asserted"),
    0x04: ("Predictive Failure deasserted", "Predictive Failure asserted"),
    0x05: ("Limit Not Exceeded", "Limit Exceeded"),
    0x06: ("Performance Met", "Performance Lags"),
    0x07: (
        "Transition to OK",
        "Transition to Non-Critical from OK",
        "Transition to Critical from less severe",
        "Transition to Non-recoverable from less severe",
        "Transition to Non-Critical from more severe",
        "Transition to Critical from Non-recoverable",
        "Transition to Non-recoverable",
        "Monitor",
        "Informational",
    ),
    0x08: ("Device Removed / Absent", "Device Inserted / Present"),
    0x09: ("Device Disabled", "Device Enabled"),
    0x0A: (
        "Transition to Running",
        "Transition to In Test",
        "Transition to Power Off",
        "Transition to On Line",
        "Transition to Off Line",
        "Transition to Off Duty",
        "Transition to Degraded",
        "Transition to Power Save",
        "Install Error",
    ),
    0x0B: (
        "Fully Redundant",
        "Redundancy Lost",
        "Redundancy Degraded",
        "Non-redundant: Sufficient Resources from Redundant",
        "Non-redundant: Sufficient Resources from Insufficient",
        "Non-redundant: Insufficient Resources",
        "Redundancy Degraded from Fully Redundant",
        "Redundancy Degraded from Non-redundant",
    ),
    0x0C: ("D0 Power State", "D1 Power State", "D2 Power State", "D3 Power State"),
}
_GENERIC_SEVERITY: dict[tuple[int, int], str] = {
    (0x04, 1): WARN,
    (0x05, 1): WARN,
    (0x06, 1): WARN,
    (0x07, 1): WARN,
    (0x07, 2): CRIT,
    (0x07, 3): CRIT,
    (0x07, 4): WARN,
    (0x07, 5): CRIT,
    (0x07, 6): CRIT,
    (0x0A, 6): WARN,
    (0x0A, 8): WARN,
    (0x0B, 1): CRIT,
    (0x0B, 2): WARN,
    (0x0B, 5): CRIT,
    (0x0B, 6): WARN,
    (0x0B, 7): WARN,
}

_UNITS = (
    "",
    "degrees C",
    "degrees F",
    "degrees K",
    "Volts",
    "Amps",
    "Watts",
    "Joules",
    "Coulombs",
    "VA",
    "Nits",
    "lumen",
    "lux",
    "Candela",
    "kPa",
    "PSI",
    "Newton",
    "CFM",
    "RPM",
    "Hz",
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "week",
)

_PRE_INIT_LIMIT = 0x20000000  # timestamps up to this count seconds since the BMC started
_UNSPECIFIED_TIME = 0xFFFFFFFF


def sensor_type_name(code: int) -> str:
    if code in _SENSOR_TYPES:
        return _SENSOR_TYPES[code]
    return f"OEM sensor type 0x{code:02x}" if code >= 0xC0 else f"sensor type 0x{code:02x}"


def unit_name(code: int, percentage: bool = False) -> str:
    base = _UNITS[code] if 0 <= code < len(_UNITS) else f"unit {code}"
    return "%" if percentage and not base else (f"% {base}" if percentage else base)


# -- decoded values ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What the SDR says about a sensor, enough to name it and convert raw readings."""

    name: str
    unit: str = ""
    convert: Callable[[int], float | None] | None = None


@dataclass(frozen=True, slots=True)
class SelEvent:
    record_id: int
    record_type: int
    timestamp: int  # raw: epoch seconds, or seconds since BMC start up to 0x20000000
    generator_id: int
    sensor_type: int
    sensor_number: int
    event_type: int  # event/reading type code: 0x01 threshold, 0x6F sensor-specific, ...
    asserted: bool
    offset: int
    data: tuple[int, int, int]
    description: str
    severity: str  # "critical", "warning", "info"
    sensor_name: str | None = None

    @property
    def epoch(self) -> int | None:
        """Seconds since the epoch, or None (BMC clock not yet set, or unspecified)."""
        if self.timestamp <= _PRE_INIT_LIMIT or self.timestamp == _UNSPECIFIED_TIME:
            return None
        return self.timestamp

    @property
    def when(self) -> str:
        if self.timestamp == _UNSPECIFIED_TIME:
            return "time unknown"
        if self.epoch is None:
            return f"BMC start +{self.timestamp}s"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.epoch))

    @property
    def sensor_type_name(self) -> str:
        return sensor_type_name(self.sensor_type)

    def __str__(self) -> str:
        name = f" {self.sensor_name!r}" if self.sensor_name else ""
        state = "" if self.asserted else " (deasserted)"
        return (
            f"#{self.record_id} {self.when} {self.sensor_type_name} #{self.sensor_number}{name}: "
            f"{self.description}{state} [{self.severity}]"
        )


@dataclass(frozen=True, slots=True)
class SensorReading:
    number: int
    name: str
    sensor_type: str
    value: float | None  # in `unit`; None for discrete sensors and missing readings
    unit: str
    status: str  # "ok", "non-critical", "critical", "non-recoverable", "no reading", or states

    def __str__(self) -> str:
        value = "" if self.value is None else f" {self.value:g} {self.unit}".rstrip()
        return f"{self.name}:{value} [{self.status}]"


# -- pure decoding -------------------------------------------------------------------------------
def decode_sel_record(raw: bytes, sensors: Mapping[int, SensorInfo] | None = None) -> SelEvent:
    """Decode one 16-byte SEL record (IPMI v2.0 section 32.1).

    `sensors` (sensor number -> SensorInfo, from the SDR) adds names and converts the raw
    readings of threshold events into units; without it raw readings are shown.
    """
    if len(raw) != 16:
        raise ValueError(f"a SEL record has 16 bytes, not {len(raw)}")
    record_id = raw[0] | raw[1] << 8
    record_type = raw[2]
    timestamp = int.from_bytes(raw[3:7], "little")
    if record_type >= 0xC0:
        return _oem_record(raw, record_id, record_type, timestamp)
    sensor_type, number, dir_type = raw[10], raw[11], raw[12]
    data = (raw[13], raw[14], raw[15])
    info = (sensors or {}).get(number)
    event_type = dir_type & 0x7F
    asserted = not dir_type & 0x80
    offset = data[0] & 0x0F
    description, severity = _describe(sensor_type, event_type, offset, data, info)
    return SelEvent(
        record_id=record_id,
        record_type=record_type,
        timestamp=timestamp,
        generator_id=raw[7] | raw[8] << 8,
        sensor_type=sensor_type,
        sensor_number=number,
        event_type=event_type,
        asserted=asserted,
        offset=offset,
        data=data,
        description=description,
        severity=severity if asserted else INFO,
        sensor_name=info.name if info else None,
    )


def _oem_record(raw: bytes, record_id: int, record_type: int, timestamp: int) -> SelEvent:
    stamped = record_type < 0xE0  # 0xC0-0xDF carry a timestamp, 0xE0-0xFF do not
    return SelEvent(
        record_id=record_id,
        record_type=record_type,
        timestamp=timestamp if stamped else _UNSPECIFIED_TIME,
        generator_id=0,
        sensor_type=0,
        sensor_number=0,
        event_type=0,
        asserted=True,
        offset=0,
        data=(0, 0, 0),
        description=f"OEM record type 0x{record_type:02x}: {raw[7 if stamped else 3 :].hex(' ')}",
        severity=INFO,
    )


def _describe(
    sensor_type: int,
    event_type: int,
    offset: int,
    data: tuple[int, int, int],
    info: SensorInfo | None,
) -> tuple[str, str]:
    if event_type == 0x01:
        return _describe_threshold(offset, data, info)
    if event_type == 0x6F:
        table = _SPECIFIC.get(sensor_type, ())
        if offset < len(table) and table[offset][0]:
            text, severity = table[offset]
            return text + _memory_detail(sensor_type, data), severity
        return f"{sensor_type_name(sensor_type)} state {offset}", INFO
    if event_type in _GENERIC and offset < len(_GENERIC[event_type]):
        return _GENERIC[event_type][offset], _GENERIC_SEVERITY.get((event_type, offset), INFO)
    if event_type >= 0x70:
        return f"OEM event type 0x{event_type:02x}, offset {offset}", INFO
    return f"event type 0x{event_type:02x}, offset {offset}", INFO


def _describe_threshold(
    offset: int, data: tuple[int, int, int], info: SensorInfo | None
) -> tuple[str, str]:
    if offset > 0x0B:
        return f"threshold offset {offset}", INFO
    level, severity = _THRESHOLD_LEVELS[offset // 2]
    text = f"{level} going {'high' if offset % 2 else 'low'}"
    # Event data 1 bits 7:6 = 01: byte 2 is the trigger reading; bits 5:4 = 01: byte 3 is the
    # threshold that was crossed (both raw, converted with the sensor's SDR factors).
    details = []
    if data[0] >> 6 == 0b01:
        details.append(f"reading {_reading(data[1], info)}")
    if (data[0] >> 4) & 0b11 == 0b01:
        details.append(f"threshold {_reading(data[2], info)}")
    return (f"{text} ({', '.join(details)})" if details else text), severity


def _reading(raw: int, info: SensorInfo | None) -> str:
    if info is None or info.convert is None:
        return str(raw)
    value = info.convert(raw)
    if value is None:
        return str(raw)
    return f"{value:g} {info.unit}".rstrip()


def _memory_detail(sensor_type: int, data: tuple[int, int, int]) -> str:
    # Memory events: event data 1 bits 5:4 = 10 means byte 3 names the memory module (DIMM).
    if sensor_type == 0x0C and (data[0] >> 4) & 0b11 == 0b10 and data[2] != 0xFF:
        return f", DIMM {data[2]}"
    return ""


def threshold_status(states: int | None) -> str:
    """The comparison bits of a threshold sensor's reading (Get Sensor Reading byte 3)."""
    if states is None:
        return "no reading"
    if states & 0b100100:
        return "non-recoverable"
    if states & 0b010010:
        return "critical"
    if states & 0b001001:
        return "non-critical"
    return "ok"


def discrete_status(sensor_type: int, event_type: int, states: int | None) -> str:
    """The asserted states of a discrete sensor, as text ("ok" when none is)."""
    if states is None:
        return "no reading"
    offsets = [bit for bit in range(15) if states >> bit & 1]
    if not offsets:
        return "ok"
    names = []
    for offset in offsets:
        if event_type == 0x6F:
            table = _SPECIFIC.get(sensor_type, ())
            text = table[offset][0] if offset < len(table) else ""
        else:
            generic = _GENERIC.get(event_type, ())
            text = generic[offset] if offset < len(generic) else ""
        names.append(text or f"state {offset}")
    return ", ".join(names)


# -- the BMC -------------------------------------------------------------------------------------
class Bmc:
    """One BMC over RMCP+ (python-ipmi). Blocking; see the module docstring for async use."""

    def __init__(
        self,
        host: str,
        user: str,
        password: str,
        *,
        port: int = 623,
        cipher: int = 3,
        retries: int = 1,
    ) -> None:
        self.host, self.port, self.user, self.cipher = host, port, user, cipher
        self._password = password
        self._retries = retries
        self._ipmi: Any = None
        self._sdr: list[Any] | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_url(cls, url: ConsoleURL | str, password: str) -> Bmc:
        """The BMC of an ipmi:// console URL (same user, host, port and cipher)."""
        parsed = parse_console_url(url) if isinstance(url, str) else url
        if parsed.scheme != "ipmi" or not parsed.host or not parsed.user:
            raise BmcError(f"{parsed.display}: not an ipmi://user@bmc URL")
        cipher = parsed.options.get("cipher", "3")
        if not cipher.isdigit():
            raise BmcError(f"{parsed.display}: cipher must be a number")
        port = parsed.port if parsed.port is not None else 623
        return cls(parsed.host, parsed.user, password, port=port, cipher=int(cipher))

    def __repr__(self) -> str:
        return f"<Bmc {self.user}@{self.host}:{self.port}>"

    @property
    def where(self) -> str:
        return f"ipmi://{self.user}@{self.host}:{self.port}"

    def __enter__(self) -> Bmc:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session -------------------------------------------------------------------------------
    def open(self) -> None:
        """Establish the RMCP+ session (done on first use anyway)."""
        with self._lock:
            if self._ipmi is None:
                self._ipmi = self._translate("connect", self._connect)

    def _connect(self) -> Any:
        import pyipmi
        import pyipmi.interfaces

        # No keep-alive thread: requests are occasional, and a session the BMC has timed out
        # is re-established on the next read-only request.
        interface = pyipmi.interfaces.create_interface(
            "rmcpplus",
            cipher_suite=self.cipher,
            keep_alive_interval=0,
            max_retries=self._retries,
        )
        ipmi = pyipmi.create_connection(interface)
        ipmi.session.set_session_type_rmcp(self.host, port=self.port)
        ipmi.session.set_auth_type_user(self.user, self._password)
        ipmi.target = pyipmi.Target(ipmb_address=0x20)
        try:
            ipmi.open()
        except BaseException:
            _quietly_close(ipmi)
            raise
        return ipmi

    def close(self) -> None:
        with self._lock:
            ipmi, self._ipmi, self._sdr = self._ipmi, None, None
            if ipmi is not None:
                _quietly_close(ipmi)

    def _request(self, what: str, call: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run `call(ipmi)`. A read-only request on an older session that fails is tried once
        more on a fresh one: the BMC may have timed the idle session out."""
        with self._lock:
            reused = self._ipmi is not None
            self.open()
            try:
                return self._translate(what, lambda: call(self._ipmi))
            except BmcError:
                if not (retry and reused):
                    raise
            self.close()
            self.open()
            return self._translate(what, lambda: call(self._ipmi))

    def _translate(self, what: str, call: Callable[[], T]) -> T:
        from pyipmi import errors

        try:
            return call()
        except errors.AuthenticationError:
            raise BmcError(
                f"{self.where}: the BMC rejected user {self.user!r} or its password"
            ) from None
        except errors.IpmiConnectionError as exc:
            raise BmcError(f"{self.where}: {exc}") from None
        except (errors.RetryError, TimeoutError, errors.IpmiTimeoutError):
            raise BmcError(f"{self.where}: no answer from the BMC ({what})") from None
        except errors.CompletionCodeError as exc:
            raise BmcError(f"{self.where}: the BMC refused {what} ({exc})") from None
        except (errors.NotSupportedError, errors.IpmiLongPasswordError) as exc:
            raise BmcError(f"{self.where}: {what}: {exc}") from None
        except (OSError, errors.DecodingError, errors.MessageStatusCodeError) as exc:
            raise BmcError(f"{self.where}: {what} failed ({exc})") from None

    # -- power ---------------------------------------------------------------------------------
    def power_status(self) -> str:
        """ "on" or "off"."""
        status = self._request("chassis status", lambda ipmi: ipmi.get_chassis_status())
        return "on" if status.power_on else "off"

    def power_on(self, *, confirm: bool = False) -> None:
        self._power("power on", confirm, lambda ipmi: ipmi.chassis_control_power_up())

    def power_off(self, *, confirm: bool = False) -> None:
        """A hard power off (no OS shutdown): what an SRE does to a wedged server."""
        self._power("power off", confirm, lambda ipmi: ipmi.chassis_control_power_down())

    def power_cycle(self, *, confirm: bool = False) -> None:
        self._power("power cycle", confirm, lambda ipmi: ipmi.chassis_control_power_cycle())

    def power_reset(self, *, confirm: bool = False) -> None:
        self._power("hard reset", confirm, lambda ipmi: ipmi.chassis_control_hard_reset())

    def _power(self, what: str, confirm: bool, call: Callable[[Any], None]) -> None:
        if not confirm:
            raise NotConfirmed(f"{self.where}: {what} needs confirm=True (ask the operator first)")
        # Never retried: a request that timed out may have been carried out.
        self._request(what, call, retry=False)

    # -- SEL and sensors -----------------------------------------------------------------------
    def read_sel(self) -> list[SelEvent]:
        """The whole System Event Log, oldest first, decoded (names and units from the SDR)."""
        entries = self._request("read SEL", lambda ipmi: ipmi.get_sel_entries())
        infos = self._sensor_infos()
        return [decode_sel_record(bytes(entry.data), infos) for entry in entries]

    def sensors(self) -> list[SensorReading]:
        """Every sensor in the SDR repository with its current reading and status."""
        return [self._read_sensor(record) for record in self._sdr_records() if _is_sensor(record)]

    def _read_sensor(self, record: Any) -> SensorReading:
        code = _sensor_type_code(record)
        kind = sensor_type_name(code)
        name = _record_name(record)
        if type(record).__name__ == "SdrEventOnlySensorRecord":
            return SensorReading(record.number, name, kind, None, "", "event-only")
        raw, states = self._request(
            f"read sensor {name!r}",
            lambda ipmi: ipmi.get_sensor_reading(record.number, record.owner_lun),
        )
        threshold = record.event_reading_type_code == 0x01
        if threshold and hasattr(record, "convert_sensor_raw_to_value"):
            value = None if raw is None else record.convert_sensor_raw_to_value(raw)
            status = "no reading" if raw is None else threshold_status(states)
            return SensorReading(record.number, name, kind, value, _record_unit(record), status)
        status = discrete_status(code, record.event_reading_type_code, states)
        return SensorReading(record.number, name, kind, None, "", status)

    def _sdr_records(self) -> list[Any]:
        with self._lock:
            if self._sdr is None:
                self._sdr = self._request(
                    "read SDR", lambda ipmi: list(ipmi.sdr_repository_entries())
                )
            return self._sdr

    def _sensor_infos(self) -> dict[int, SensorInfo]:
        infos: dict[int, SensorInfo] = {}
        for record in filter(_is_sensor, self._sdr_records()):
            convert = getattr(record, "convert_sensor_raw_to_value", None)
            unit = _record_unit(record) if convert else ""
            infos[record.number] = SensorInfo(_record_name(record), unit, convert)
        return infos


def _is_sensor(record: Any) -> bool:
    """Full, compact and event-only sensor records; not device locators or FRU records."""
    return hasattr(record, "event_reading_type_code") and hasattr(record, "number")


def _sensor_type_code(record: Any) -> int:
    # python-ipmi names the field differently in event-only records
    code = getattr(record, "sensor_type_code", None)
    return int(code if code is not None else getattr(record, "sensor_type", 0))


def _record_name(record: Any) -> str:
    name = record.device_id_string
    return name.decode("latin-1") if isinstance(name, bytes) else str(name)


def _record_unit(record: Any) -> str:
    return unit_name(getattr(record, "units_2", 0), bool(getattr(record, "percentage", 0)))


def _quietly_close(ipmi: Any) -> None:
    # Closing a half-open or timed-out session: there is nothing left to do if it fails.
    with contextlib.suppress(Exception):
        ipmi.close()
