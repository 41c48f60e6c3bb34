"""Make console-derived text safe to show on the operator's terminal.

Bytes from a panicking server are hostile input: a stray (or crafted) escape sequence written to
the operator's terminal can retitle it, move the cursor, redefine keys or hide text. Anything that
came from a console is passed through `clean()` before it is printed, and printed as Rich `Text`
(never as markup), so neither the terminal nor Rich interprets it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["BIDI_CONTROLS", "clean"]

# ESC-introduced sequences (7-bit) and their 8-bit C1 forms (CSI 0x9b, OSC 0x9d, DCS 0x90 ...):
# CSI: parameters, intermediates, final byte; OSC/DCS/SOS/PM/APC: a string up to BEL or ST;
# anything else: ESC plus intermediates and one final byte.
_ESCAPES = re.compile(
    r"""
    (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?
  | \x1b [\x20-\x2f]* [\x30-\x7e]?
    """,
    re.VERBOSE,
)

# Unicode bidirectional controls can reorder what the operator reads ("Trojan Source").
BIDI_CONTROLS = _BIDI = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _visible(ch: str) -> bool:
    if ch in _BIDI:
        return False
    # Cc: C0/C1 controls and DEL; Cs: lone surrogates (undecodable bytes) cannot be encoded.
    return unicodedata.category(ch) not in ("Cc", "Cs")


def clean(text: str) -> str:
    """Strip escape sequences and control characters; tabs become a space."""
    text = _ESCAPES.sub("", text).replace("\t", " ")
    if text.isprintable():  # the common case: nothing left to check character by character
        return text
    return "".join(ch for ch in text if _visible(ch))
