"""Hostile input to every decoder a console's bytes pass through, and the parser's cost on its
worst inputs.

- The asciicast reader, the netconsole decoder and the telnet/RFC 2217 codec get random and
  almost-valid input (hypothesis); nothing but their documented error may escape.
- The parser gets 1 MB lines and lines that nearly match every crash marker; ten times the
  input must cost less than fifteen times the time (linear, with room for noise).

CRASHCART_FUZZ_EXAMPLES=20000 makes this a long run (`bench/fuzz` does that).
"""

from __future__ import annotations

import json
import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.netconsole import Lost, SourceDecoder
from connectors.telnet import IAC, TelnetCodec
from crashcart.kernel import analyze_bytes
from crashcart.kernel.formats import MARKERS
from crashcart.recording import InputError, decode_cast

EXAMPLES = int(os.environ.get("CRASHCART_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the asciicast reader ------------------------------------------------------------------------
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_event = st.one_of(
    st.tuples(st.floats(allow_nan=True), st.sampled_from(["o", "i", "m", "r", "x"]), st.text()),
    _json_value,
)


@FUZZ
@given(st.binary(max_size=4096))
def test_cast_reader_never_raises_on_random_bytes(data: bytes) -> None:
    try:
        out = decode_cast(data)
    except InputError:
        return
    assert isinstance(out, bytes)


@FUZZ
@given(
    st.one_of(
        st.fixed_dictionaries({"version": st.sampled_from([1, 2, 3, 4, "2", None])}),
        _json_value,
    ),
    st.lists(_event, max_size=30),
    st.booleans(),
)
def test_cast_reader_never_raises_on_almost_valid_recordings(
    header: object, events: list[object], cut: bool
) -> None:
    text = json.dumps(header) + "\n" + "\n".join(json.dumps(e) for e in events)
    data = text.encode()
    if cut and len(data) > 2:
        data = data[: len(data) // 2]  # a recording cut mid-line by a crash
    try:
        out = decode_cast(data)
    except InputError:
        return
    assert isinstance(out, bytes)


# -- the netconsole decoder ----------------------------------------------------------------------
_ext_header = st.builds(
    lambda level, seq, ts, flag, extra, msg: f"{level},{seq},{ts},{flag}{extra};".encode() + msg,
    st.integers(-1, 300),
    st.integers(-5, 1 << 40),
    st.integers(-5, 1 << 40),
    st.sampled_from(["-", "c", "+", "", "x"]),
    st.sampled_from(["", ",ncfrag=0/10", ",ncfrag=5/3", ",ncfrag=a/b", ",ncfrag=0/0", ",x=y"]),
    st.binary(max_size=300),
)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=600), _ext_header), max_size=40))
def test_netconsole_decoder_never_raises(datagrams: list[bytes]) -> None:
    decoder = SourceDecoder()
    now = 0.0
    out: list[object] = []
    for datagram in datagrams:
        now += 0.01
        out += decoder.feed(datagram, now)
        out += decoder.expire(now)
    out += decoder.flush()
    assert all(isinstance(item, bytes | Lost) for item in out)


# -- the telnet / RFC 2217 codec -----------------------------------------------------------------
@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=30))
def test_telnet_codec_never_raises_and_passes_plain_data_through(chunks: list[bytes]) -> None:
    codec = TelnetCodec()
    for chunk in chunks:
        data, replies = codec.receive(chunk)
        assert isinstance(data, bytes) and isinstance(replies, bytes)
    plain = b"".join(chunks).replace(bytes([IAC]), b"").replace(b"\r", b"")
    fresh = TelnetCodec()
    data, _ = fresh.receive(plain)
    assert data == plain  # without IAC and CR, telnet changes nothing


# -- the parser's worst inputs -------------------------------------------------------------------
def _near_misses(size: int) -> bytes:
    """Lines that start like every crash marker but are not crashes: each marker cut short,
    with a wrong last character, and repeated within a line."""
    lines: list[bytes] = []
    for marker in MARKERS:
        m = marker.encode()
        lines += [
            b"[  12.345678] " + m[:-1] + b"\n",
            b"[  12.345678] " + m[:-1] + b"~ " + m[:-1] + b"\n",
            b"[  12.345678] xx" + (m[:-1] + b" ") * 30 + b"\n",
        ]
    block = b"".join(lines)
    return (block * (size // len(block) + 1))[:size]


def _best(data: bytes, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        analyze_bytes(data)
        best = min(best, time.perf_counter() - start)
    return best


def test_near_matches_of_every_marker_cost_linear_time() -> None:
    small, large = _near_misses(200_000), _near_misses(2_000_000)
    assert analyze_bytes(small) == []  # none of them is a crash
    ratio = _best(large) / max(_best(small), 1e-3)
    assert ratio < 15, f"10x the near-matches took {ratio:.1f}x the time"


def test_megabyte_lines_cost_linear_time() -> None:
    def lines(count: int) -> bytes:
        # 1 MB lines of text that keeps offering a marker's first letters.
        return b"".join((b"BUG WARNING Oops " * 60_000)[:1_000_000] + b"\n" for _ in range(count))

    small, large = lines(1), lines(10)
    ratio = _best(large, runs=2) / max(_best(small, runs=2), 1e-3)
    assert ratio < 15, f"10x the 1 MB lines took {ratio:.1f}x the time"
