"""Taint flags, as documented in the kernel's Documentation/admin-guide/tainted-kernels.rst.

The kernel prints them two ways: the classic fixed-width string in the `CPU:` line
(`Tainted: G           OE`), where each position is one bit and a space means "not set", and,
since 6.10, a separate `Tainted: [W]=WARN, [O]=OOT_MODULE` line. Both decode to letters here.
"""

from __future__ import annotations

import re

from crashcart.kernel.report import TaintFlag

# bit, letter, meaning. 'G' is bit 0 unset: the kernel prints G when no proprietary module is
# loaded, P when one is. Keep the order of the kernel's table.
TAINT_TABLE: tuple[tuple[int, str, str], ...] = (
    (0, "P", "proprietary module was loaded"),
    (1, "F", "module was force loaded"),
    (2, "S", "kernel running on an out of specification system"),
    (3, "R", "module was force unloaded"),
    (4, "M", "processor reported a Machine Check Exception (MCE)"),
    (5, "B", "bad page referenced or some unexpected page flags"),
    (6, "U", "taint requested by userspace application"),
    (7, "D", "kernel died recently, i.e. there was an OOPS or BUG"),
    (8, "A", "an ACPI table was overridden by user"),
    (9, "W", "kernel issued warning"),
    (10, "C", "staging driver was loaded"),
    (11, "I", "workaround for bug in platform firmware applied"),
    (12, "O", "externally-built (out-of-tree) module was loaded"),
    (13, "E", "unsigned module was loaded"),
    (14, "L", "soft lockup occurred"),
    (15, "K", "kernel has been live patched"),
    (16, "X", "auxiliary taint, defined for and used by distros"),
    (17, "T", "kernel was built with the struct randomization plugin"),
    (18, "N", "an in-kernel test has been run"),
    (19, "J", "userspace used a mutating debug operation in fwctl"),
)

MEANING_BY_LETTER: dict[str, str] = {letter: meaning for _, letter, meaning in TAINT_TABLE}

# The 6.10+ line: "Tainted: [W]=WARN, [O]=OOT_MODULE"
_BRACKETED = re.compile(r"\[([A-Z])\]=\w+")


def decode_taint(flags: str | None) -> list[TaintFlag]:
    """Decode a taint string (`G           OE`, `POE`, or `[O]=OOT_MODULE, ...`) to flags.

    'G' decodes to nothing: it means "no proprietary module". Unknown letters are kept with an
    honest meaning rather than dropped, so a newer kernel's flag still shows up in the report.
    """
    if not flags:
        return []
    letters = _BRACKETED.findall(flags) or [c for c in flags if c.isalpha()]
    out: list[TaintFlag] = []
    seen: set[str] = set()
    for letter in letters:
        if letter == "G" or letter in seen:
            continue
        seen.add(letter)
        out.append(TaintFlag(letter, MEANING_BY_LETTER.get(letter, "unknown taint flag")))
    return out


def taint_letters(flags: str | None) -> str:
    """The set letters in the kernel's order, e.g. 'POE' (G omitted)."""
    return "".join(f.letter for f in decode_taint(flags))
