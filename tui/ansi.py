"""A recorded console line as styled text: SGR colours kept, every other escape dropped.

Rich's own ANSI decoder is not used on purpose: it turns `ESC ]8` into a hyperlink style, and
Textual would then write a hyperlink escape to the operator's terminal. Here only SGR (colours
and attributes) survives; everything else the box sent is removed, and control characters with
it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text

from crashcart.safetext import BIDI_CONTROLS

_SEQUENCE = re.compile(
    r"\x1b\[(?P<sgr>[0-9;:]*)m"  # SGR: kept
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # other CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, clipboard, hyperlinks)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # other escapes, and a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
# C0, DEL, C1, and the Unicode bidi controls ("Trojan Source": they reorder what is read).
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")
_BASIC = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]
# Attribute state: (fg, bg, bold, dim, italic, underline, reverse)
_PLAIN: tuple[str | None, str | None, bool, bool, bool, bool, bool] = (
    None, None, False, False, False, False, False,
)  # fmt: skip


def _extended(codes: list[int], i: int) -> tuple[str | None, int]:
    """38;5;n or 38;2;r;g;b starting after the 38/48 at codes[i]; returns colour and next i."""
    if i + 1 < len(codes) and codes[i + 1] == 5 and i + 2 < len(codes):
        return f"color({min(codes[i + 2], 255)})", i + 3
    if i + 1 < len(codes) and codes[i + 1] == 2 and i + 4 < len(codes):
        r, g, b = (min(c, 255) for c in codes[i + 2 : i + 5])
        return f"#{r:02x}{g:02x}{b:02x}", i + 5
    return None, len(codes)


# SGR codes that set attributes, as data: code -> the (state index, value) pairs it sets.
_FG, _BG, _BOLD, _DIM, _ITALIC, _UNDERLINE, _REVERSE = range(7)
_SGR: dict[int, tuple[tuple[int, object], ...]] = {
    1: ((_BOLD, True),),
    2: ((_DIM, True),),
    3: ((_ITALIC, True),),
    4: ((_UNDERLINE, True),),
    7: ((_REVERSE, True),),
    22: ((_BOLD, False), (_DIM, False)),
    23: ((_ITALIC, False),),
    24: ((_UNDERLINE, False),),
    27: ((_REVERSE, False),),
    39: ((_FG, None),),
    49: ((_BG, None),),
    **{30 + k: ((_FG, name),) for k, name in enumerate(_BASIC)},
    **{40 + k: ((_BG, name),) for k, name in enumerate(_BASIC)},
    **{90 + k: ((_FG, f"bright_{name}"),) for k, name in enumerate(_BASIC)},
    **{100 + k: ((_BG, f"bright_{name}"),) for k, name in enumerate(_BASIC)},
}


def _apply_sgr(state: tuple, params: str) -> tuple:  # type: ignore[type-arg]
    try:
        codes = [int(p) if p else 0 for p in re.split("[;:]", params)[:32]] if params else [0]
    except ValueError:
        return state
    attrs = list(state)
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            attrs = list(_PLAIN)
        elif code in (38, 48):
            colour, i = _extended(codes, i - 1)
            attrs[_FG if code == 38 else _BG] = colour
        else:
            for index, value in _SGR.get(code, ()):
                attrs[index] = value
    return tuple(attrs)


@lru_cache(maxsize=512)
def _style(state: tuple) -> Style:  # type: ignore[type-arg]
    fg, bg, bold, dim, italic, underline, reverse = state
    return Style(
        color=Color.parse(fg) if fg else None,
        bgcolor=Color.parse(bg) if bg else None,
        bold=bold or None,
        dim=dim or None,
        italic=italic or None,
        underline=underline or None,
        reverse=reverse or None,
    )


def styled_line(raw: bytes) -> Text:
    """One recorded line (no newline) as Rich Text with only safe characters and SGR styles."""
    decoded = raw.decode("utf-8", "replace")
    if "\r" in decoded:
        # A console redraws a line with CR (progress meters); what stayed is after the last CR.
        decoded = decoded.rstrip("\r").rsplit("\r", 1)[-1]
    decoded = decoded.replace("\t", "    ")
    text = Text(no_wrap=True, end="")
    if "\x1b" not in decoded and "\x9b" not in decoded:
        text.append(_CONTROLS.sub("", decoded))
        return text
    state = _PLAIN
    pos = 0
    for m in _SEQUENCE.finditer(decoded):
        if m.start() > pos:
            chunk = _CONTROLS.sub("", decoded[pos : m.start()])
            text.append(chunk, _style(state) if state != _PLAIN else None)
        params = m.group("sgr")
        if params is not None:
            state = _apply_sgr(state, params)
        pos = m.end()
    if pos < len(decoded):
        text.append(_CONTROLS.sub("", decoded[pos:]), _style(state) if state != _PLAIN else None)
    return text
