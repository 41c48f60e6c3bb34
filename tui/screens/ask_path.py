"""Asks for a folder (where to save what a failed disk could not take); Esc cancels."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class AskPathScreen(ModalScreen[Path | None]):
    DEFAULT_CSS = """
    AskPathScreen { align: center middle; }
    AskPathScreen > Vertical {
        width: 80; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    AskPathScreen Input { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str, suggestion: Path) -> None:
        super().__init__()
        self.question = question
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Input(str(self.suggestion), id="path")

    def on_mount(self) -> None:
        path = self.query_one("#path", Input)
        path.cursor_blink = False  # a blinking cursor makes snapshots differ run to run
        path.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
