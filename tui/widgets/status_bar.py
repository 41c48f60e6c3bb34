"""The status line of one console: where it is attached, whether it is heard, what is kept."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from crashcart.safetext import clean


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


_STATE_STYLES = {
    "connected": "bold green",
    "reconnecting": "bold yellow",
    "disconnected": "bold red",
    "closed": "dim",
    "ended": "dim",
    "connecting": "yellow",
    "failed": "bold red",
}


@dataclass
class ConsoleStatus:
    transport: str
    target: str
    state: str = "connecting"
    gaps: int = 0
    bytes_in: int = 0
    recording: str = ""  # the console's recording folder
    recording_size: int = 0
    crashes: int = 0
    replay: str = ""  # "▶ 1x", "⏸ paused", "⏩ to next crash"
    note: str = ""  # the last error or detail
    recording_failed: str = ""  # why the recording disk failed, while it has
    held: int = 0  # bytes held in memory meanwhile


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def show(self, status: ConsoleStatus) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{status.transport} ", style="bold")
        text.append(clean(status.target)[-40:])
        text.append("  ")
        text.append(status.state, style=_STATE_STYLES.get(status.state, ""))
        if status.gaps:
            text.append(f" ({status.gaps} gap{'s' if status.gaps > 1 else ''})", style="yellow")
        if status.replay:
            text.append(f"  {status.replay}", style="cyan")
        crash_style = "bold white on red" if status.crashes else "dim"
        text.append("  ")
        text.append(f" {status.crashes} crash{'es' if status.crashes != 1 else ''} ", crash_style)
        text.append(f"  in {human_bytes(status.bytes_in)}")
        if status.recording:
            # The console's folder only: file names carry a time stamp and would crowd out the
            # crash count; the full path is in every incident toast and in the crash panel.
            name = status.recording.rstrip("/").rsplit("/", 1)[-1] + "/"
            text.append("  rec ", style="red")
            text.append(f"{clean(name)} ({human_bytes(status.recording_size)})")
        if status.recording_failed:
            text.append("  ")
            text.append(
                f" REC FAILED: {clean(status.recording_failed)[:30]}, "
                f"{human_bytes(status.held)} in memory ",
                style="bold white on red",
            )
        if status.note:
            text.append(f"  {clean(status.note)[:60]}", style="italic")
        self.update(text)
