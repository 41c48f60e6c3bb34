"""A runbook command run over ssh on a real sshd (127.0.0.1, keys made for the test): only
after the confirmation, exactly the line shown, its exit status recorded."""

from __future__ import annotations

from pathlib import Path

from test_hwcheck_ssh import Sshd, sshd  # noqa: F401 - the real sshd fixture

from crashcart.runbook import RunbookState, run_over_ssh
from crashcart.runbook.commands import Command


def _ssh(server: Sshd) -> tuple[str, ...]:
    return ("ssh", "-F", str(server.config), "-p", str(server.port))


def test_a_confirmed_command_runs_on_the_target_and_a_declined_one_does_not(
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    command = Command(f"touch {marker} && echo done", "target", "leave a mark")
    host = f"{sshd.user}@127.0.0.1"
    asked: list[str] = []

    def decline(cmd: Command, how: str) -> bool:
        asked.append(how)
        return False

    assert run_over_ssh(command, host, decline, ssh=_ssh(sshd)) is None
    assert asked == [f"run over ssh on {host}"] and not marker.exists()

    result = run_over_ssh(command, host, lambda *_: True, ssh=_ssh(sshd))
    assert result is not None
    assert result.exit_status == 0 and result.stdout.strip() == "done"
    assert marker.exists()  # sshd ran exactly the line shown

    failing = Command("exit 3", "target", "fail on purpose")
    assert run_over_ssh(failing, host, lambda *_: True, ssh=_ssh(sshd)).exit_status == 3  # type: ignore[union-attr]

    # The run is recorded with the incident's progress, as the runbook pane does.
    state = RunbookState()
    state.record_run("secure_evidence", command, "ssh", destination=host, exit_status=0)
    incident = tmp_path / "incident"
    incident.mkdir(mode=0o700)
    state.save(incident)
    again = RunbookState.load(incident)
    run = again.progress("secure_evidence").runs[0]
    assert (run.how, run.command, run.exit_status) == ("ssh", command.shell, 0)
