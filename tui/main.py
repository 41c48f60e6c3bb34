"""Starting the TUI from the command line: connectors are built (and a password asked for)
before the screen goes full-screen, so every usage error is a plain one-line message."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from connectors import ConnectorError
from crashcart.recorder import make_private_dir
from crashcart.recording import InputError
from crashcart.watch import WatchOptions, build_connectors


def run_tui(
    urls: list[str],
    *,
    record_dir: str,
    password_file: str | None = None,
    takeover: bool = False,
    speed: float | None = None,
    logs_path: str = "/var/log",
    fallback: str | None = None,
) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the console TUI needs a terminal (for scripts: crashcart watch/analyze)")
    options = WatchOptions(
        urls=tuple(urls),
        record_dir=Path(record_dir),
        password_file=password_file,
        takeover=takeover,
        speed=speed,
    )
    try:
        connectors = build_connectors(options)
    except ConnectorError as exc:
        raise InputError(str(exc)) from None
    try:
        make_private_dir(Path(record_dir))
    except OSError as exc:
        raise InputError(f"{record_dir}: {exc.strerror or exc}") from None
    # Imported late: Textual takes a moment to import, and usage errors should not wait for it.
    from tui.app import CrashcartApp

    app = CrashcartApp(
        connectors,
        Path(record_dir),
        logs_path=logs_path,
        fallback=Path(fallback) if fallback else None,
    )
    app.run()
    return app.return_code if app.return_code is not None else 0


def main() -> None:  # `python -m tui` for development
    from crashcart.cli import main as cli_main

    sys.exit(cli_main(["attach", *sys.argv[1:]] if len(sys.argv) > 1 else ["demo"]))


if __name__ == "__main__" and os.environ.get("CRASHCART_DEV"):
    main()
