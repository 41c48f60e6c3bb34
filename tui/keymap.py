"""Every crashcart command with its key, as data: the bindings, the leader dispatch, the help
screen and the command palette are all built from this one table."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from tui.keys import LEADER_LABEL


@dataclass(frozen=True, slots=True)
class Command:
    action: str  # the App's action_<name>
    key: str  # Textual key name
    shown: str  # how the key is written for people
    title: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("help", "question_mark", "?", "Help", "every key, this screen"),
    Command("quit", "q", "q", "Quit", "close every console; recordings are flushed"),
    Command("sysrq", "b", "b", "BREAK / SysRq", "send BREAK, or BREAK + a Magic SysRq letter"),
    Command(
        "capture",
        "s",
        "s",
        "Capture screen",
        "save the screen and the recording so far under captures/",
    ),
    Command(
        "save_elsewhere",
        "w",
        "w",
        "Save elsewhere",
        "when the recording disk fails: write what memory holds, and record on, in another folder",
    ),
    Command("toggle_panel", "k", "k", "Crash panel", "show or hide the crash panel"),
    Command(
        "logs",
        "l",
        "l",
        "Logs",
        "scan a log file, folder or mounted root (/mnt) for what came before the crash",
    ),
    Command(
        "hardware",
        "h",
        "h",
        "Hardware",
        "run the hardware checks here or on the target over ssh; saved to the incident",
    ),
    Command(
        "runbook",
        "m",
        "m",
        "Runbook",
        "guided mitigation for the selected crash: exact commands, typed or run once confirmed",
    ),
    Command(
        "export_report",
        "e",
        "e",
        "Export report",
        "write the selected crash's incident as ticket.md and ticket.html",
    ),
    Command("scrollback", "left_square_bracket", "[", "Scrollback", "the whole session's lines"),
    Command("search", "slash", "/", "Search", "search the scrollback (then n / N)"),
    Command("jump_crash", "c", "c", "Jump to crash", "scrollback at the selected crash's header"),
    Command("next_console", "t", "t", "Next console", "switch to the next console tab"),
    Command("pause", "space", "space", "Pause / resume", "pause or resume a replay"),
    Command("faster", "plus", "+", "Replay faster", "double the replay speed"),
    Command("slower", "minus", "-", "Replay slower", "halve the replay speed"),
    Command(
        "seek_crash",
        "greater_than_sign",
        ">",
        "Seek to next crash",
        "replay at full speed until the next crash starts",
    ),
    Command("command_palette", "p", "p", "Command palette", "search every command by name"),
)

BY_KEY = {c.key: c for c in COMMANDS}
BY_CHARACTER = {c.shown: c for c in COMMANDS if len(c.shown) == 1}


def command_for(key: str, character: str | None) -> Command | None:
    """The command a key names (after the leader, or directly on a read-only console)."""
    if character and character in BY_CHARACTER:
        return BY_CHARACTER[character]
    return BY_KEY.get(key)


def app_bindings() -> list[Binding]:
    """Bindings for when keys are not going to a box (a replay, the scrollback)."""
    return [Binding(c.key, c.action, c.title, show=c.action in _IN_FOOTER) for c in COMMANDS] + [
        Binding("ctrl+p", "command_palette", "palette", show=False)
    ]


_IN_FOOTER = {"help", "quit", "sysrq", "capture", "scrollback", "pause", "seek_crash"}

HELP_EXTRA: tuple[tuple[str, str], ...] = (
    (
        f"{LEADER_LABEL} then a key",
        "on a live console every key goes to the box; the leader "
        "makes the next key a crashcart command",
    ),
    (f"{LEADER_LABEL} {LEADER_LABEL}", "send a literal Ctrl-] to the box"),
    ("Ctrl-Q", "quit, from anywhere"),
    ("Ctrl-P", "command palette (on a replay; on a live console: leader p)"),
    ("scrollback: / n N", "search, next and previous match"),
    ("scrollback: c C", "next and previous crash header"),
    ("scrollback: g G, PgUp PgDn", "top, bottom (follows new lines), page"),
    ("scrollback: Esc", "back to the live screen"),
)
