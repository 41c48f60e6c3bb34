"""The command line's input/output behaviour: exit codes, one-line errors, stdin, recordings,
hostile console bytes. What the crash reports say is tested with the parser, not here."""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from crashcart import __version__, cli

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_LOG = REPO_ROOT / "crashcart" / "data" / "demo" / "gpf_list_poison_panic.log"
SGR = re.compile(rb"\x1b\[[0-9;]*m")

Result = tuple[int, str, str]
Runner = Callable[..., Result]


def run_inproc(*args: str, stdin: bytes | None = None) -> Result:
    """Run `crashcart ARGS` in this process, capturing stdout/stderr at the sys level."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin or b""))
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CRASHCART_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_subprocess_bytes(
    *args: str, stdin: bytes | None = None, **env: str
) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "crashcart", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=_env(**env),
        cwd=REPO_ROOT,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_subprocess(*args: str, stdin: bytes | None = None) -> Result:
    code, out, err = run_subprocess_bytes(*args, stdin=stdin)
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


RUNNERS = [pytest.param(run_inproc, id="inproc"), pytest.param(run_subprocess, id="subprocess")]


def assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("crashcart: error: ")


def with_garbage(log: bytes, seed: int) -> bytes:
    """The demo log with line noise, invalid UTF-8 and escape floods spliced between its lines."""
    rng = random.Random(seed)
    lines = log.split(b"\n")
    junk = [
        rng.randbytes(300),
        b"\xff\xfe\xc3\x28\xe2\x82\xa0\xf0\x90\x28\xbc\x80\x80",
        b"\x1b[6n\x1b[2J\x1b[H\x1b[?1049h" * 200,
        b"\x1b]0;pwned\x07\x1bP+q544e\x1b\\\x9b31m\x00\x00\x00",
    ]
    for piece in junk:
        at = rng.randrange(len(lines))
        lines.insert(at, piece)
    return b"\n".join(lines)


def escape_laden(log: bytes) -> bytes:
    """Wrap every console line in colour, title-setting and cursor escapes (still one line each)."""
    out = []
    for line in log.split(b"\n"):
        out.append(b"\x1b]0;owned\x07\x1b[1;31m" + line.rstrip(b"\r") + b"\x1b[0m\x1b[K\r")
    return b"\n".join(out)


# --- usage and input errors -----------------------------------------------------------------


@pytest.mark.parametrize("run", RUNNERS)
def test_version(run: Runner) -> None:
    code, out, err = run("--version")
    assert (code, out.strip(), err) == (0, f"crashcart {__version__}", "")


@pytest.mark.parametrize("run", RUNNERS)
def test_missing_file(run: Runner, tmp_path: Path) -> None:
    code, out, err = run("analyze", str(tmp_path / "nope.log"))
    assert_one_line_error(code, out, err)
    assert "nope.log" in err


@pytest.mark.parametrize("run", RUNNERS)
def test_directory(run: Runner, tmp_path: Path) -> None:
    assert_one_line_error(*run("analyze", str(tmp_path)))


@pytest.mark.parametrize("run", RUNNERS)
def test_binary_file(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "vmlinux"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + random.Random(7).randbytes(8192))
    assert_one_line_error(*run("analyze", str(path), "--json"))


@pytest.mark.parametrize("run", RUNNERS)
def test_cast_without_header(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "broken.cast"
    path.write_bytes(b'[0.1, "o", "no header"]\n')
    assert_one_line_error(*run("analyze", str(path)))


@pytest.mark.parametrize("run", RUNNERS)
@pytest.mark.parametrize(
    "args", [(), ("analyze",), ("frobnicate",), ("analyze", "x.log", "--bogus"), ("--bogus",)]
)
def test_usage_errors_are_one_line(run: Runner, args: tuple[str, ...]) -> None:
    assert_one_line_error(*run(*args))


def test_hostile_file_name_does_not_reach_the_terminal(tmp_path: Path) -> None:
    name = str(tmp_path / "evil\x1b]0;pwned\x07\nline2\x1b[2J.log")
    code, out, err = run_subprocess("analyze", name)
    assert_one_line_error(code, out, err)
    assert "\x1b" not in err and "\x07" not in err


def test_help_mentions_commands() -> None:
    code, out, _ = run_subprocess("--help")
    assert code == 0
    assert "analyze" in out and "demo" in out
    code, out, _ = run_subprocess("demo", "--help")
    assert code == 0 and "TUI" in out


# --- reading inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("run", RUNNERS)
def test_empty_file_has_no_crashes(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    code, out, err = run("analyze", str(path), "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"crashes": []}
    code, out, err = run("analyze", str(path))
    assert (code, err) == (0, "")
    assert "No crash found in 0 lines" in out


@pytest.mark.parametrize("run", RUNNERS)
def test_json_output_parses_and_has_crashes(run: Runner) -> None:
    code, out, err = run("analyze", str(DEMO_LOG), "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {"crashes"}
    assert isinstance(doc["crashes"], list) and doc["crashes"], "the demo capture has a crash"
    for crash in doc["crashes"]:
        assert {"kind", "title", "function", "call_trace", "start_line", "end_line"} <= set(crash)


@pytest.mark.parametrize("run", RUNNERS)
def test_stdin_dash(run: Runner) -> None:
    data = DEMO_LOG.read_bytes()
    from_file = run("analyze", str(DEMO_LOG), "--json")
    from_stdin = run("analyze", "-", "--json", stdin=data)
    assert from_stdin == from_file
    cast = DEMO_LOG.with_suffix(".cast").read_bytes()
    assert run("analyze", "-", "--json", stdin=cast) == from_file


def test_cast_and_log_twins_give_the_same_json(qemu_corpus: Path) -> None:
    pairs = [(c, c.with_suffix(".log")) for c in sorted(qemu_corpus.glob("*.cast"))]
    assert pairs
    for recording, log in pairs:
        assert log.exists(), log
        from_cast = run_inproc("analyze", str(recording), "--json")
        from_log = run_inproc("analyze", str(log), "--json")
        assert from_cast[0] == 0, (recording.name, from_cast[2])
        assert from_cast == from_log, recording.name


# --- hostile console bytes ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_garbage_inside_a_log_is_survived(tmp_path: Path, seed: int, as_json: bool) -> None:
    path = tmp_path / "noisy.log"
    path.write_bytes(with_garbage(DEMO_LOG.read_bytes(), seed))
    code, out, err = run_inproc("analyze", str(path), *(["--json"] if as_json else []))
    assert (code, err) == (0, "")
    if as_json:
        json.loads(out)


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_log_is_survived(tmp_path: Path, seed: int) -> None:
    # Random bytes are mostly printable or high-bit (a console at the wrong baud rate), so they
    # are analysed, not refused as binary.
    path = tmp_path / "noise.log"
    path.write_bytes(random.Random(seed).randbytes(64 * 1024))
    code, out, err = run_inproc("analyze", str(path), "--json")
    assert (code, err) == (0, "")
    json.loads(out)


def test_human_output_has_no_escape_characters(tmp_path: Path) -> None:
    path = tmp_path / "escapes.log"
    path.write_bytes(escape_laden(with_garbage(DEMO_LOG.read_bytes(), 1)))
    code, out, err = run_subprocess_bytes("analyze", str(path), TERM="xterm-256color")
    assert (code, err) == (0, b"")
    assert b"Crash 1/" in out, "the parser should still find the crash"
    controls = {ch for ch in out.decode("utf-8", "replace") if unicodedata.category(ch) == "Cc"}
    assert controls <= {"\n"}, controls


def test_forced_colour_output_only_carries_our_own_sgr(tmp_path: Path) -> None:
    # With colour forced, the only escapes on the operator's terminal are Rich's colour codes;
    # the console's title-setting, cursor and clear-screen sequences never get through.
    path = tmp_path / "escapes.log"
    path.write_bytes(escape_laden(DEMO_LOG.read_bytes()))
    code, out, err = run_subprocess_bytes("analyze", str(path), FORCE_COLOR="1", TERM="xterm")
    assert (code, err) == (0, b"")
    assert b"\x1b" not in SGR.sub(b"", out)
    assert b"\x07" not in out


def test_json_output_is_ascii_with_escaped_controls(tmp_path: Path) -> None:
    path = tmp_path / "escapes.log"
    path.write_bytes(escape_laden(DEMO_LOG.read_bytes()))
    code, out, err = run_subprocess_bytes("analyze", str(path), "--json")
    assert (code, err) == (0, b"")
    assert out.isascii() and b"\x1b" not in out
    json.loads(out)


# --- signals, pipes and internal failures ---------------------------------------------------


def test_tui_commands_without_a_terminal_say_so_in_one_line() -> None:
    # The TUI needs a terminal; in a pipe the operator is pointed at the headless commands.
    for argv in (("demo",), ("replay", str(DEMO_LOG)), ("attach", "socket://127.0.0.1:9")):
        code, out, err = run_subprocess(*argv)
        assert code == 2 and out == ""
        assert err.startswith("crashcart: error: the console TUI needs a terminal")
        assert err.count("\n") == 1


def test_replay_of_a_missing_file_is_an_input_error() -> None:
    code, _, err = run_subprocess("replay", "/nonexistent/console.cast")
    assert code == 2 and "no such recording" in err and err.count("\n") == 1


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_console_bytes", interrupted)
    code, out, err = run_inproc("analyze", "whatever.log")
    assert code == 130 and out == "" and "Traceback" not in err


def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import crashcart.kernel

    def broken(_: bytes) -> list[object]:
        raise RuntimeError("parser bug")

    monkeypatch.delenv("CRASHCART_DEBUG", raising=False)
    monkeypatch.setattr(crashcart.kernel, "analyze_bytes", broken)
    code, out, err = run_inproc("analyze", str(DEMO_LOG))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "crashcart: error: internal error: RuntimeError: parser bug "
        "(CRASHCART_DEBUG=1 shows details)"
    ]


def test_closed_stdout_exits_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crashcart", "analyze", str(DEMO_LOG)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away (`| head` that already exited)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == b""
