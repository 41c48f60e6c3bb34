"""The help screen: every key, built from the same table as the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keymap import COMMANDS, HELP_EXTRA
from tui.keys import LEADER_LABEL


def help_table() -> Table:
    table = Table(box=None, expand=True, show_header=True, header_style="bold")
    table.add_column("live console", style="bold cyan", no_wrap=True)
    table.add_column("replay", style="bold cyan", no_wrap=True)
    table.add_column("command")
    for command in COMMANDS:
        table.add_row(
            f"{LEADER_LABEL} {command.shown}",
            command.shown,
            Text.assemble((command.title, "bold"), " — ", command.help),
        )
    return table


def extra_table() -> Table:
    table = Table(box=None, expand=True, show_header=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for keys, meaning in HELP_EXTRA:
        table.add_row(keys, meaning)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    HelpScreen Static { height: auto; }
    HelpScreen .title { text-style: bold; margin-bottom: 1; }
    HelpScreen .gap { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(
                "crashcart — keys. On a live console every key goes to the box; "
                f"{LEADER_LABEL} first makes the next key a crashcart command.",
                classes="title",
            )
            yield Static(help_table())
            yield Static(extra_table(), classes="gap")
            yield Static("Esc closes this screen.", classes="gap")

    def action_close(self) -> None:
        self.dismiss(None)
