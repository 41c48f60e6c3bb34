"""The BREAK and Magic SysRq palette.

On a serial line the kernel reads a BREAK followed, within 5 seconds, by a letter as a SysRq
command (Documentation/admin-guide/sysrq.rst). The letters are data here; the ones that kill,
reboot or power off the box ask first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True, slots=True)
class SysrqCommand:
    letter: str
    name: str
    destructive: bool = False


SYSRQ_COMMANDS: tuple[SysrqCommand, ...] = (
    SysrqCommand("h", "help: the kernel prints the SysRq letters it knows"),
    SysrqCommand("l", "backtrace of all active CPUs"),
    SysrqCommand("w", "tasks in uninterruptible (blocked) state"),
    SysrqCommand("t", "all tasks and their stacks"),
    SysrqCommand("m", "memory information"),
    SysrqCommand("p", "registers and flags of this CPU"),
    SysrqCommand("d", "all locks held (lockdep)"),
    SysrqCommand("q", "armed hrtimers and clockevents"),
    SysrqCommand("s", "emergency sync of all filesystems"),
    SysrqCommand("u", "remount all filesystems read-only"),
    SysrqCommand("f", "call the OOM killer once"),
    SysrqCommand("9", "console log level 9: print everything"),
    SysrqCommand("e", "SIGTERM to every process except init", destructive=True),
    SysrqCommand("i", "SIGKILL to every process except init", destructive=True),
    SysrqCommand("c", "crash the kernel now (kdump takes a vmcore if loaded)", destructive=True),
    SysrqCommand("b", "reboot at once, without sync or unmount", destructive=True),
    SysrqCommand("o", "power off at once", destructive=True),
)
DESTRUCTIVE = frozenset(c.letter for c in SYSRQ_COMMANDS if c.destructive)
BREAK_ONLY = "break"


class SysrqScreen(ModalScreen[str | None]):
    """Pick BREAK alone or BREAK + a SysRq letter; dismisses with "break", a letter, or None."""

    DEFAULT_CSS = """
    SysrqScreen { align: center middle; }
    SysrqScreen > Vertical {
        width: 72; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    SysrqScreen OptionList { height: auto; max-height: 24; }
    SysrqScreen .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "cancel")]

    def __init__(self, console: str, can_break: bool, reason: str = "") -> None:
        super().__init__()
        self.console = console
        self.can_break = can_break
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]BREAK / Magic SysRq[/b] → {self.console}")
            if not self.can_break:
                yield Label(f"[red]{self.reason}[/red]")
            options = [Option("BREAK only", id=BREAK_ONLY, disabled=not self.can_break)]
            for command in SYSRQ_COMMANDS:
                mark = "[red]![/red]" if command.destructive else " "
                options.append(
                    Option(
                        f"{mark} {command.letter}  {command.name}",
                        id=command.letter,
                        disabled=not self.can_break,
                    )
                )
            yield OptionList(*options)
            yield Label(
                "Sends BREAK, then the letter within the kernel's 5 s window. "
                "! asks before sending. Escape cancels.",
                classes="hint",
            )

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        # Typing the letter picks it, as on a real console.
        if (
            self.can_break
            and event.character
            and any(c.letter == event.character for c in SYSRQ_COMMANDS)
        ):
            event.stop()
            self.dismiss(event.character)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
