"""Stack frames: parsing the kernel's frame formats and normalising function names.

Frame formats seen on real consoles:
    x86_64 (4.x+)     `  func+0x1a/0x40 [module]`, `  ? func+0x1a/0x40` (unreliable)
    x86 (old)         ` [<ffffffff8105a2c0>] ? func+0x80/0xc0`
    symbolised        `  func+0x1a/0x40 mm/slub.c:123`,
                      `  __dump_stack lib/dump_stack.c:77 [inline]`
    arm64/riscv       ` func+0x1a/0x40 [module]` after `Call trace:`
    powerpc           `[c0000000012bfa10] [c000000000226a58] func+0x12/0x34 (unreliable)`
    arm32             `[<c0312c78>] (unwind_backtrace) from [<c030cb74>] (show_stack+0x10/0x14)`
"""

from __future__ import annotations

import re

from crashcart.kernel.report import Frame

_FUNC = r"[A-Za-z_$][\w.$]*"
_ADDR = r"(?:\[<?(?:0x)?[0-9a-fA-F]+>?\]\s*)"

FRAME_RE = re.compile(
    r"^\s*(?:\d+:\s*)?" + _ADDR + r"{0,2}"
    r"(?P<q>\?\s+)?" + _ADDR + r"?"
    r"(?P<func>" + _FUNC + r")"
    r"(?:\+(?P<off>0x[0-9a-fA-F]+)/(?P<size>0x[0-9a-fA-F]+))?"
    r"(?:\s+\[(?P<mod>[\w-]+)\])?"
    r"(?:\s+(?P<src>[\w./+-]+\.(?:c|h|S|rs|s):\d+)(?::\d+)?)?"
    r"(?P<inline>\s+\[inline\])?"
    r"(?P<unrel>\s+\(unreliable\))?"
    r"\s*$"
)
# arm32: "[<c0312c78>] (show_stack) from [<c030cb74>] (dump_stack+0x10/0x14)"
ARM32_FRAME_RE = re.compile(
    r"^\s*\[<[0-9a-f]+>\]\s+\((?P<func>" + _FUNC + r")(?:\+(?P<off>0x[0-9a-f]+)/"
    r"(?P<size>0x[0-9a-f]+))?\)(?:\s+from\s+\[<[0-9a-f]+>\]\s+\([^)]*\))?\s*(?:\[(?P<mod>[\w-]+)\])?\s*$"
)
# A location inside a text: "func+0x11/0x21 [mod]" anywhere (RIP lines, "at:" lines, headers).
# The look-behind anchors a search at word starts: without it a long word is retried from
# every character, which is quadratic on a line of noise.
LOCATION_RE = re.compile(
    r"(?<![\w.$])(?P<func>" + _FUNC + r")\+(?P<off>0x[0-9a-fA-F]+)/(?P<size>0x[0-9a-fA-F]+)"
    r"(?:\s+\[(?P<mod>[\w-]+)\])?"
)

_SUFFIX_RE = re.compile(
    r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv|localalias|clone)(?:\.\d+)*)+$"
)
# Words that the frame regex would accept but that are not functions (lines of prose).
_NOT_FUNCTIONS = frozenset({"Code", "RIP", "RSP", "Call", "Modules", "CPU", "Hardware"})


def normalize_function(name: str) -> str:
    """`crashme_recurse.isra.0` -> `crashme_recurse`; `foo.cold.12` -> `foo`."""
    return _SUFFIX_RE.sub("", name)


def parse_frame(body: str, section: str | None = None) -> Frame | None:
    """Parse one call-trace line; None if it is not a frame.

    A bare word is only a frame when it carries an offset or a source location, so that prose
    lines inside a trace ("Showing all locks held") are never mistaken for functions.
    """
    m = FRAME_RE.match(body)
    if m is None:
        m = ARM32_FRAME_RE.match(body)
        if m is None:
            return None
        return Frame(m["func"], m["off"], m["size"], m["mod"], True, None, section)
    func = m["func"]
    if func in _NOT_FUNCTIONS:
        return None
    if m["off"] is None and m["src"] is None:
        return None
    reliable = m["q"] is None and m["unrel"] is None
    return Frame(func, m["off"], m["size"], m["mod"], reliable, m["src"], section)


def parse_location(text: str) -> Frame | None:
    """The first `func+0xoff/0xsize [mod]` in a text, as a frame."""
    m = LOCATION_RE.search(text)
    if m is None:
        return None
    return Frame(m["func"], m["off"], m["size"], m["mod"])


def format_location(frame: Frame) -> str:
    out = frame.function
    if frame.offset and frame.size:
        out += f"+{frame.offset}/{frame.size}"
    if frame.module:
        out += f" [{frame.module}]"
    return out
