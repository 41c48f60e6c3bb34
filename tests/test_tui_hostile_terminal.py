"""Hostile console bytes neither crash the TUI nor reach the operator's real terminal.

A console log is generated in tmp_path (nothing binary is kept in the repo): the real boot, oops
and panic of the QEMU corpus's oops_null_panic.log, with attacks between the boot lines, inside
some oops lines (OOPS_SUFFIX) and again after the panic (the tail is what a fast replay draws):

- random bytes, 100 kB lines, floods of absolute and relative cursor moves;
- OSC 52 clipboard writes (base64 of CRASHCART-PWNED-CLIPBOARD) and queries, window and icon
  titles (CRASHCART-PWNED-TITLE), title reports, OSC 8 hyperlinks to crashcart-pwned.invalid;
- DCS, APC, PM and SOS strings (DECRQSS, XTGETTCAP, sixel, kitty graphics);
- huge repeat counts (`ESC[999999999b`, `ESC[99999999@`, `ESC[9999999L`...), resize requests
  (`ESC[8;200;400t`, DECCOLM `ESC[?3h`), resets, mode switches (mouse, alternate screen, bracketed
  paste, keyboard protocols), device queries;
- invalid UTF-8, raw 8-bit C1 controls, UTF-8-encoded C1 controls, C0 controls, bidi controls.

The real app (`crashcart replay HOSTILE.log --record DIR`) runs on a pseudo-terminal this test
owns (120x40, TERM=xterm-256color, its controlling tty); a reader thread keeps every byte the app
writes. It runs twice (module fixture): at `--speed 0`, where the live view fast-forwards bursts
and draws mostly the file's tail, and at `--speed PACED_SPEED`, a few kB per frame, so that the
emulator parses every attack. Once the incident is written the app is left to draw for 2 s, the
scrollback is opened (top, then end) and `q` `q` closes it and quits (Ctrl-Q if still alive).

Each run must find the one crash, keep drawing (status bar "ended", the file's last line on
screen), exit 0, record the file byte for byte, write incident files that are safe to print, and
write to its terminal only what Textual writes itself: every escape sequence is one of Textual's
(TEXTUAL_* below: textual/drivers/linux_driver.py, the compositor, OSC 22 pointer shapes, checked
against a clean run), no FORBIDDEN piece, no C0 control but CR/LF, no C1, no invalid UTF-8. Text
a terminal only draws (a DCS payload pyte shows as characters) is harmless and not checked.
`test_checker_flags_every_attack` shows those checks would catch each attack passed through.

Two problems these tests found are fixed: bidi controls reached the terminal through the
scrollback, and a CSI parameter longer than 4300 digits made pyte raise and stopped the view.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyte
import pytest

COLUMNS, ROWS = 120, 40
PACED_SPEED = 16.0  # a .log replays at 11520 B/s x speed: ~184 kB/s, a few kB per frame

CORPUS_LOG = "oops_null_panic.log"  # BUG: NULL pointer dereference -> Oops -> panic
CRASH_FUNCTION = "crashme_null_deref"
CRASH_KIND = "null_deref"
OOPS_FIRST = b"BUG: kernel NULL pointer dereference"
OOPS_LAST = b"---[ end Kernel panic"
END_MARKER = "crashcart-hostile-end-of-file"  # a plain last line: the live view must show it

CLIPBOARD = "CRASHCART-PWNED-CLIPBOARD"
CLIPBOARD_B64 = base64.b64encode(CLIPBOARD.encode()).decode()  # only ever inside an OSC 52
# Image payloads: pyte drops `ESC _` and draws what follows as text (harmless characters).
IMAGE_B64 = base64.b64encode(b"CRASHCART-PWNED-IMAGE").decode()
TITLE = "CRASHCART-PWNED-TITLE"
PWNED_HOST = "crashcart-pwned.invalid"
URL = f"http://{PWNED_HOST}/"
BIDI = "\u202e\u2066\u2069\u202c\u200f"
BIDI_LINE = "\u202e\u2066CRASHCART-BIDI\u2069\u202c \u200fright-to-left mark"
# Appended to some lines of the real oops: the crash must still be found, and what the panel and
# the incident files show of those lines must be clean too.
OOPS_SUFFIX = (
    b"\x1b]0;" + TITLE.encode() + b"\x07"
    + b"\x1b]8;;" + URL.encode() + b"\x1b\\x\x1b]8;;\x1b\\"
    + b"\x9b31m\xc2\x9b32m\x1bP+q544e\x1b\\\x1b[8;200;400t\x07"
)  # fmt: skip
OOPS_SUFFIXED = (b"CPU: ", b"RIP: 0010:", b"Call Trace:", b"Modules linked in:")


# -- the hostile log ----------------------------------------------------------------------------

ESC = b"\x1b"
CSI = b"\x1b["
OSC = b"\x1b]"
ST = b"\x1b\\"
BEL = b"\x07"


def compact_attacks() -> list[tuple[str, bytes]]:
    """Short attacks, each on its own line (so a fast-forward to a line start keeps them whole)."""
    return [
        ("osc52-clipboard-bel", OSC + b"52;c;" + CLIPBOARD_B64.encode() + BEL),
        ("osc52-clipboard-st", OSC + b"52;p;" + CLIPBOARD_B64.encode() + ST),
        ("osc52-query", OSC + b"52;c;?" + BEL),
        ("osc0-title", OSC + b"0;" + TITLE.encode() + BEL),
        ("osc1-icon", OSC + b"1;" + TITLE.encode() + b"-ICON" + ST),
        ("osc2-title", OSC + b"2;" + TITLE.encode() + ST),
        ("title-report", CSI + b"22;0t" + OSC + b"2;" + TITLE.encode() + BEL + CSI + b"21t"),
        ("osc8-link", OSC + b"8;;" + URL.encode() + ST + b"click me" + OSC + b"8;;" + ST),
        (
            "osc8-link-bel",
            OSC + b"8;id=x;" + URL.encode() + b"x" + BEL + b"link" + OSC + b"8;;\x07",
        ),
        (
            "osc-colours",
            OSC + b"4;1;rgb:ff/00/00" + BEL + OSC + b"10;?" + BEL + OSC + b"11;#000" + ST,
        ),
        ("osc7-cwd", OSC + b"7;file://" + PWNED_HOST.encode() + b"/etc" + BEL),
        (
            "osc1337-iterm",
            OSC + b"1337;File=name=cHduZWQ=;inline=1:" + IMAGE_B64.encode() + BEL,
        ),
        ("dcs-decrqss", ESC + b'P$q"p' + ST),
        ("dcs-xtgettcap", ESC + b"P+q544e" + ST),
        ("dcs-payload", ESC + b"PCRASHCART-PWNED-DCS" + ST),
        ("dcs-sixel", ESC + b"Pq#0;2;0;0;0#1!999999999~-" + ST),
        ("apc-kitty-graphics", ESC + b"_Gf=100,a=T;" + IMAGE_B64.encode() + ST),
        ("apc-payload", ESC + b"_CRASHCART-PWNED-APC" + ST),
        ("pm-payload", ESC + b"^CRASHCART-PWNED-PM" + ST),
        ("sos-payload", ESC + b"XCRASHCART-PWNED-SOS" + ST),
        ("repeat-b", b"x" + CSI + b"999999999b"),
        ("insert-chars", CSI + b"99999999@"),
        ("insert-lines", CSI + b"9999999L"),
        ("delete-lines", CSI + b"999999999M"),
        ("delete-chars", CSI + b"999999999P"),
        ("erase-chars", CSI + b"999999999X"),
        ("scroll-up-down", CSI + b"999999999S" + CSI + b"999999999T"),
        ("cursor-far", CSI + b"999999999;999999999H" + CSI + b"999999999A" + CSI + b"999999999C"),
        ("margins", CSI + b"999999999;999999999r" + CSI + b"r"),
        ("tabs", CSI + b"999999999I" + CSI + b"999999999Z" + CSI + b"3g"),
        ("many-params", CSI + b";".join([b"1"] * 5000) + b"m"),
        ("sgr-bad-colours", CSI + b"38;5;999999999;48;2;999999999;999999999;999999999m"),
        ("resize-8t", CSI + b"8;200;400t"),
        ("resize-4t", CSI + b"4;2000;4000t"),
        (
            "window-ops",
            CSI + b"9;1t" + CSI + b"10;1t" + CSI + b"3;0;0t" + CSI + b"2t" + CSI + b"14t",
        ),
        ("deccolm", CSI + b"?3h" + b"132 columns?" + CSI + b"?3l"),
        ("decscnm-reverse", CSI + b"?5h"),
        ("alt-screen", CSI + b"?1049h" + CSI + b"?47h" + CSI + b"?1047h"),
        ("mouse-modes", CSI + b"?1000h" + CSI + b"?1003h" + CSI + b"?1006h" + CSI + b"?9h"),
        ("paste-focus-sync", CSI + b"?2004h" + CSI + b"?1004h" + CSI + b"?2026h"),
        ("kitty-keyboard", CSI + b">31u" + CSI + b"=31;1u" + CSI + b"?u"),
        ("modify-other-keys", CSI + b">4;2m"),
        ("cursor-hide-style", CSI + b"?25l" + CSI + b"6 q" + CSI + b"?12h"),
        ("queries", CSI + b"6n" + CSI + b"5n" + CSI + b"c" + CSI + b">c" + CSI + b"=c"),
        ("decrqm", CSI + b"?2026$p" + CSI + b"4$p"),
        ("ris-reset", ESC + b"c"),
        ("decstr-soft-reset", CSI + b"!p"),
        ("decaln", ESC + b"#8"),
        (
            "charsets",
            ESC + b"(0lqqk" + ESC + b"(B" + ESC + b")0\x0eabc\x0f" + ESC + b"%@\x9bm" + ESC + b"%G",
        ),
        ("vt52", ESC + b"[?2l" + ESC + b"H" + ESC + b"<"),
        ("c1-8bit", b"\x9b2J\x9d0;CRASHCART-PWNED-C1-TITLE\x9c\x90CRASHCART-PWNED-C1-DCS\x9c\x9f"),
        ("c1-utf8", "\u009b31m\u009d2;CRASHCART-PWNED-C1U\u009c\u0090x\u009c\u0085".encode()),
        (
            "invalid-utf8",
            b"\xff\xfe\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\xf8\x88\x80\x80\x80",
        ),
        ("truncated-utf8", b"ab\xe2\x82"),
        ("c0-controls", bytes(range(0x00, 0x1B)).replace(b"\n", b"").replace(b"\r", b"") + b"\x7f"),
        ("bel-flood", BEL * 2000),
        ("can-sub-in-csi", CSI + b"1;\x18" + CSI + b"2\x1aJ"),
        ("lone-escapes", ESC + ESC + ESC + b"[" + ESC + b"P" + ESC + b"\\" + ESC),
        # Unicode bidirectional controls reorder what the operator reads ("Trojan Source").
        ("bidi", BIDI_LINE.encode()),
    ]


def big_attacks(rng: random.Random) -> list[tuple[str, bytes]]:
    """Bulky attacks (floods and huge lines)."""
    moves = b"".join(
        CSI + b"%d;%dH#" % (rng.randrange(1, 300), rng.randrange(1, 300)) for _ in range(8000)
    )
    relative = (CSI + b"A" + CSI + b"B" + CSI + b"C" + CSI + b"D" + ESC + b"7" + ESC + b"8") * 3000
    return [
        # Random bytes, then every string terminator (BEL, ST, CAN) so that an OSC or DCS the noise
        # happened to open is closed before the next attack, as a real console's next line would.
        ("random", rng.randbytes(48 * 1024) + BEL + ST + b"\x18"),
        ("line-100k", b"A" * 100_000),
        ("line-100k-mixed", (b"CRASHCART-LONG-LINE " * 5000)[:100_000]),
        ("line-100k-sgr", (CSI + b"1;31m" + b"R" + CSI + b"0m") * 9000),
        ("cursor-moves", moves),
        ("relative-moves", relative),
        ("wide-and-combining", ("\u4e00" * 5000 + "e" + "\u0301" * 2000).encode()),
        # An OSC left open across lines (closed by a BEL three lines later).
        ("osc-across-lines", OSC + b"2;" + TITLE.encode() + b" open\r\nline 2\r\nline 3\r\n" + BEL),
    ]


def kernel_sections(log: bytes) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """The corpus log as (boot lines, the oops through its end-of-panic line, what follows)."""
    lines = log.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if OOPS_FIRST in line)
    last = next(i for i, line in enumerate(lines) if OOPS_LAST in line)
    return lines[:first], lines[first : last + 1], lines[last + 1 :]


def hostile_log(corpus_log: bytes, seed: int = 20261126) -> bytes:
    """Boot lines with every attack between them, the real oops (some of its lines carrying
    OOPS_SUFFIX), then the short attacks again (the tail is what a fast replay draws), then
    END_MARKER."""
    rng = random.Random(seed)
    boot, oops, after = kernel_sections(corpus_log)
    attacks = big_attacks(rng) + compact_attacks()
    out = bytearray()
    step = max(1, len(boot) // len(attacks))
    for i, (name, payload) in enumerate(attacks):
        out += b"".join(boot[i * step : (i + 1) * step])
        out += b"<" + name.encode() + b">" + payload + b"\r\n"
    out += b"".join(boot[len(attacks) * step :])
    for line in oops:
        if any(key in line for key in OOPS_SUFFIXED):
            line = line.rstrip(b"\r\n") + OOPS_SUFFIX + b"\r\n"
        out += line
    out += b"".join(after)
    for name, payload in compact_attacks():
        out += b"<" + name.encode() + b">" + payload + b"\r\n"
    out += END_MARKER.encode() + b"\r\n"
    return bytes(out)


# -- running the app on a pseudo-terminal we own ------------------------------------------------


@dataclass
class PtyRun:
    """What one run of the app wrote to its terminal, and what it left on disk."""

    speed: float
    hostile: Path
    record: Path
    output: bytearray = field(default_factory=bytearray)
    marks: dict[str, int] = field(default_factory=dict)  # output length at each step
    times: dict[str, float] = field(default_factory=dict)  # seconds after launch
    status: int | None = None

    def screen(self, mark: str | None = None) -> list[str]:
        """The terminal's screen at `mark` (default: now), replaying the app's output into pyte."""
        screen = pyte.Screen(COLUMNS, ROWS)
        end = len(self.output) if mark is None else self.marks[mark]
        pyte.ByteStream(screen).feed(bytes(self.output[:end]))
        return [row.rstrip() for row in screen.display]


def crashcart_argv() -> list[str]:
    script = Path(sys.executable).with_name("crashcart")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "crashcart"]


def app_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TEXTUAL") and key not in {"COLUMNS", "LINES", "NO_COLOR", "TMUX"}
    }
    env.update(TERM="xterm-256color", XDG_DATA_HOME=str(home), COLORTERM="")
    return env


def _controlling_tty() -> None:  # in the child, after setsid (start_new_session)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A pty of ours: the app gets the slave as stdin, stdout and stderr (its controlling tty);
    a thread reads every byte it writes to the master."""

    def __init__(self, run: PtyRun) -> None:
        self.run = run
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.launched = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [
                    *crashcart_argv(),
                    "replay",
                    str(run.hostile),
                    "--speed",
                    f"{run.speed:g}",
                    "--record",
                    str(run.record),
                ],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=app_env(run.record.parent / "xdg"),
                cwd=run.record.parent,
                start_new_session=True,
                preexec_fn=_controlling_tty,
            )
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)
        self.reader = threading.Thread(target=self._read, name="pty reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError as exc:  # EIO: every slave descriptor is closed (the app exited)
                if exc.errno != errno.EIO:
                    raise
                return
            if not data:
                return
            self.run.output += data

    def now(self) -> float:
        return time.monotonic() - self.launched

    def mark(self, name: str) -> None:
        self.run.marks[name] = len(self.run.output)
        self.run.times[name] = self.now()

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:  # only the process group this test started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.reader.join(10)
        os.close(self.master)


def incident_report(record: Path) -> Path | None:
    return next(iter(sorted(record.glob("incidents/*/report.json"))), None)


def run_hostile_replay(run: PtyRun, incident_timeout: float = 90.0) -> PtyRun:
    """Launch, wait for the incident, look at the scrollback too, then quit with `q`."""
    term = Terminal(run)
    try:
        deadline = time.monotonic() + incident_timeout
        while incident_report(run.record) is None and time.monotonic() < deadline:
            if term.proc.poll() is not None:
                break
            time.sleep(0.05)
        term.mark("incident")
        if incident_report(run.record) is None:
            screen = "\n".join(run.screen())
            pytest.fail(
                f"no incident after {term.now():.1f} s (app exit status {term.proc.poll()}); "
                f"the terminal shows:\n{screen}"
            )
        time.sleep(2.0)  # the app keeps drawing: the panel fills in, the replay ends
        term.mark("live")
        # The scrollback draws every line itself (tui/ansi.py), not through pyte: its top (the
        # random bytes and the floods), then its end.
        term.type(b"[")
        time.sleep(1.0)
        term.mark("scrollback-top")
        term.type(b"G")
        time.sleep(1.0)
        term.mark("scrollback-end")
        term.type(b"q")  # closes the scrollback
        time.sleep(0.5)
        term.mark("quit")
        term.type(b"q")  # quits
        run.status = term.wait_exit(10)
        if run.status is None:
            term.type(b"\x11")  # Ctrl-Q quits from anywhere
            run.status = term.wait_exit(5)
        term.mark("exit")
    finally:
        term.close()
    return run


@pytest.fixture(scope="module", params=[0.0, PACED_SPEED], ids=["speed0", "paced"])
def hostile_run(
    request: pytest.FixtureRequest, qemu_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PtyRun]:
    work = tmp_path_factory.mktemp(f"hostile-{request.param:g}")
    hostile = work / "HOSTILE.log"
    hostile.write_bytes(hostile_log((qemu_corpus / CORPUS_LOG).read_bytes()))
    run = run_hostile_replay(PtyRun(request.param, hostile, work / "rec"))
    print(
        f"\n--speed {run.speed:g}: {hostile.stat().st_size} hostile bytes; incident at "
        f"{run.times['incident']:.2f} s after launch; exit status {run.status} "
        f"{run.times['exit'] - run.times['quit']:.2f} s after q; "
        f"{len(run.output)} bytes written to the terminal"
    )
    yield run


# -- what may reach the terminal ----------------------------------------------------------------

# Every escape sequence Textual writes in full-screen mode (textual/drivers/linux_driver.py, the
# compositor, App.set_pointer_shape): CSI with digits/';' and an optional private prefix, and OSC 22
# (pointer shape). Textual can also write OSC 52 (App.copy_to_clipboard) and OSC 8 (links), but only
# on purpose; nothing in this run asks for either, so here they can only come from the console.
_CSI = re.compile(
    rb"\x1b\[(?P<prefix>[?<>=]?)(?P<params>[0-9;:]*)(?P<inter>[ -/]*)(?P<final>[@-~])"
)
_OSC22 = re.compile(rb"\x1b\]22;[a-z-]*\x07")
TEXTUAL_CSI_FINALS = {"": set("mHJKABCD"), "?": {"h", "l", "$p"}, ">": {"u"}, "<": {"u"}}
TEXTUAL_PRIVATE_MODES = {7, 25, 1000, 1003, 1004, 1006, 1015, 1016, 1049, 2004, 2026, 2048}
# Pieces of the attacks that may not be in the output. The last two only ever travel inside an OSC
# (pyte consumes it whole), so they may not even be drawn. (Not a bare `ESC[8;`: Textual moves the
# cursor to row 8 with `ESC[8;<col>H`; a resize request ends in `t`.)
FORBIDDEN = {
    "OSC 52 clipboard": rb"\x1b\]52",
    "OSC 0/1/2 title": rb"\x1b\][012];",
    "OSC 8 hyperlink": rb"\x1b\]8;",
    "DCS": rb"\x1bP",
    "APC": rb"\x1b_",
    "PM": rb"\x1b\^",
    "SOS": rb"\x1bX",
    "window resize/move/report (CSI ... t)": rb"\x1b\[[0-9;]*t",
    "DECCOLM": rb"\x1b\[\?3[hl]",
    "RIS": rb"\x1bc",
    "DECALN": rb"\x1b#8",
    "hyperlink target": re.escape(PWNED_HOST.encode()),
    "clipboard payload": re.escape(CLIPBOARD_B64.encode()),
}


def escape_problems(output: bytes) -> list[str]:
    """Every escape sequence, control character or byte in `output` Textual would not write."""
    problems: list[str] = []
    try:
        text = output.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(
            f"invalid UTF-8 at {exc.start}: {output[max(0, exc.start - 20) : exc.end + 20]!r}"
        )
        text = output.decode("utf-8", "replace")
    c1 = sorted({f"U+{ord(ch):04X}" for ch in text if 0x80 <= ord(ch) < 0xA0})
    if c1:
        problems.append(f"C1 controls (encoded as UTF-8): {c1}")
    rest = bytearray()
    pos = 0
    while True:
        esc = output.find(b"\x1b", pos)
        rest += output[pos : len(output) if esc < 0 else esc]
        if esc < 0:
            break
        if match := _OSC22.match(output, esc):
            pos = match.end()
            continue
        match = _CSI.match(output, esc)
        if match is None:
            problems.append(f"escape Textual never writes: {output[esc : esc + 24]!r}")
            pos = esc + 1
            continue
        pos = match.end()
        prefix = match["prefix"].decode()
        final = (match["inter"] + match["final"]).decode()
        params = [p for p in re.split(rb"[;:]", match["params"]) if p]
        sequence = match.group().decode("ascii", "replace")
        if final not in TEXTUAL_CSI_FINALS.get(prefix, set()):
            problems.append(f"CSI Textual never writes: {sequence!r}")
        elif prefix == "?" and not {int(p) for p in params} <= TEXTUAL_PRIVATE_MODES:
            problems.append(f"private mode Textual never sets: {sequence!r}")
        elif any(len(p) > 5 for p in params) or len(params) > 16:
            problems.append(f"CSI with huge or too many parameters: {sequence[:40]!r}")
        elif final == "H" and not all(
            int(n) <= limit for n, limit in zip(params, (ROWS, COLUMNS), strict=False)
        ):
            problems.append(f"cursor move off the {COLUMNS}x{ROWS} screen: {sequence!r}")
    controls = sorted({f"0x{b:02x}" for b in rest if (b < 0x20 and b not in b"\r\n") or b == 0x7F})
    if controls:
        problems.append(f"control characters outside escape sequences: {controls}")
    return problems


def row_with(screen: list[str], *needles: str) -> str | None:
    return next((row for row in screen if all(n in row for n in needles)), None)


# -- the tests ----------------------------------------------------------------------------------


def test_hostile_replay_finds_the_crash_keeps_drawing_and_quits(hostile_run: PtyRun) -> None:
    run = hostile_run
    assert run.status == 0, f"exit status {run.status}: {bytes(run.output[-2000:])!r}"
    report = incident_report(run.record)
    assert report is not None
    assert f"-{CRASH_KIND}" in report.parent.name
    live = run.screen("live")
    text = "\n".join(live)
    assert "Crashes" in text and CRASH_FUNCTION in text, f"no crash panel:\n{text}"
    assert f"#1 {CRASH_KIND}" in text and "#2 " not in text, f"one crash, not more:\n{text}"
    status = row_with(live, "replay", "HOSTILE.log")
    assert status is not None and "ended" in status, f"status bar: {status}\n{text}"
    assert END_MARKER in text, f"the last line of the file is not on screen:\n{text}"
    top = "\n".join(run.screen("scrollback-top"))
    assert "SeaBIOS" in top, f"the scrollback does not start with the first line:\n{top}"
    end = "\n".join(run.screen("scrollback-end"))
    assert END_MARKER in end, f"the scrollback's end does not show the last line:\n{end}"
    assert b"Traceback" not in run.output


def test_hostile_replay_is_recorded_byte_for_byte(hostile_run: PtyRun) -> None:
    logs = [p for p in hostile_run.record.rglob("*.log") if "incidents" not in p.parts]
    assert len(logs) == 1, logs
    assert logs[0].read_bytes() == hostile_run.hostile.read_bytes()


def test_no_hostile_byte_reaches_the_terminal(hostile_run: PtyRun) -> None:
    output = bytes(hostile_run.output)
    # The check can fail: the app's own drawing is in there.
    assert b"Crashes" in output and b"crash" in output and CRASH_FUNCTION.encode() in output
    found = {what: m[0][:60] for what, rx in FORBIDDEN.items() if (m := re.search(rx, output))}
    assert not found, f"hostile pieces in the terminal output: {found}"
    problems = escape_problems(output)
    assert not problems, "\n".join(problems[:40])


def test_incident_files_are_safe_to_print(hostile_run: PtyRun) -> None:
    """What the operator `cat`s (screen.txt, oops.txt, report.md) holds no escape or control;
    report.json holds none in its strings. (console.log is the raw bytes, on purpose.)"""
    report = incident_report(hostile_run.record)
    assert report is not None
    folder = report.parent
    texts = {name: (folder / name).read_text("utf-8") for name in ("screen.txt", "oops.txt")}
    texts["report.md"] = (folder / "report.md").read_text("utf-8")

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for key, value in node.items():
                yield str(key)
                yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)

    texts["report.json"] = "\n".join(strings(json.loads(report.read_text("utf-8"))))
    assert CRASH_FUNCTION in texts["report.json"] and CRASH_FUNCTION in texts["oops.txt"]
    for name, text in texts.items():
        bad = sorted(
            {f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"}
        )
        assert not bad, f"{name} holds control characters {bad}"
        assert PWNED_HOST not in text and CLIPBOARD_B64 not in text, name


def test_bidi_controls_do_not_reach_the_terminal(hostile_run: PtyRun) -> None:
    output = bytes(hostile_run.output).decode("utf-8", "replace")
    assert "CRASHCART-BIDI" in output  # the scrollback's end shows the bidi line
    found = {f"U+{ord(c):04X}": output.count(c) for c in BIDI if c in output}
    assert not found, f"Unicode bidi controls written to the terminal: {found}"


def test_checker_flags_every_attack() -> None:
    """Each attack, had it been passed through as is, would fail the output checks above."""
    # Plain text, or only sequences Textual writes itself (SGR; modes Textual sets too).
    indistinguishable = {
        "line-100k",
        "line-100k-mixed",
        "wide-and-combining",
        "bidi",
        "line-100k-sgr",
        "paste-focus-sync",
    }
    attacks = big_attacks(random.Random(1)) + compact_attacks() + [("oops-suffix", OOPS_SUFFIX)]
    missed = [
        name
        for name, payload in attacks
        if name not in indistinguishable
        and not escape_problems(payload)
        and not any(re.search(rx, payload) for rx in FORBIDDEN.values())
    ]
    assert not missed, f"the checks would not notice these attacks: {missed}"
    assert not escape_problems(b"\x1b[?1049h\x1b[1;1H\x1b[38;5;80mok\x1b[0m\x1b]22;default\x07\r\n")


def test_overlong_csi_parameter_does_not_kill_the_tui(qemu_corpus: Path, tmp_path: Path) -> None:
    """A CSI parameter of more than 4300 digits: int() refuses it (Python's integer string
    limit) inside pyte's parser, which must not take the live view or the session down."""
    corpus = (qemu_corpus / CORPUS_LOG).read_bytes()
    hostile = tmp_path / "HOSTILE.log"
    # At the end of the file, so that even a fast-forwarding view feeds it to pyte.
    hostile.write_bytes(corpus + CSI + b"9" * 5000 + b"b\r\n" + END_MARKER.encode() + b"\r\n")
    run = run_hostile_replay(PtyRun(0.0, hostile, tmp_path / "rec"), incident_timeout=20)
    assert run.status == 0, f"exit status {run.status}"
    assert b"Traceback" not in run.output
    assert END_MARKER in "\n".join(run.screen("live"))
