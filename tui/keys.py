"""Turn Textual key events into the bytes a real xterm would send to the remote program.

The operator types into a remote serial console through crashcart, so each key the app does not
keep for itself has to reach the box as a terminal would have sent it. A shell, vi, less or a BIOS
setup screen understands those byte sequences, not Textual's key names.

References: xterm's ctlseqs, section "PC-Style Function Keys" (cursor, editing and function keys
and their modifier parameter), and Xlib's XLookupString (xterm takes its Ctrl+character rule from
there).

Textual reports keys in two ways, depending on the operator's own terminal, and both reach this
module:

- legacy terminals: Textual decodes raw bytes. Ctrl+letter comes with its control byte as
  `character`, and Alt+letter comes as "alt+x" with character "x".
- terminals that speak the kitty keyboard protocol (Textual 8 asks for it): combinations come as
  names only, e.g. "ctrl+a" or "alt+full_stop", with character None.

So the encoder works from the key name. It uses `character` only as the text of a plain key,
because that text already has shift and the keyboard layout applied.
"""

from __future__ import annotations

import unicodedata
from typing import Final

LEADER_KEY: Final = "ctrl+right_square_bracket"
"""Textual's name for Ctrl-]. The legacy byte 0x1d and kitty's CSI 93;5u both arrive as this name,
and it is telnet's traditional escape key, so operators already expect it to leave the session."""

LEADER_LABEL: Final = "Ctrl-]"

_ESC: Final = b"\x1b"
_CSI: Final = b"\x1b["
_SS3: Final = b"\x1bO"

# Keys sent as CSI <final>. With DECCKM (application cursor mode) on they are SS3 <final> instead,
# and with a modifier they are CSI 1;m <final>. xterm sends SS3 H/F for Home/End under DECCKM as
# well. kp_begin is keypad 5 with NumLock off.
_CURSOR_KEYS: Final[dict[str, bytes]] = {
    "up": b"A",
    "down": b"B",
    "right": b"C",
    "left": b"D",
    "home": b"H",
    "end": b"F",
    "kp_begin": b"E",
}

# F1-F4 keep the VT100 PF1-PF4 form SS3 P..S whatever DECCKM says. With a modifier they are
# CSI 1;m P..S.
_PF_KEYS: Final[dict[str, bytes]] = {"f1": b"P", "f2": b"Q", "f3": b"R", "f4": b"S"}

# VT220-style keys: CSI n ~, or CSI n;m ~ with a modifier. The gaps in the function key numbers
# (16, 22) come from the DEC keyboard layout.
_TILDE_KEYS: Final[dict[str, int]] = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}

# Bits of xterm's modifier parameter (m = 1 + bits). Textual's "meta" is kitty's Meta key, which
# operators use the way xterm users use Alt, so it is encoded as Alt. Super and hyper are not in
# the table: they are host shortcuts with no standard terminal encoding, and forwarding them would
# type keys the operator did not mean for the box.
_MODIFIER_BITS: Final[dict[str, int]] = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}
_SHIFT: Final = 1
_ALT: Final = 2
_CTRL: Final = 4

# Textual renames some Unicode character names (textual.keys.KEY_NAME_REPLACEMENTS). The copy
# here keeps the encoder independent of Textual internals. The round-trip tests check that the
# two agree.
_TEXTUAL_RENAMES: Final[dict[str, str]] = {
    "solidus": "slash",
    "reverse_solidus": "backslash",
    "commercial_at": "at",
    "hyphen_minus": "minus",
    "plus_sign": "plus",
    "low_line": "underscore",
}

# With the kitty protocol, keypad keys arrive under their own names. A key with a modifier comes
# without its text, so the text has to be recovered from the name.
_KEYPAD_TEXT: Final[dict[str, str]] = {
    "decimal": ".",
    "divide": "/",
    "multiply": "*",
    "subtract": "-",
    "add": "+",
    "equal": "=",
    "separator": ",",
}


def _textual_name(char: str) -> str:
    """Return the name Textual gives the key that types `char` (mirrors its _character_to_key)."""
    if char.isalnum():
        return char
    name = unicodedata.name(char, char).lower().replace("-", "_").replace(" ", "_")
    return _TEXTUAL_RENAMES.get(name, name)


# An exact table for ASCII. Names such as "less_than_sign" lost a hyphen when Textual built them,
# so unicodedata.lookup cannot reverse them.
_ASCII_BY_NAME: Final[dict[str, str]] = {_textual_name(chr(c)): chr(c) for c in range(0x20, 0x7F)}


def _char_for_name(name: str) -> str | None:
    """Return the character a Textual key name stands for, or None for a non-character key."""
    if len(name) == 1:
        return name
    known = _ASCII_BY_NAME.get(name) or _KEYPAD_TEXT.get(name)
    if known is not None:
        return known
    try:
        char = unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return None
    # lookup() also accepts aliases such as "ESCAPE" or "NULL". Keep only exact inverses of
    # Textual's naming, so that a special key never gets typed as a control character.
    if len(char) == 1 and char.isprintable() and _textual_name(char) == name:
        return char
    return None


def _control_byte(char: str) -> int | None:
    """Return the byte xterm sends for Ctrl+`char`: XLookupString's rule, which xterm keeps when
    modifyOtherKeys is off (the default).

    Ctrl+2 is NUL, Ctrl+3..7 are ESC through US and Ctrl+8 is DEL, as on a VT220 keyboard.
    Characters the rule leaves unchanged return None rather than xterm's bare character, so that
    Ctrl+1 does not quietly type a "1" on the box.
    """
    code = ord(char)
    if 0x40 <= code < 0x7F or char == " ":
        return code & 0x1F
    if char == "2":
        return 0x00
    if "3" <= char <= "7":
        return code - ord("3") + 0x1B
    if char == "8":
        return 0x7F
    if char == "/":
        return 0x1F
    return None


def _split_key(key: str) -> tuple[int, str] | None:
    """Split "ctrl+shift+up" into (modifier bits, "up"). Return None for unknown modifiers."""
    head, sep, base = key.rpartition("+")
    if not base:
        if not sep:
            return None
        # A trailing "+" is the plus key itself ("+" or "ctrl++"). Textual calls it "plus", but
        # a hand-built binding can still spell it this way.
        head, base = head.removesuffix("+"), "+"
    bits = 0
    for modifier in head.split("+") if head else ():
        bit = _MODIFIER_BITS.get(modifier)
        if bit is None:
            return None
        bits |= bit
    return bits, base


def _text_key(base: str, character: str | None, bits: int) -> bytes | None:
    """Return the bytes for a key that types a character, without any Alt prefix."""
    if bits & _CTRL:
        # Legacy terminals put the control byte in `character`; the kitty protocol gives no
        # character. Working from the name gives the same result in both cases.
        char = _char_for_name(base)
        control = None if char is None else _control_byte(char)
        return None if control is None else bytes([control])
    if character and character.isprintable():
        # The terminal already applied shift and the keyboard layout, so use its text.
        return character.encode("utf-8")
    char = _char_for_name(base)
    if char is None:
        return None
    if bits & _SHIFT and char != " ":
        # Without the terminal's text, only letters can be shifted. Shift+1 depends on the
        # keyboard layout, and guessing could type the wrong thing on a production box.
        if not char.isalpha():
            return None
        char = char.upper()
    return char.encode("utf-8")


def encode_key(
    key: str, character: str | None, *, application_cursor: bool = False
) -> bytes | None:
    """Return the bytes an xterm would send for Textual key `key` (`event.key`), or None.

    `character` is `event.character`. `application_cursor` is the remote's DECCKM state (set with
    CSI ?1h), which full-screen programs such as vi and less turn on. None means the key has no
    terminal encoding (a bare modifier, Caps Lock, a media key or a Super combination), and the
    caller drops it.
    """
    parsed = _split_key(key)
    if parsed is None:
        return None
    bits, base = parsed

    # A kitty-protocol terminal can report F13-F24 on their own. On the wire xterm gives them the
    # Shift+F1-F12 sequences (CSI 1;2P ... CSI 24;2~), and Textual's own table reads those back as
    # F13-F24.
    if base[:1] == "f" and base[1:].isdigit() and 13 <= int(base[1:]) <= 24:
        base = f"f{int(base[1:]) - 12}"
        bits |= _SHIFT

    modifier = 1 + bits
    if base in _CURSOR_KEYS:
        final = _CURSOR_KEYS[base]
        if modifier == 1:
            return (_SS3 if application_cursor else _CSI) + final
        # xterm ignores DECCKM for a modified cursor key.
        return _CSI + b"1;%d" % modifier + final
    if base in _PF_KEYS:
        final = _PF_KEYS[base]
        return _SS3 + final if modifier == 1 else _CSI + b"1;%d" % modifier + final
    if base in _TILDE_KEYS:
        number = _TILDE_KEYS[base]
        suffix = b"" if modifier == 1 else b";%d" % modifier
        return _CSI + b"%d" % number + suffix + b"~"

    # Below this point xterm has no modifier parameter. Alt adds an ESC prefix (metaSendsEscape,
    # which bash, emacs and readline expect), and Shift and Ctrl change the byte itself or do
    # nothing.
    prefix = _ESC if bits & _ALT else b""
    if base in ("enter", "return"):
        return prefix + b"\r"
    if base == "tab":
        return prefix + (_CSI + b"Z" if bits & _SHIFT else b"\t")
    if base == "backspace":
        # xterm sends DEL for Backspace (what `stty erase` expects on Linux). Ctrl+Backspace
        # sends BS, as most terminals do, and some readline and editor setups bind it to erase a
        # word.
        return prefix + (b"\x08" if bits & _CTRL else b"\x7f")
    if base == "escape":
        return prefix + _ESC
    text = _text_key(base, character, bits)
    return None if text is None else prefix + text
