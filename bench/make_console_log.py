#!/usr/bin/env python3
"""Build a large, realistic serial-console log for benchmarking `crashcart analyze`.

    make_console_log.py OUT --size-mb N [--seed S] [--crash-every-kb K]

The log is a busy server's console: printk lines with `[ 1234.567890]` stamps (audit, NIC links
going up and down, systemd, EXT4, USB, firewall drops), userspace lines without stamps (systemd
status with colour, getty, shell prompts, application logs), some `\\r\\n`, an occasional line of
several kB. Every ~K kB a whole real QEMU capture (corpus/qemu/*.log: its boot, and its crash if
it has one) is spliced in with its timestamps shifted so they keep rising across the file.

What was embedded is written to OUT.manifest.json: the line span of every crash according to the
corpus's hand-made `NAME.expected.json` (not according to crashcart, so a parser bug shows up as
a mismatch instead of moving the goal) and every unexpected reboot. Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _shared import MIB, manifest_path, qemu_corpus

# Consoles and the parser treat boot banners a few hundred lines apart as one boot; keep captures
# well apart so each embedded boot is its own event and each crash is closed by ordinary noise.
MIN_GAP_LINES = 500
START_UPTIME_US = 86_400 * 1_000_000  # the server has been up a day when the log starts
WRITE_CHUNK = 4 * MIB

_TIMESTAMP = re.compile(rb"\[\s*(\d+)\.(\d{6})\]")
# What the kernel prints on an orderly power-off/restart (kernel/reboot.c), or a panic, which
# explains the reboot after it (panic=N). A boot that follows either is expected; a boot after
# anything else means the box was reset under us.
_ORDERLY = re.compile(
    rb"reboot: (?:Restarting system|Power down|System halted)|Kernel panic - not syncing"
)


# -- the real captures ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Capture:
    name: str
    data: bytes
    line_count: int
    crashes: tuple[tuple[int, int], ...]  # 1-based line spans inside the capture
    orderly_end: bool  # ends in an orderly shutdown, so the next boot is no surprise
    last_us: int  # the capture's last timestamp, to resume the filler clock after it


def crash_spans(expected: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """One span per crash report a reader expects, from the capture's hand-made events.

    The kernel's `Kernel panic - not syncing: Fatal exception` that directly follows an oops is
    that oops ending, not a second crash, so a panic event starting on the next line is merged
    into the event before it. A panic printed later (after other output) stays its own crash.
    """
    spans: list[tuple[int, int]] = []
    for event in expected.get("events", []):
        start, end = int(event["start_line"]), int(event["end_line"])
        if spans and str(event["kind"]).startswith("panic") and start <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return tuple(spans)


def load_capture(log: Path) -> Capture:
    data = log.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\r\n"  # the next line must not glue onto the capture's last one
    expected_file = log.with_name(log.stem + ".expected.json")
    expected = json.loads(expected_file.read_text()) if expected_file.exists() else {}
    stamps = _TIMESTAMP.findall(data)
    last_us = max((int(s) * 1_000_000 + int(us) for s, us in stamps), default=0)
    return Capture(
        name=log.stem,
        data=data,
        line_count=data.count(b"\n"),
        crashes=crash_spans(expected),
        orderly_end=_ORDERLY.search(data) is not None,
        last_us=last_us,
    )


def load_captures(corpus: Path) -> list[Capture]:
    captures = [load_capture(p) for p in sorted(corpus.glob("*.log"))]
    if not captures:
        raise SystemExit(f"no *.log captures in {corpus}")
    return captures


def shift_timestamps(data: bytes, offset_us: int) -> bytes:
    """Move every `[ s.us]` stamp by offset_us, formatted as printk does (`[%5lu.%06lu]`)."""

    def shifted(m: re.Match[bytes]) -> bytes:
        total = int(m.group(1)) * 1_000_000 + int(m.group(2)) + offset_us
        return b"[%5d.%06d]" % divmod(total, 1_000_000)

    return _TIMESTAMP.sub(shifted, data)


# -- filler: what a busy server prints between crashes --------------------------------------------
# (name, weight, generator). Weights are per burst; a burst is one to a dozen lines that belong
# together (a USB stick being plugged in, a link flap, a login).
Burst = list[tuple[bool, str]]  # (is printk, text without stamp or line end)

_HOST = "web01"
_IFACES = ("eno1", "eno2", "ens1f0np0", "bond0")
_DISKS = ("sda1", "sdb1", "nvme0n1p2", "dm-0", "dm-3")
_UNITS = ("logrotate", "apt-daily", "certbot", "fstrim", "man-db", "sysstat-collect", "backup")
_APPS = ("api", "worker", "nginx", "postgres", "redis-server", "node_exporter")


@dataclass
class Filler:
    rng: random.Random
    clock_us: int = START_UPTIME_US
    audit_serial: int = 1000
    usb_devnum: int = 2
    session: int = 1
    generators: list[tuple[float, Callable[[], Burst]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.generators = [
            (30.0, self.firewall),
            (20.0, self.audit),
            (14.0, self.app_log),
            (8.0, self.systemd_kmsg),
            (8.0, self.systemd_status),
            (5.0, self.link_flap),
            (4.0, self.ext4),
            (2.0, self.usb_stick),
            (3.0, self.misc_kernel),
            (2.0, self.shell),
            (1.0, self.getty),
            (0.4, self.long_line),
        ]

    def burst(self) -> Burst:
        weights = [w for w, _ in self.generators]
        (_, make), *_ = self.rng.choices(self.generators, weights=weights)
        return make()

    # - printk --------------------------------------------------------------------------------
    def firewall(self) -> Burst:
        r = self.rng
        src = f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        port = r.choice((22, 23, 25, 445, 3389, 5900, 6379, 8080))
        mac = ":".join(f"{r.randrange(256):02x}" for _ in range(14))
        return [
            (
                True,
                f"[UFW BLOCK] IN={r.choice(_IFACES[:2])} OUT= MAC={mac} SRC={src} DST=203.0.113.10 "
                f"LEN={r.choice((40, 44, 52, 60))} TOS=0x00 PREC=0x00 TTL={r.randint(30, 250)} "
                f"ID={r.randrange(65536)} PROTO=TCP SPT={r.randint(1024, 65535)} DPT={port} "
                "WINDOW=1024 RES=0x00 SYN URGP=0",
            )
        ]

    def audit(self) -> Burst:
        r = self.rng
        self.audit_serial += 1
        stamp = f"audit({1_795_000_000 + self.clock_us // 1_000_000}.{r.randrange(1000):03d}:"
        stamp += f"{self.audit_serial})"
        if r.random() < 0.5:
            unit = r.choice(_UNITS)
            kind = r.choice(((1130, "SERVICE_START"), (1131, "SERVICE_STOP")))[0]
            text = (
                f"audit: type={kind} {stamp}: pid=1 uid=0 auid=4294967295 ses=4294967295 "
                f'subj=unconfined msg=\'unit={unit} comm="systemd" exe="/usr/lib/systemd/systemd"'
                " hostname=? addr=? terminal=? res=success'"
            )
        else:
            comm, path = r.choice(
                (
                    ("nginx", "/etc/ssl/private/web01.key"),
                    ("snmpd", "/proc/sys/net/ipv6/conf/all/forwarding"),
                    ("cups-browsed", "/usr/share/cups/locale/"),
                    ("python3", "/proc/1/environ"),
                )
            )
            text = (
                f'audit: type=1400 {stamp}: apparmor="DENIED" operation="open" class="file" '
                f'profile="{comm}" name="{path}" pid={r.randint(300, 99999)} comm="{comm}" '
                'requested_mask="r" denied_mask="r" fsuid=0 ouid=0'
            )
        return [(True, text)]

    def systemd_kmsg(self) -> Burst:
        unit = self.rng.choice(_UNITS)
        self.session += 1
        return self.rng.choice(
            (
                [(True, f"systemd[1]: Starting {unit}.service - {unit} job...")],
                [
                    (True, f"systemd[1]: {unit}.service: Deactivated successfully."),
                    (True, f"systemd[1]: Finished {unit}.service - {unit} job."),
                ],
                [
                    (True, f"systemd-logind[712]: New session {self.session} of user deploy."),
                    (
                        True,
                        f"systemd[1]: Started session-{self.session}.scope - Session "
                        f"{self.session} of User deploy.",
                    ),
                ],
            )
        )

    def link_flap(self) -> Burst:
        r = self.rng
        nic = r.choice(
            (
                (
                    "e1000e 0000:00:1f.6 eno1",
                    "NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
                ),
                (
                    "bnxt_en 0000:18:00.1 eno2",
                    "NIC Link is Up, 25000 Mbps full duplex, Flow control: none",
                ),
                ("mlx5_core 0000:3b:00.0 ens1f0np0", "Link up"),
            )
        )
        dev, up = nic
        iface = dev.rsplit(" ", 1)[1]
        return [
            (True, f"{dev}: NIC Link is Down" if "NIC" in up else f"{dev}: Link down"),
            (True, f"bond0: (slave {iface}): link status definitely down, disabling slave"),
            (True, f"{dev}: {up}"),
            (True, f"bond0: (slave {iface}): link status definitely up, 1000 Mbps full duplex"),
            (True, f"IPv6: ADDRCONF(NETDEV_CHANGE): {iface}: link becomes ready"),
        ]

    def ext4(self) -> Burst:
        r = self.rng
        disk = r.choice(_DISKS)
        uuid = "-".join(f"{r.getrandbits(b):0{b // 4}x}" for b in (32, 16, 16, 16, 48))
        return r.choice(
            (
                [
                    (
                        True,
                        f"EXT4-fs ({disk}): mounted filesystem {uuid} r/w with ordered data "
                        "mode. Quota mode: none.",
                    ),
                ],
                [(True, f"EXT4-fs ({disk}): unmounting filesystem {uuid}.")],
                [
                    (
                        True,
                        f"EXT4-fs warning (device {disk}): ext4_dx_add_entry:2516: Directory "
                        f"(ino: {r.randint(1000, 9999999)}) index full, reach max htree level :2",
                    ),
                    (
                        True,
                        f"EXT4-fs warning (device {disk}): ext4_dx_add_entry:2521: Large "
                        "directory feature is not enabled on this filesystem",
                    ),
                ],
            )
        )

    def usb_stick(self) -> Burst:
        r = self.rng
        self.usb_devnum += 1
        n, host = self.usb_devnum, r.randint(6, 9)
        if r.random() < 0.5:
            return [(True, f"usb 1-1: USB disconnect, device number {n - 1}")]
        return [
            (True, f"usb 1-1: new high-speed USB device number {n} using xhci_hcd"),
            (True, "usb 1-1: New USB device found, idVendor=0781, idProduct=5567, bcdDevice= 1.00"),
            (True, "usb 1-1: New USB device strings: Mfr=1, Product=2, SerialNumber=3"),
            (True, "usb 1-1: Product: Cruzer Blade"),
            (True, "usb 1-1: Manufacturer: SanDisk"),
            (True, "usb-storage 1-1:1.0: USB Mass Storage device detected"),
            (True, f"scsi host{host}: usb-storage 1-1:1.0"),
            (True, f"sd {host}:0:0:0: [sdc] 30031872 512-byte logical blocks: (15.4 GB/14.3 GiB)"),
            (True, f"sd {host}:0:0:0: [sdc] Write Protect is off"),
            (True, f"sd {host}:0:0:0: [sdc] Attached SCSI removable disk"),
        ]

    def misc_kernel(self) -> Burst:
        r = self.rng
        return [
            r.choice(
                (
                    (
                        True,
                        "TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending "
                        "cookies.  Check SNMP counters.",
                    ),
                    (True, "nf_conntrack: nf_conntrack: table full, dropping packet"),
                    (
                        True,
                        f"perf: interrupt took too long ({r.randint(2501, 4000)} > 2500), "
                        "lowering kernel.perf_event_max_sample_rate to 79750",
                    ),
                    (
                        True,
                        f"mce: CPU{r.randint(0, 31)}: Core temperature above threshold, "
                        "cpu clock throttled (total events = 1)",
                    ),
                    # Contains the EDAC marker but is the driver's normal start-up chatter.
                    (
                        True,
                        "EDAC MC0: Giving out device to module skx_edac controller Skylake "
                        "Socket#0 IMC#0: DEV 0000:3a:0a.0 (INTERRUPT)",
                    ),
                    (True, f"hrtimer: interrupt took {r.randint(100000, 900000)} ns"),
                    (True, f"kauditd_printk_skb: {r.randint(2, 40)} callbacks suppressed"),
                )
            )
        ]

    # - userspace (no printk stamp) ------------------------------------------------------------
    def systemd_status(self) -> Burst:
        unit = self.rng.choice(_UNITS)
        return self.rng.choice(
            (
                [(False, f"[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39m{unit}.timer\x1b[0m.")],
                [(False, f"         Starting \x1b[0;1;39m{unit}.service\x1b[0m - {unit} job...")],
                [
                    (
                        False,
                        f"[\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39m{unit}"
                        ".service\x1b[0m.",
                    ),
                    (False, f"See 'systemctl status {unit}.service' for details."),
                ],
            )
        )

    def app_log(self) -> Burst:
        r = self.rng
        app = r.choice(_APPS)
        pid = r.randint(800, 40000)
        secs = self.clock_us // 1_000_000
        when = f"2026-11-{1 + secs // 86400 % 28:02d}T{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}"
        when += f":{secs % 60:02d}.{r.randrange(1000):03d}Z"
        level = r.choices(("info", "warn", "error", "DEBUG"), weights=(70, 15, 5, 10))[0]
        if level == "DEBUG":
            # "DEBUG" holds the parser's "BUG" marker: a near miss it must read and reject.
            text = f"{when} {_HOST} {app}[{pid}]: DEBUG cache refresh took {r.randint(1, 900)}ms"
        elif level == "warn":
            text = (
                f"{when} {_HOST} {app}[{pid}]: \x1b[33mWARN\x1b[0m slow query ({r.randint(1, 9)}s)"
            )
        else:
            text = (
                f'{when} {_HOST} {app}[{pid}]: level={level} msg="request served" '
                f"path=/v1/items/{r.randint(1, 99999)} "
                f"status={r.choice((200, 200, 304, 404, 500))} "
                f"duration_ms={r.randint(1, 400)}"
            )
        return [(False, text)]

    def shell(self) -> Burst:
        cmd, out = self.rng.choice(
            (
                ("uptime", " 14:02:11 up 3 days,  2:41,  1 user,  load average: 3.12, 2.95, 2.80"),
                ("df -h /var", "/dev/sda1        98G   71G   23G  76% /var"),
                ("systemctl is-active nginx", "active"),
                ("free -m", "Mem:          64213       41102        1804"),
            )
        )
        prompt = "\x1b[01;32mroot@web01\x1b[00m:\x1b[01;34m~\x1b[00m# "
        return [(False, prompt + cmd), (False, out)]

    def getty(self) -> Burst:
        return [
            (False, ""),
            (False, f"Debian GNU/Linux 12 {_HOST} ttyS0"),
            (False, ""),
            (False, f"{_HOST} login: "),
        ]

    def long_line(self) -> Burst:
        r = self.rng
        if r.random() < 0.5:
            # An audit PROCTITLE record: a command line in hex, kB long for a big argv.
            hexed = "".join(f"{r.randrange(32, 127):02X}" for _ in range(r.randint(500, 4000)))
            return [
                (
                    True,
                    f"audit: type=1327 audit(1795000000.000:{self.audit_serial}): "
                    f"proctitle={hexed}",
                )
            ]
        # An application dumping a whole JSON document on one line, often at debug level: a
        # kB-long line holding the "BUG" marker, which the parser must reject cheaply.
        items = ",".join(
            f'{{"id":{i},"sku":"SKU-{r.randrange(10**6):06d}","qty":{r.randint(1, 9)}}}'
            for i in range(r.randint(50, 400))
        )
        level = r.choice(("INFO", "DEBUG"))
        order = r.randrange(10**9)
        return [
            (False, f'{_HOST} api[2211]: {level} payload={{"order":{order},"items":[{items}]}}')
        ]

    # - rendering ------------------------------------------------------------------------------
    def render(self, burst: Burst) -> bytes:
        """Stamp printk lines with the rising clock; a burst shares one line-end style."""
        eol = "\r\n" if self.rng.random() < 0.25 else "\n"
        out = []
        for printk, text in burst:
            self.clock_us += int(self.rng.expovariate(1 / 40_000))  # ~25 lines a second
            if printk:
                secs, micros = divmod(self.clock_us, 1_000_000)
                text = f"[{secs:5d}.{micros:06d}] {text}"
            out.append(text + eol)
        return "".join(out).encode()


# -- assembling the file --------------------------------------------------------------------------
@dataclass
class Manifest:
    seed: int
    size_bytes: int = 0
    lines: int = 0
    captures: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    reboots: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "size_bytes": self.size_bytes,
            "lines": self.lines,
            "expected_crashes": len(self.crashes),
            "expected_reboots": len(self.reboots),
            "captures": self.captures,
            "crashes": self.crashes,
            "reboots": self.reboots,
        }


def capture_order(captures: list[Capture], rng: random.Random) -> Iterator[Capture]:
    """Every capture in turn, reshuffled each round, so all kinds appear and counts balance."""
    while True:
        batch = list(captures)
        rng.shuffle(batch)
        yield from batch


class LogWriter:
    """Buffered output that keeps the byte and line counts the manifest needs."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._buf: list[bytes] = []
        self._buffered = 0
        self.size = 0
        self.lines = 0

    def write(self, chunk: bytes) -> None:
        self._buf.append(chunk)
        self._buffered += len(chunk)
        self.size += len(chunk)
        self.lines += chunk.count(b"\n")
        if self._buffered >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        self._out.write(b"".join(self._buf))
        self._buf.clear()
        self._buffered = 0


def embed(writer: LogWriter, filler: Filler, cap: Capture, manifest: Manifest, expect_boot: bool):
    """Splice one capture in at the current clock and record what a reader should find in it."""
    first = writer.lines + 1
    filler.clock_us += 30_000_000  # firmware and boot loader time: the capture starts later
    writer.write(shift_timestamps(cap.data, filler.clock_us))
    manifest.captures.append({"name": cap.name, "first_line": first, "last_line": writer.lines})
    for start, end in cap.crashes:
        manifest.crashes.append(
            {"capture": cap.name, "start_line": first + start - 1, "end_line": first + end - 1}
        )
    if not expect_boot:
        manifest.reboots.append({"capture": cap.name, "line": first})
    filler.clock_us += cap.last_us + 1_000_000  # a second of silence after the capture


def build(out_path: Path, size: int, seed: int, crash_every: int) -> Manifest:
    rng = random.Random(seed)
    filler = Filler(random.Random(rng.getrandbits(64)))
    order = capture_order(load_captures(qemu_corpus()), random.Random(rng.getrandbits(64)))
    manifest = Manifest(seed=seed)
    expect_boot = False  # the log opens on a running server: its first boot is a surprise
    with out_path.open("wb") as out:
        writer = LogWriter(out)
        next_capture_at = crash_every // 2
        last_capture_line = 0
        while writer.size < size:
            if writer.size >= next_capture_at and writer.lines - last_capture_line >= MIN_GAP_LINES:
                cap = next(order)
                embed(writer, filler, cap, manifest, expect_boot)
                expect_boot = cap.orderly_end
                last_capture_line = writer.lines
                # Jitter the spacing so captures do not line up with read chunks.
                next_capture_at = writer.size + int(crash_every * rng.uniform(0.75, 1.25))
                continue
            writer.write(filler.render(filler.burst()))
        writer.flush()
        manifest.size_bytes, manifest.lines = writer.size, writer.lines
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the log to write (its manifest goes beside it)")
    ap.add_argument("--size-mb", type=float, required=True, help="at least this many MiB")
    ap.add_argument("--seed", type=int, default=1, help="same seed, same bytes (default 1)")
    ap.add_argument(
        "--crash-every-kb",
        type=int,
        default=1024,
        help="splice a real capture in about every this many KiB (default 1024)",
    )
    args = ap.parse_args(argv)
    size = int(args.size_mb * MIB)
    manifest = build(args.out, size, args.seed, max(1, args.crash_every_kb) * 1024)
    manifest_path(args.out).write_text(json.dumps(manifest.to_dict(), indent=1) + "\n")
    print(
        f"wrote {args.out}: {manifest.size_bytes / MIB:.1f} MiB, {manifest.lines:,} lines, "
        f"{len(manifest.captures)} real captures embedded with {len(manifest.crashes)} real "
        f"crashes and {len(manifest.reboots)} unexpected reboots (seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
