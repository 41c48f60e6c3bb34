"""Checks on a target over ssh: a real sshd on 127.0.0.1 with keys generated for the test.

sshd runs as the current user (`StrictModes no`, `UsePAM no`, its own host key, an
authorized_keys file in tmp). As root it needs its privilege separation folder /run/sshd; when
that is missing it runs in a private mount namespace with a tmpfs on /run, so nothing outside
the test is created or changed.
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labtools import Processes, free_tcp_port, require_commands, wait_for_tcp
from test_hwcheck_runner import fake_edac, fake_hwmon, running

from crashcart import cli_hwcheck
from crashcart.hardware.checks import (
    Check,
    edac_check,
    memtester_check,
    temperature_check,
)
from crashcart.hardware.parsers import Finding, Verdict
from crashcart.hardware.runner import (
    CheckProgress,
    Event,
    OutputLine,
    SshTarget,
    TargetError,
    parse_ssh_destination,
    run_checks,
)
from crashcart.recording import InputError


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    config: Path  # the client's ssh config: our key, our known_hosts
    log: Path

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def target(self) -> SshTarget:
        return SshTarget(self.destination, config=self.config)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    tools = require_commands("sshd", "ssh", "ssh-keygen")
    tmp = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(
            [tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / key)],
            check=True,
        )
    (tmp / "authorized_keys").write_bytes((tmp / "client_key.pub").read_bytes())
    server_config = tmp / "sshd_config"
    server_config.write_text(
        f"HostKey {tmp / 'host_key'}\n"
        "ListenAddress 127.0.0.1\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPidFile none\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
    )
    client_config = tmp / "ssh_config"
    client_config.write_text(
        "Host *\n"
        f"  IdentityFile {tmp / 'client_key'}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {tmp / 'known_hosts'}\n"
        "  StrictHostKeyChecking no\n"
        "  GlobalKnownHostsFile /dev/null\n"
    )
    port = free_tcp_port()
    argv = [tools["sshd"], "-D", "-e", "-f", str(server_config), "-p", str(port)]
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        require_commands("unshare")
        script = 'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/sshd && exec "$0" "$@"'
        argv = ["unshare", "-m", "sh", "-c", script, *argv]
    log = tmp / "sshd.log"
    group = Processes()
    with log.open("wb") as sink:
        proc = group.start(argv, stderr=sink)
    try:
        if not wait_for_tcp(port, 10):
            pytest.fail(f"sshd did not listen: {log.read_text()}", pytrace=False)
        assert proc.poll() is None
        yield Sshd(port, getpass.getuser(), client_config, log)
    finally:
        group.stop_all()


# -- destinations --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hostile",
    [
        "-oProxyCommand=x",
        "-oProxyCommand=touch /tmp/pwned",
        "a;b",
        "host\nx",
        "host x",
        "$(id)",
        "`id`",
        "host|x",
        "host&",
        "web01'",
        "root@-x",
        "-l root@web01",
        "us;er@web01",
        "..",
        ".hidden",
        "[::1",
        "[nothost]:22",
        "web01:0",
        "web01:99999",
        "web01:",
        "web01:22x",
        "",
    ],
)
def test_destinations_that_are_options_or_shell_are_refused(hostile: str) -> None:
    with pytest.raises(TargetError) as caught:
        SshTarget(hostile)
    message = str(caught.value)
    assert message.startswith("--ssh ") and "\n" not in message


def test_valid_destinations() -> None:
    assert parse_ssh_destination("web01") == (None, "web01", None)
    assert parse_ssh_destination("root@web01.example.com:2222") == (
        "root",
        "web01.example.com",
        2222,
    )
    assert parse_ssh_destination("ops_user@10.0.0.7") == ("ops_user", "10.0.0.7", None)
    assert parse_ssh_destination("[::1]:2200") == (None, "::1", 2200)
    assert parse_ssh_destination("admin@fe80::1") == ("admin", "fe80::1", None)


def test_ssh_command_line_is_built_from_fixed_quoted_argv() -> None:
    target = SshTarget("ops@web01:2222", options=["ConnectTimeout=3"])
    argv = target.argv(("sh", "-c", "grep -s -H . '/x y'/mc*/ce_count"))
    assert argv is not None
    assert argv[-2:] == ["ops@web01", argv[-1]]
    assert argv[argv.index("--") + 1 :] == [
        "ops@web01",
        "env LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "
        "'grep -s -H . '\"'\"'/x y'\"'\"'/mc*/ce_count'",
    ]
    pairs = list(itertools.pairwise(argv))
    assert ("-p", "2222") in pairs
    # ssh keeps the first value given: BatchMode precedes the operator's options (no option
    # can turn a headless run into a password prompt), our defaults follow them
    batch, theirs = pairs.index(("-o", "BatchMode=yes")), pairs.index(("-o", "ConnectTimeout=3"))
    assert batch < theirs < pairs.index(("-o", "ConnectTimeout=10"))
    for bad in ("ProxyCommand", "Port=22\nProxyCommand=x", "=x", "-F=x"):
        with pytest.raises(TargetError, match="--ssh-option"):
            SshTarget("web01", options=[bad])


# -- against the real sshd -----------------------------------------------------------------------
@pytest.mark.lab
def test_checks_run_on_the_target_and_stream_back(sshd: Sshd, tmp_path: Path) -> None:
    require_commands("memtester")
    root = tmp_path / "it's a $(tree)"  # quoted on our side, unquoted by the remote shell
    fake_edac(root, {"mc0": (0, 1)})
    fake_hwmon(
        root,
        {
            "k10temp": {
                "temp1_label": "Tctl",
                "temp1_input": "91500",
                "temp1_max": "90000",
                "temp1_crit": "105000",
            }
        },
    )
    ghost = Check(
        "ghost",
        ("crashcart-no-such-tool",),
        parse=lambda out: Finding(Verdict.PASS),
        hint=memtester_check("4M").hint,
    )
    events: list[Event] = []
    target = sshd.target()
    target.check_reachable()
    result = run_checks(
        [memtester_check("2M", 1), edac_check(str(root)), temperature_check(str(root)), ghost],
        target,
        on_event=events.append,
    )
    assert (result.host, result.via) == ("127.0.0.1", "ssh")
    mem, edac, temps, missing = result.checks
    assert (mem.verdict, mem.evidence) == (Verdict.PASS, ("memtester 2M x1: 18 of 18 tests ok",))
    progress = [e.done for e in events if isinstance(e, CheckProgress)]
    assert progress == list(range(1, 19))
    assert any(isinstance(e, OutputLine) and e.text == "Loop 1/1:" for e in events)
    assert edac.verdict is Verdict.FAIL
    assert "mc0 dimm0 [MC0_DIMM_A1]: 0 corrected, 1 uncorrected" in edac.evidence
    assert (temps.verdict, temps.evidence) == (
        Verdict.WARN,
        ("k10temp Tctl: 91.5 °C (high 90 °C, critical 105 °C) HIGH",),
    )
    assert missing.verdict is Verdict.UNAVAILABLE
    assert missing.evidence == (
        "crashcart-no-such-tool is not installed on 127.0.0.1: "
        "apt install memtester / dnf install memtester",
    )


@pytest.mark.lab
def test_cancel_stops_the_remote_memtester(sshd: Sshd) -> None:
    require_commands("memtester")
    argv = ["memtester", "29M", "43"]  # this sshd's "remote" processes are visible here
    cancel = threading.Event()
    marks: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, CheckProgress) and not cancel.is_set():
            assert running(argv)
            marks.append(time.monotonic())
            cancel.set()

    (mem,) = run_checks(
        [memtester_check("29M", 43)], sshd.target(), on_event=on_event, cancel=cancel
    ).checks
    assert mem.verdict is Verdict.UNAVAILABLE and mem.evidence[-1] == "stopped: cancelled"
    # killing the ssh client closes the channel; memtester dies on its next write (SIGPIPE)
    deadline = time.monotonic() + 10
    while running(argv) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(argv) == []
    assert time.monotonic() - marks[0] < 10


@pytest.mark.lab
def test_unreachable_or_refusing_targets_are_one_clear_line(sshd: Sshd, tmp_path: Path) -> None:
    closed = SshTarget(f"127.0.0.1:{free_tcp_port()}", config=sshd.config)
    with pytest.raises(TargetError, match=r"^ssh 127\.0\.0\.1: .*Connection refused"):
        closed.check_reachable()
    stranger = tmp_path / "ssh_config"
    stranger.write_text(sshd.config.read_text().replace("client_key", "no_such_key"))
    refused = SshTarget(sshd.destination, config=stranger)
    with pytest.raises(TargetError, match=r"Permission denied \(publickey\)"):
        refused.check_reachable()


@pytest.mark.lab
def test_hwcheck_cli_over_ssh(sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    require_commands("dmesg")
    parser = argparse.ArgumentParser()
    cli_hwcheck.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "hwcheck",
            "--ssh",
            sshd.destination,
            "--ssh-config",
            str(sshd.config),
            "--only",
            "kernel-log,edac",
            "--json",
        ]
    )
    assert cli_hwcheck.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["host"], doc["via"]) == ("127.0.0.1", "ssh")
    assert [c["name"] for c in doc["checks"]] == ["edac", "kernel-log"]
    log = doc["checks"][1]
    assert log["command"] == "dmesg" and log["verdict"] in ("pass", "warn", "fail")
    bad = parser.parse_args(
        ["hwcheck", "--ssh", f"127.0.0.1:{free_tcp_port()}", "--ssh-config", str(sshd.config)]
    )
    with pytest.raises(InputError, match="Connection refused"):
        cli_hwcheck.run(bad)
