"""`crashcart report INCIDENT [--format md|json|html]`: an incident folder, ready for a ticket.

`add_parser(commands)` adds the subcommand to the CLI's subparsers and `run(args)` runs it. The
rendering is imported only when the command runs, so `crashcart --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

FORMATS = ("md", "json", "html")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `report` to `commands` (the object `add_subparsers()` returned)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="render an incident folder for a ticket (Markdown, JSON or HTML)",
        description=(
            "Render everything known about one incident: the crash (report.json), the screen "
            "when it completed, the carved crash block, log hits and timeline (logs.json), "
            "hardware verdicts (hardware.json) and the runbook steps done (runbook.json). "
            "Console text is stripped of terminal escapes and, in HTML, escaped."
        ),
    )
    parser.add_argument("incident", metavar="INCIDENT", help="an incident folder")
    parser.add_argument(
        "--format", choices=FORMATS, default="md", help="output format (default: md)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the report on stdout; InputError (exit 2 in the CLI) for a bad folder."""
    from crashcart.report_render import load_incident, render

    incident = load_incident(Path(args.incident))
    sys.stdout.write(render(incident, args.format))
    sys.stdout.flush()
    return 0
