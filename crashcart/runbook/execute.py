"""Running a step's command: over ssh, or typed into a console. Never without a confirmation.

These commands change a production machine (blacklist a driver, change the default kernel), so
each way of running one asks `confirm(command, action)` first and does nothing at all unless it
returns exactly True: not a truthy string, not a dialog result object. `action` says what is
about to happen ("run over ssh on root@web01", "type into the console") for the prompt.

Typing into a console sends the line and a newline to whatever is at the prompt, so only a single
line of printable text is typed: an embedded newline would run half a command, a tab would
trigger completion, an escape would be taken as a key. The operator must make sure a root shell
is at the prompt; a console gives no exit status back.

Over ssh the command goes to the remote shell as one argument after `--` and a checked host, with
BatchMode on by default: a password prompt would hang a headless caller.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from crashcart.runbook.commands import Command, ssh_host

__all__ = [
    "Confirm",
    "ExecuteError",
    "RunResult",
    "console_line",
    "run_over_ssh",
    "type_into_console",
    "type_into_console_async",
]

Confirm = Callable[[Command, str], bool]
AsyncConfirm = Callable[[Command, str], "bool | Awaitable[bool]"]
DEFAULT_SSH_OPTIONS: tuple[str, ...] = ("-o", "BatchMode=yes")
DEFAULT_TIMEOUT = 600.0


class ExecuteError(Exception):
    """The command could not be run (or may not be typed); `str(err)` is one line."""


@dataclass(frozen=True, slots=True)
class RunResult:
    host: str
    command: str
    exit_status: int  # ssh's: the remote command's, or 255 when ssh itself failed
    stdout: str
    stderr: str


def console_line(command: Command) -> bytes:
    """The bytes typed for `command`: its line and a newline. ExecuteError if unsafe to type."""
    text = command.shell
    if not text.strip():
        raise ExecuteError("refused to type an empty command")
    if not text.isprintable():
        # isprintable() is False for newlines, tabs, escapes and other controls.
        raise ExecuteError(
            f"refused to type {text[:40]!r}...: only a single line of printable text is typed"
        )
    return text.encode("utf-8") + b"\n"


def type_into_console(
    command: Command, writer: Callable[[bytes], object], confirm: Confirm
) -> bool:
    """Type `command` through `writer` once `confirm` says True; returns whether it was typed.

    For an async writer (a connector's `write`) use `type_into_console_async`.
    """
    line = console_line(command)
    if confirm(command, "type into the console") is not True:
        return False
    result = writer(line)
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError("the writer is async: use type_into_console_async")
    return True


async def type_into_console_async(
    command: Command, writer: Callable[[bytes], object], confirm: AsyncConfirm
) -> bool:
    """As `type_into_console`, for an async writer and/or an async confirm (a TUI dialog)."""
    line = console_line(command)
    answer = confirm(command, "type into the console")
    if inspect.isawaitable(answer):
        answer = await answer
    if answer is not True:
        return False
    result = writer(line)
    if inspect.isawaitable(result):
        await result
    return True


def run_over_ssh(
    command: Command,
    host: str,
    confirm: Confirm,
    *,
    ssh: Sequence[str] = ("ssh",),
    options: Sequence[str] = DEFAULT_SSH_OPTIONS,
    timeout: float = DEFAULT_TIMEOUT,
) -> RunResult | None:
    """Run `command` on `host` once `confirm` says True; None when it was declined."""
    destination = ssh_host(host)  # before asking: a refused host is never offered
    if "\n" in command.shell or "\r" in command.shell:
        raise ExecuteError("refused to run a multi-line command over ssh")
    argv = [*ssh, *options, "--", destination, command.shell]
    if confirm(command, f"run over ssh on {destination}") is not True:
        return None
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise ExecuteError(f"{ssh[0]}: not found") from None
    except subprocess.TimeoutExpired:
        raise ExecuteError(
            f"ssh {destination}: no answer within {timeout:g} s (the command may still run)"
        ) from None
    except OSError as exc:
        raise ExecuteError(f"{ssh[0]}: {exc.strerror or exc}") from None
    return RunResult(
        destination,
        command.shell,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
