"""The `crashcart` command line (argparse).

Exit codes (DESIGN.md): 0 success, 2 usage or input error, with a one-line `crashcart: error: ...`
on stderr and never a traceback; 130 on Ctrl-C; 141 when stdout is closed early (`| head`).
An unexpected internal failure also prints one line (exit 1); CRASHCART_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from typing import NoReturn

from crashcart import __version__
from crashcart.recording import InputError, load_console_bytes
from crashcart.safetext import clean

__all__ = ["EXIT_INPUT", "EXIT_OK", "main"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE

DEMO_CAPTURE = "gpf_list_poison_panic.cast"


class UsageError(Exception):
    """A command line that argparse rejected; the message is one line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block and exits itself; route its complaint through main() so
    # every error looks the same (one line, exit 2).
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="crashcart",
        description="A console for panicking Linux servers: find and explain kernel crashes.",
    )
    parser.add_argument("--version", action="version", version=f"crashcart {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    analyze = commands.add_parser(
        "analyze",
        help="report the kernel crashes in a console log or recording",
        description=(
            "Find the kernel crashes (oops, panic, BUG, WARNING, lockups, ...) in a console log "
            "(raw bytes) or an asciicast .cast recording, and report each in order."
        ),
    )
    analyze.add_argument("file", metavar="FILE", help="a .log, a .cast recording, or - for stdin")
    analyze.add_argument(
        "--json", action="store_true", help='print {"crashes": [...]} (see docs/contracts.md)'
    )

    watch = commands.add_parser(
        "watch",
        help="record many consoles headless; one line per crash",
        description=(
            "Attach to every console URL (serial device, rfc2217://, socket://, telnet://, "
            "ipmi://user@bmc, netconsole://ip:port, cmd:COMMAND, or a .cast/.log to replay), "
            "record each losslessly under --record, and write an incident folder per crash."
        ),
    )
    _console_options(
        watch,
        takeover="deactivate a stale IPMI SOL session that holds the console "
        "(confirms the takeover)",
    )
    watch.add_argument("--record", metavar="DIR", required=True, help="where recordings go")
    watch.add_argument(
        "--exit-on-crash", action="store_true", help="exit 3 once the first incident is written"
    )
    watch.add_argument("--json", action="store_true", help="JSON lines instead of text")
    watch.add_argument(
        "--on-crash", metavar="CMD", help="run CMD INCIDENT_DIR for each crash (no shell)"
    )
    watch.add_argument("--speed", type=float, help="replay speed for recordings (0 = no pacing)")
    _fallback_option(watch)

    attach = commands.add_parser(
        "attach",
        help="the console TUI: attach to one or more consoles (one tab each)",
        description=(
            "Attach to consoles (serial device, rfc2217://, socket://, telnet://, "
            "ipmi://user@bmc, netconsole://ip:port, cmd:COMMAND), show them live with crashes "
            "highlighted and explained, and record everything under --record."
        ),
    )
    _console_options(attach, takeover="deactivate a stale IPMI SOL session without asking")
    _tui_options(attach)

    replay = commands.add_parser(
        "replay",
        help="the console TUI on a recording (.cast or .log)",
        description="Play a recording back in the console TUI, as it happened (or faster).",
    )
    replay.add_argument("file", metavar="FILE", help="a .cast or .log recording")
    _tui_options(replay)
    replay.add_argument(
        "--speed", type=float, default=1.0, help="playback speed (0 = as fast as possible)"
    )

    # Each adds its own subcommand; their heavy imports happen only when they run.
    from crashcart import cli_hwcheck, cli_logs, cli_report

    cli_logs.add_parser(commands)
    cli_hwcheck.add_parser(commands)
    cli_report.add_parser(commands)

    demo = commands.add_parser(
        "demo",
        help="the console TUI on the bundled recording of a real kernel panic",
        description=(
            "The console TUI, replaying in real time the bundled recording of a real Debian "
            "kernel booting under QEMU and dying on its serial console (general protection "
            "fault -> panic)."
        ),
    )
    _tui_options(demo)
    demo.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1)")
    return parser


def _console_options(command: argparse.ArgumentParser, *, takeover: str) -> None:
    """What `watch` and `attach` both take: the consoles, and how to log in to a BMC."""
    command.add_argument("urls", metavar="URL", nargs="+", help="console URLs (see DESIGN.md)")
    command.add_argument(
        "--password-file", metavar="FILE", help="IPMI password (else $CRASHCART_IPMI_PASSWORD)"
    )
    command.add_argument("--takeover", action="store_true", help=takeover)


def _fallback_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--fallback",
        metavar="DIR",
        help="if the --record disk fails (full, I/O error), go on recording here "
        "(else the console is held in memory and the --record folder retried every 5 s)",
    )


def _tui_options(command: argparse.ArgumentParser) -> None:
    _fallback_option(command)
    command.add_argument(
        "--logs",
        metavar="PATH",
        default="/var/log",
        help="what the logs pane (l) scans first: a log, a folder or a mounted root such as "
        "/mnt (default /var/log)",
    )
    command.add_argument(
        "--record",
        metavar="DIR",
        help="where recordings, incidents and captures go "
        "(default $XDG_DATA_HOME/crashcart, i.e. ~/.local/share/crashcart)",
    )


def _analyze(data: bytes, as_json: bool) -> int:
    # Imported here so `--help`, `--version` and usage errors stay instant and do not depend on
    # the parser or Rich.
    from crashcart.kernel import analyze_bytes

    reports = analyze_bytes(data)
    if as_json:
        # ensure_ascii keeps console-derived control characters escaped (\u001b), so the JSON is
        # safe to print on a terminal.
        doc = {"crashes": [report.to_dict() for report in reports]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        from crashcart.textreport import count_lines, render_reports, stdout_console

        render_reports(stdout_console(), reports, count_lines(data))
    sys.stdout.flush()
    return EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from connectors import ConnectorError
    from crashcart.watch import WatchOptions, watch

    options = WatchOptions(
        urls=tuple(args.urls),
        record_dir=Path(args.record),
        exit_on_crash=args.exit_on_crash,
        json=args.json,
        on_crash=args.on_crash,
        password_file=args.password_file,
        takeover=args.takeover,
        speed=args.speed,
        fallback=Path(args.fallback) if args.fallback else None,
    )
    try:
        return asyncio.run(watch(options))
    except ConnectorError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"{args.record}: {exc.strerror or exc}") from None


def default_record_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "crashcart")


def demo_recording() -> str:
    demo = resources.files("crashcart") / "data" / "demo" / DEMO_CAPTURE
    path = str(demo)
    if not os.path.isfile(path):
        raise InputError(f"the bundled demo recording is missing: {path}")
    return path


def _tui(args: argparse.Namespace, urls: list[str]) -> int:
    from tui.main import run_tui  # the one place the core reaches up: the entry point

    return run_tui(
        urls,
        record_dir=args.record or default_record_dir(),
        password_file=getattr(args, "password_file", None),
        takeover=getattr(args, "takeover", False),
        speed=getattr(args, "speed", None),
        logs_path=args.logs,
        fallback=args.fallback,
    )


def _run(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "analyze":
        return _analyze(load_console_bytes(args.file), args.json)
    if args.command == "watch":
        return _watch(args)
    if args.command == "attach":
        return _tui(args, list(args.urls))
    if args.command == "replay":
        if not os.path.isfile(args.file):
            raise InputError(f"{args.file}: no such recording")
        return _tui(args, [args.file])
    if args.command in ("report", "logs", "hwcheck"):
        from crashcart import cli_hwcheck, cli_logs, cli_report

        runner = {"report": cli_report, "logs": cli_logs, "hwcheck": cli_hwcheck}[args.command]
        return runner.run(args)
    if args.command == "demo":
        return _tui(args, [demo_recording()])
    raise UsageError(f"unknown command {args.command!r}")  # unreachable: argparse checks choices


def _error(message: str) -> None:
    # One line, whatever the message holds (a file name can contain newlines or escapes).
    text = " ".join(clean(message).split())
    print(f"crashcart: error: {text}", file=sys.stderr)


def _silence_stdout() -> None:
    # After EPIPE, Python's own flush at exit would fail again and print a warning; point stdout
    # at /dev/null so the exit is quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script exits with it)."""
    if hasattr(sys.stdout, "reconfigure"):
        # A report must not die on a character the terminal's encoding lacks.
        sys.stdout.reconfigure(errors="replace")
    try:
        return _run(argv)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_INPUT
    except InputError as exc:
        _error(str(exc))
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except Exception as exc:
        if os.environ.get("CRASHCART_DEBUG") == "1":
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (CRASHCART_DEBUG=1 shows details)")
        return EXIT_INTERNAL
