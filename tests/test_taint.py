"""Taint flags: what a reader of the report learns from `Tainted: G           OE`.

The table is the kernel's (Documentation/admin-guide/tainted-kernels.rst); each meaning is checked
against the words of that document, not against crashcart's own table.
"""

from __future__ import annotations

import pytest

from crashcart.kernel.taint import decode_taint, taint_letters

# letter -> a phrase the kernel's documentation uses for it (case-insensitive).
KERNEL_TABLE: tuple[tuple[str, str], ...] = (
    ("P", "proprietary"),
    ("F", "force"),
    ("S", "out of spec"),
    ("R", "unload"),
    ("M", "machine check"),
    ("B", "bad page"),
    ("U", "user"),
    ("D", "died"),
    ("A", "acpi"),
    ("W", "warning"),
    ("C", "staging"),
    ("I", "firmware"),
    ("O", "out-of-tree"),
    ("E", "unsigned"),
    ("L", "soft lockup"),
    ("K", "live patch"),
    ("X", "auxiliary"),
    ("T", "randomization"),
    ("N", "test"),
    ("J", "fwctl"),
)


@pytest.mark.parametrize(("letter", "phrase"), KERNEL_TABLE, ids=[t[0] for t in KERNEL_TABLE])
def test_every_kernel_taint_letter_is_explained(letter: str, phrase: str) -> None:
    flags = decode_taint(f"G  {letter}")
    assert [f.letter for f in flags] == [letter]
    assert phrase in flags[0].meaning.lower()


def test_all_twenty_flags_set_decode_in_the_kernels_order() -> None:
    every = "".join(letter for letter, _ in KERNEL_TABLE)
    assert taint_letters(every) == every
    assert len({f.meaning for f in decode_taint(every)}) == len(KERNEL_TABLE)


@pytest.mark.parametrize("flags", ["G", "G                 ", "", None])
def test_an_untainted_kernel_has_no_flags(flags: str | None) -> None:
    assert decode_taint(flags) == []
    assert taint_letters(flags) == ""


def test_g_is_not_reported_as_a_flag() -> None:
    assert [f.letter for f in decode_taint("G           OE")] == ["O", "E"]


@pytest.mark.parametrize(
    ("printed", "letters"),
    [
        ("G           OE", "OE"),  # a Debian 6.1 kernel with an out-of-tree unsigned module
        ("P           OE", "POE"),  # the same with a proprietary one
        ("G    B      OE", "BOE"),  # KASAN after a bad page
        ("G        W  OE", "WOE"),  # after a WARNING
        ("G      D W  OE", "DWOE"),  # after an oops and a warning
        ("G           OEL", "OEL"),  # after a soft lockup
    ],
)
def test_fixed_width_taint_strings_keep_their_letters(printed: str, letters: str) -> None:
    assert taint_letters(printed) == letters


def test_the_6_10_bracketed_taint_line_decodes_like_the_letters() -> None:
    printed = "[P]=PROPRIETARY_MODULE, [W]=WARN, [O]=OOT_MODULE, [E]=UNSIGNED_MODULE"
    flags = decode_taint(printed)
    assert [f.letter for f in flags] == ["P", "W", "O", "E"]
    assert "proprietary" in flags[0].meaning.lower()
    assert "unsigned" in flags[3].meaning.lower()


def test_a_bracketed_line_is_not_read_letter_by_letter() -> None:
    # The names (PROPRIETARY_MODULE, ...) are upper case too; only the bracketed letters count.
    assert taint_letters("[O]=OOT_MODULE") == "O"


def test_an_unknown_letter_from_a_newer_kernel_is_kept() -> None:
    flags = decode_taint("G           OE  Z")
    assert [f.letter for f in flags] == ["O", "E", "Z"]
    assert flags[2].meaning  # said honestly, not dropped


def test_a_letter_repeated_is_reported_once() -> None:
    assert taint_letters("G  W W") == "W"


def test_taint_flags_serialise_as_letter_and_meaning() -> None:
    (flag,) = decode_taint("G  W")
    assert flag.to_dict() == {"letter": "W", "meaning": flag.meaning}
