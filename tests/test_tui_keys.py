"""Tests for tui.keys: Textual key events to the bytes an xterm sends.

The expected sequences follow xterm's ctlseqs, section "PC-Style Function Keys": CSI/SS3 cursor
keys (SS3 under DECCKM), SS3 P..S for F1-F4, CSI n ~ for the editing keys and F5-F12, and the
modifier parameter m = 1 + shift(1) + alt(2) + ctrl(4), written CSI 1;m X or CSI n;m ~.
Ctrl+character follows Xlib's XLookupString rule, which xterm uses unless modifyOtherKeys is on.
"""

from __future__ import annotations

import pytest
from textual import constants, events
from textual._xterm_parser import XTermParser

from tui.keys import LEADER_KEY, LEADER_LABEL, encode_key

ESC = b"\x1b"
CSI = b"\x1b["
SS3 = b"\x1bO"


@pytest.fixture(autouse=True)
def _kitty_parsing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # TEXTUAL_DISABLE_KITTY_KEY in the environment would switch Textual to its legacy table, which
    # names modified keys differently. Pin the default that operators run with.
    monkeypatch.setattr(constants, "DISABLE_KITTY_KEY", False)


def parse_keys(data: str) -> list[events.Key]:
    """Return the Key events Textual's own driver parser makes from the bytes of one keypress."""
    parser = XTermParser()
    # Feeding "" ends the input. The parser then settles a pending ESC (as Escape, or as Alt on the
    # next key) at once instead of waiting ESCDELAY.
    messages = [*parser.feed(data), *parser.feed("")]
    return [message for message in messages if isinstance(message, events.Key)]


XTERM_CASES: list[tuple[str, str | None, bool, bytes]] = [
    # (event.key, event.character, application_cursor, expected bytes)
    # Text keys send their UTF-8.
    ("a", "a", False, b"a"),
    ("A", "A", False, b"A"),
    ("space", " ", False, b" "),
    ("shift+space", " ", False, b" "),
    ("full_stop", ".", False, b"."),
    ("é", "é", False, "é".encode()),
    ("euro_sign", "€", False, "€".encode()),
    ("+", "+", False, b"+"),
    ("decimal", None, False, b"."),
    # Enter, Tab, Backspace, Escape.
    ("enter", "\r", False, b"\r"),
    ("enter", None, False, b"\r"),
    ("shift+enter", None, False, b"\r"),
    ("ctrl+enter", None, False, b"\r"),
    ("tab", "\t", False, b"\t"),
    ("ctrl+tab", None, False, b"\t"),
    ("shift+tab", None, False, CSI + b"Z"),
    ("ctrl+shift+tab", None, False, CSI + b"Z"),
    ("backspace", "\x7f", False, b"\x7f"),
    # Terminals that send BS for Backspace arrive with character "\x08". The box gets DEL anyway,
    # because that is what Linux's `stty erase` expects.
    ("backspace", "\x08", False, b"\x7f"),
    ("shift+backspace", None, False, b"\x7f"),
    ("ctrl+backspace", None, False, b"\x08"),
    ("escape", "\x1b", False, ESC),
    ("escape", None, False, ESC),
    ("shift+escape", None, False, ESC),
    # Ctrl+letter is the C0 control byte. Legacy terminals give it as the character; kitty gives
    # no character.
    ("ctrl+a", "\x01", False, b"\x01"),
    ("ctrl+a", None, False, b"\x01"),
    ("ctrl+shift+a", None, False, b"\x01"),
    ("ctrl+c", "\x03", False, b"\x03"),
    ("ctrl+h", None, False, b"\x08"),
    ("ctrl+i", None, False, b"\t"),
    ("ctrl+j", "\n", False, b"\n"),
    ("ctrl+m", None, False, b"\r"),
    ("ctrl+z", None, False, b"\x1a"),
    # Ctrl+@ / Ctrl+Space are NUL, and Ctrl+[ \ ] ^ _ are 0x1b..0x1f (Textual's names).
    ("ctrl+@", "\x00", False, b"\x00"),
    ("ctrl+at", None, False, b"\x00"),
    ("ctrl+space", None, False, b"\x00"),
    ("ctrl+left_square_bracket", None, False, b"\x1b"),
    ("ctrl+backslash", "\x1c", False, b"\x1c"),
    ("ctrl+right_square_bracket", "\x1d", False, b"\x1d"),
    ("ctrl+circumflex_accent", "\x1e", False, b"\x1e"),
    ("ctrl+underscore", "\x1f", False, b"\x1f"),
    # The VT220 digit row: Ctrl+2 NUL, Ctrl+3..7 ESC..US, Ctrl+8 DEL, Ctrl+/ US.
    ("ctrl+2", None, False, b"\x00"),
    ("ctrl+3", None, False, b"\x1b"),
    ("ctrl+6", None, False, b"\x1e"),
    ("ctrl+shift+6", None, False, b"\x1e"),
    ("ctrl+7", None, False, b"\x1f"),
    ("ctrl+8", None, False, b"\x7f"),
    ("ctrl+slash", None, False, b"\x1f"),
    # Alt puts ESC before the key's bytes (metaSendsEscape).
    ("alt+x", "x", False, ESC + b"x"),
    ("alt+x", None, False, ESC + b"x"),
    ("alt+shift+x", "X", False, ESC + b"X"),
    ("alt+shift+x", None, False, ESC + b"X"),
    ("meta+x", None, False, ESC + b"x"),
    ("alt+full_stop", None, False, ESC + b"."),
    ("alt+space", None, False, ESC + b" "),
    ("alt+ctrl+a", None, False, ESC + b"\x01"),
    ("alt+enter", None, False, ESC + b"\r"),
    ("alt+tab", None, False, ESC + b"\t"),
    ("alt+backspace", None, False, ESC + b"\x7f"),
    ("alt+escape", None, False, ESC + ESC),
    # Cursor keys: CSI, or SS3 under DECCKM.
    ("up", None, False, CSI + b"A"),
    ("down", None, False, CSI + b"B"),
    ("right", None, False, CSI + b"C"),
    ("left", None, False, CSI + b"D"),
    ("home", None, False, CSI + b"H"),
    ("end", None, False, CSI + b"F"),
    ("kp_begin", None, False, CSI + b"E"),
    ("up", None, True, SS3 + b"A"),
    ("down", None, True, SS3 + b"B"),
    ("right", None, True, SS3 + b"C"),
    ("left", None, True, SS3 + b"D"),
    ("home", None, True, SS3 + b"H"),
    ("end", None, True, SS3 + b"F"),
    ("kp_begin", None, True, SS3 + b"E"),
    # A modified cursor key is CSI 1;m X, with or without DECCKM.
    ("shift+up", None, False, CSI + b"1;2A"),
    ("shift+up", None, True, CSI + b"1;2A"),
    ("alt+up", None, False, CSI + b"1;3A"),
    ("alt+shift+up", None, False, CSI + b"1;4A"),
    ("ctrl+left", None, False, CSI + b"1;5D"),
    ("ctrl+right", None, True, CSI + b"1;5C"),
    ("ctrl+shift+right", None, False, CSI + b"1;6C"),
    ("alt+ctrl+up", None, False, CSI + b"1;7A"),
    ("alt+ctrl+shift+down", None, False, CSI + b"1;8B"),
    ("meta+left", None, False, CSI + b"1;3D"),
    ("ctrl+home", None, False, CSI + b"1;5H"),
    ("shift+end", None, False, CSI + b"1;2F"),
    # Editing keys: CSI n ~ and CSI n;m ~. DECCKM does not change them.
    ("insert", None, False, CSI + b"2~"),
    ("delete", None, False, CSI + b"3~"),
    ("delete", None, True, CSI + b"3~"),
    ("pageup", None, False, CSI + b"5~"),
    ("pagedown", None, False, CSI + b"6~"),
    ("alt+insert", None, False, CSI + b"2;3~"),
    ("ctrl+delete", None, False, CSI + b"3;5~"),
    ("shift+pageup", None, False, CSI + b"5;2~"),
    ("ctrl+shift+pagedown", None, False, CSI + b"6;6~"),
    # F1-F4: SS3 P..S (DECCKM does not change them), or CSI 1;m P..S when modified.
    ("f1", None, False, SS3 + b"P"),
    ("f2", None, False, SS3 + b"Q"),
    ("f3", None, False, SS3 + b"R"),
    ("f4", None, False, SS3 + b"S"),
    ("f1", None, True, SS3 + b"P"),
    ("shift+f1", None, False, CSI + b"1;2P"),
    ("alt+f3", None, False, CSI + b"1;3R"),
    ("ctrl+f4", None, False, CSI + b"1;5S"),
    # F5-F12: CSI 15~ 17~ 18~ 19~ 20~ 21~ 23~ 24~, with ;m when modified.
    ("f5", None, False, CSI + b"15~"),
    ("f6", None, False, CSI + b"17~"),
    ("f7", None, False, CSI + b"18~"),
    ("f8", None, False, CSI + b"19~"),
    ("f9", None, False, CSI + b"20~"),
    ("f10", None, False, CSI + b"21~"),
    ("f11", None, False, CSI + b"23~"),
    ("f12", None, False, CSI + b"24~"),
    ("shift+f5", None, False, CSI + b"15;2~"),
    ("alt+f10", None, False, CSI + b"21;3~"),
    ("ctrl+f12", None, False, CSI + b"24;5~"),
    # F13-F24 go out as xterm's Shift+F1-F12.
    ("f13", None, False, CSI + b"1;2P"),
    ("f17", None, False, CSI + b"15;2~"),
    ("f24", None, False, CSI + b"24;2~"),
    ("ctrl+f13", None, False, CSI + b"1;6P"),
]


@pytest.mark.parametrize(
    ("key", "character", "application_cursor", "expected"),
    XTERM_CASES,
    ids=[f"{key}{'-app' if app else ''}-{char!r}" for key, char, app, _ in XTERM_CASES],
)
def test_xterm_sequences(
    key: str, character: str | None, application_cursor: bool, expected: bytes
) -> None:
    assert encode_key(key, character, application_cursor=application_cursor) == expected


@pytest.mark.parametrize(
    ("key", "character"),
    [
        # Bare modifiers and lock keys: Textual reports them under the kitty protocol, but a
        # terminal sends nothing for them.
        ("left_shift", None),
        ("right_control", None),
        ("caps_lock", None),
        ("num_lock", None),
        ("scroll_lock", None),
        ("print_screen", None),
        ("pause", None),
        ("menu", None),
        ("media_play", None),
        ("raise_volume", None),
        ("f25", None),
        # Super and hyper combinations are host shortcuts.
        ("super+a", None),
        ("super+up", None),
        ("hyper+f1", None),
        # Ctrl+key with no control byte. xterm would send the bare "1"; the encoder drops it
        # rather than quietly type a digit on the box.
        ("ctrl+1", None),
        ("ctrl+minus", None),
        ("ctrl+shift+minus", None),
        # Shifted punctuation without the terminal's text depends on the layout, so no guess.
        ("alt+shift+1", None),
        # Unicode aliases of control characters must not be typed as text.
        ("null", None),
        ("line_feed", None),
        # Malformed or unknown names.
        ("", None),
        ("ctrl+", None),
        ("bogus+a", None),
        ("<ignore>", "\x1b[E"),
    ],
)
def test_keys_without_terminal_encoding(key: str, character: str | None) -> None:
    assert encode_key(key, character) is None


def test_leader_is_textual_name_for_ctrl_right_bracket() -> None:
    assert LEADER_KEY == "ctrl+right_square_bracket"
    assert LEADER_LABEL == "Ctrl-]"
    # A legacy terminal sends GS (0x1d); a kitty-protocol terminal sends CSI 93;5u.
    assert [key.key for key in parse_keys("\x1d")] == [LEADER_KEY]
    assert [key.key for key in parse_keys("\x1b[93;5u")] == [LEADER_KEY]
    assert encode_key(LEADER_KEY, None) == b"\x1d"


def _xterm_keypresses() -> list[tuple[str, bool]]:
    """Return the bytes an xterm sends for a wide set of keys, with the DECCKM state that made
    them. Each should come back unchanged after Textual's parser and encode_key."""
    presses: list[tuple[str, bool]] = []
    # Every printable ASCII character, and some that are not ASCII.
    presses += [(chr(code), False) for code in range(0x20, 0x7F)]
    presses += [("é", False), ("€", False), ("日", False), ("ß", False)]
    # C0 controls typed with Ctrl, including Enter (CR), Tab (HT), Ctrl+J (LF) and Escape. BS is
    # excluded: Textual calls it Backspace, which goes out as DEL (see test_textual_folds).
    presses += [(chr(code), False) for code in range(0x00, 0x20) if code != 0x08]
    presses += [("\x7f", False), ("\x1b[Z", False)]
    # Alt+letter is ESC + letter. Textual reads ESC b and ESC f as iTerm's word motions, so those
    # two are pinned in test_textual_folds instead.
    presses += [("\x1b" + letter, False) for letter in "acdeghijklmnopqrstuvwxyz"]
    presses += [("\x1b" + letter, False) for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    modifiers = range(2, 9)
    for final in "ABCDHFE":
        presses.append((f"\x1b[{final}", False))
        presses += [(f"\x1b[1;{m}{final}", False) for m in modifiers]
    presses += [(f"\x1bO{final}", True) for final in "ABCDHF"]
    for final in "PQRS":
        presses.append((f"\x1bO{final}", False))
        # Modified F3 (CSI 1;m R) looks like a cursor position report, so Textual cannot read it.
        if final != "R":
            presses += [(f"\x1b[1;{m}{final}", False) for m in modifiers]
    for number in (2, 3, 5, 6, 15, 17, 18, 19, 20, 21, 23, 24):
        presses.append((f"\x1b[{number}~", False))
        presses += [(f"\x1b[{number};{m}~", False) for m in modifiers]
    return presses


@pytest.mark.parametrize(("sent", "application_cursor"), _xterm_keypresses(), ids=repr)
def test_round_trip_through_textual_parser(sent: str, application_cursor: bool) -> None:
    keys = parse_keys(sent)
    assert len(keys) == 1, keys
    (key,) = keys
    encoded = encode_key(key.key, key.character, application_cursor=application_cursor)
    assert encoded == sent.encode(), (key.key, key.character)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # These pin where Textual's legacy decoding loses information, so that a Textual upgrade
        # changing any of them is noticed. Each shows what the box receives after the loss.
        ("\x08", b"\x7f"),  # BS becomes "backspace".
        ("\x1bb", CSI + b"1;5D"),  # Alt+b becomes "ctrl+left" (iTerm word motion).
        ("\x1bf", CSI + b"1;5C"),  # Alt+f becomes "ctrl+right".
        ("\x1b\x7f", b"\x17"),  # Alt+Backspace becomes "ctrl+w".
        ("\x1b\t", CSI + b"Z"),  # Alt+Tab becomes "shift+tab" (Linux console).
        ("\x1b.", b"."),  # Alt is dropped for punctuation...
        ("\x1b\r", b"\r"),  # ...for Enter...
        ("\x1b ", b" "),  # ...for Space...
        ("\x1b\x01", b"\x01"),  # ...and for Ctrl combinations.
        ("\x1b1", "¡".encode()),  # Alt+digit becomes a macOS Option character.
    ],
    ids=repr,
)
def test_textual_folds(sent: str, expected: bytes) -> None:
    keys = parse_keys(sent)
    assert len(keys) == 1, keys
    assert encode_key(keys[0].key, keys[0].character) == expected


def test_modified_f3_is_read_as_cursor_position_report() -> None:
    # xterm's Shift/Ctrl+F3 (CSI 1;2R, CSI 1;5R) have the same shape as a cursor position report.
    # Textual reads them as one and produces no key, so these keys never reach the encoder.
    assert parse_keys("\x1b[1;5R") == []


# The Ctrl byte Xlib gives each printable ASCII character: letters and @[\]^_`{|}~ are masked to
# 0x00-0x1f, and the digit row follows the VT220 (2 NUL, 3-7 ESC..US, 8 DEL, / US).
_CTRL_PUNCTUATION = {
    " ": 0x00,
    "2": 0x00,
    "3": 0x1B,
    "4": 0x1C,
    "5": 0x1D,
    "6": 0x1E,
    "7": 0x1F,
    "8": 0x7F,
    "/": 0x1F,
}


def _xlib_ctrl(char: str) -> bytes | None:
    if 0x40 <= ord(char) < 0x7F:
        return bytes([ord(char) & 0x1F])
    control = _CTRL_PUNCTUATION.get(char)
    return None if control is None else bytes([control])


ASCII = [chr(code) for code in range(0x20, 0x7F)]


@pytest.mark.parametrize("char", ASCII, ids=repr)
def test_kitty_alt_char_translates_to_esc_prefix(char: str) -> None:
    # A kitty-protocol terminal reports Alt+key as CSI codepoint;3u and sends no text, so the
    # encoder must recover the character from Textual's name for it ("alt+full_stop" and so on).
    (key,) = parse_keys(f"\x1b[{ord(char)};3u")
    assert key.character is None
    assert encode_key(key.key, key.character) == ESC + char.encode()


@pytest.mark.parametrize("char", ASCII, ids=repr)
def test_kitty_ctrl_char_translates_to_control_byte(char: str) -> None:
    (key,) = parse_keys(f"\x1b[{ord(char)};5u")
    assert encode_key(key.key, key.character) == _xlib_ctrl(char)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("\x1b[97;;97u", b"a"),  # Plain key with its text (Textual asks for associated text).
        ("\x1b[97;2;65u", b"A"),
        ("\x1b[97;4u", ESC + b"A"),  # Alt+Shift+a.
        ("\x1b[97;6u", b"\x01"),  # Ctrl+Shift+a.
        ("\x1b[27u", ESC),
        ("\x1b[13u", b"\r"),
        ("\x1b[9u", b"\t"),
        ("\x1b[127u", b"\x7f"),
        ("\x1b[9;2u", CSI + b"Z"),
        ("\x1b[127;5u", b"\x08"),
        ("\x1b[127;3u", ESC + b"\x7f"),
        ("\x1b[13;3u", ESC + b"\r"),
        ("\x1b[27;3u", ESC + ESC),
        ("\x1b[32;5u", b"\x00"),  # Ctrl+Space.
        ("\x1b[57376u", CSI + b"1;2P"),  # F13.
        ("\x1b[57399;;48u", b"0"),  # Keypad 0.
        ("\x1b[57409;;46u", b"."),  # Keypad decimal.
        ("\x1b[57414u", b"\r"),  # Keypad Enter.
        ("\x1b[57417u", CSI + b"D"),  # Keypad Left.
        ("\x1b[57441u", None),  # Left Shift on its own.
        ("\x1b[57358u", None),  # Caps Lock.
        ("\x1b[57428u", None),  # Media Play.
        ("\x1b[1;9A", None),  # Textual reads modifier bit 8 as super.
    ],
    ids=repr,
)
def test_kitty_keys_translate_to_xterm(sent: str, expected: bytes | None) -> None:
    (key,) = parse_keys(sent)
    assert encode_key(key.key, key.character) == expected
