"""Kernel console-stream analysis: the streaming crash parser and its data tables."""

from crashcart.kernel.parser import (
    CrashCompleted,
    CrashGrew,
    CrashParser,
    CrashStarted,
    ParserEvent,
    analyze_bytes,
    analyze_lines,
    analyze_text,
)
from crashcart.kernel.report import CrashReport, Frame, TaintFlag

__all__ = [
    "CrashCompleted",
    "CrashGrew",
    "CrashParser",
    "CrashReport",
    "CrashStarted",
    "Frame",
    "ParserEvent",
    "TaintFlag",
    "analyze_bytes",
    "analyze_lines",
    "analyze_text",
]
