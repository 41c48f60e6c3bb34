"""`crashcart hwcheck`: arguments, text and JSON output, exit codes, hardware.json, and the SEL
of a real BMC (OpenIPMI's ipmi_sim, the `bmc_lab` fixture) read over RMCP+ by python-ipmi."""

from __future__ import annotations

import argparse
import io
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipmilab import BmcLab, bmc_lab
from labtools import require_commands

from connectors.bmc import Bmc
from crashcart import cli_hwcheck
from crashcart.hardware.checks import CHECK_NAMES, sel_check
from crashcart.hardware.parsers import Verdict
from crashcart.hardware.runner import LocalTarget, run_checks
from crashcart.recording import InputError

__all__ = ["bmc_lab"]  # the fixture, imported for pytest


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="crashcart")
    cli_hwcheck.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["hwcheck", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--memtester", "lots"], "--memtester 'lots': SIZE is a number"),
        (["--memtester", "64M,0"], "PASSES is a number from 1 to 10000"),
        (["--only", "smart,cpu"], "unknown check cpu (known: ipmi-sel, machine-check"),
        (["--only", ","], "unknown check (none given)"),
        (["--only", "memtester"], "--only memtester needs --memtester SIZE[,PASSES]"),
        (["--only", "ipmi-sel"], "--only ipmi-sel needs --bmc ipmi://USER@HOST"),
        (["--ssh", "-oProxyCommand=touch /tmp/x"], "--ssh '-oProxyCommand=touch /tmp/x'"),
        (["--ssh", "web01;reboot"], "not a host name or address"),
        (["--ssh-option", "BatchMode=no"], "--ssh-config and --ssh-option need --ssh HOST"),
        (["--incident", "/nonexistent/incident"], "--incident /nonexistent/incident: no such"),
        (["--bmc", "telnet://10.0.0.1:23"], "not an ipmi://user@bmc URL"),
        (["--bmc", "ipmi://admin:secret@10.0.0.1"], "a password in the URL would show"),
    ],
)
def test_bad_arguments_are_one_line_input_errors(argv: list[str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        cli_hwcheck.run(parse(*argv))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_cli_knows_every_check_without_importing_them() -> None:
    assert cli_hwcheck.CHECK_NAMES == CHECK_NAMES


def test_a_bmc_without_a_password_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CRASHCART_IPMI_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal: no prompt
    with pytest.raises(InputError, match="no IPMI password: set CRASHCART_IPMI_PASSWORD"):
        cli_hwcheck.run(parse("--bmc", "ipmi://admin@192.0.2.1"))


def test_json_output_and_incident_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_commands("dmesg", "sh", "grep")
    incident = tmp_path / "20261126T140501-web01-null_deref"
    incident.mkdir(mode=0o700)
    code = cli_hwcheck.run(
        parse("--only", "edac,kernel-log", "--json", "--incident", str(incident))
    )
    assert code == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == ""
    assert set(doc) == {"host", "via", "time", "checks"} and doc["via"] == "local"
    assert [c["name"] for c in doc["checks"]] == ["edac", "kernel-log"]
    for check in doc["checks"]:
        assert set(check) == {"name", "verdict", "evidence", "command", "install_hint", "seconds"}
        assert check["verdict"] in ("pass", "warn", "fail", "unavailable")
        assert check["evidence"] and all(isinstance(line, str) for line in check["evidence"])
    assert doc["checks"][1]["install_hint"] == {"apt": "util-linux", "dnf": "util-linux"}
    saved = incident / "hardware.json"
    assert json.loads(saved.read_text()) == doc
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_text_output_is_a_table_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    require_commands("memtester")
    assert cli_hwcheck.run(parse("--only", "memtester,fans", "--memtester", "2M")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Hardware checks on ") and out[0].endswith("(this machine)")
    rows = {line.split()[1]: line for line in out[1:] if line and not line.startswith(" ")}
    assert rows["memtester"].startswith("PASS         memtester  (memtester 2M 1)")
    index = out.index(rows["memtester"])
    assert out[index + 1].strip() == "memtester 2M x1: 18 of 18 tests ok"
    assert out[-1].startswith("2 checks: ") and "1 pass" in out[-1]


# -- the BMC's System Event Log (ipmi_sim) -------------------------------------------------------
@pytest.fixture
def bmc(bmc_lab: BmcLab) -> Iterator[Bmc]:
    conn = Bmc("127.0.0.1", bmc_lab.user, bmc_lab.password, port=bmc_lab.port)
    yield conn
    conn.close()


def clear_sel(lab: BmcLab) -> None:
    done = lab.ipmitool("sel", "clear")
    assert done.returncode == 0, done.stderr
    time.sleep(0.2)  # ipmitool returns once erasure started


@pytest.mark.lab
def test_sel_verdicts_follow_what_the_bmc_logged(bmc_lab: BmcLab, bmc: Bmc) -> None:
    clear_sel(bmc_lab)
    # an event is logged only when a state changes: clear the bits silently first
    bmc_lab.console("sensor_set_bit 0x20 0 2 0 0 0", "sensor_set_bit 0x20 0 2 1 0 0")
    bmc_lab.console("sensor_set_bit 0x20 0 3 1 0 0")
    (clean,) = run_checks([sel_check(bmc)], LocalTarget()).checks
    assert clean.verdict is Verdict.PASS
    assert clean.command == f"python-ipmi: read the SEL of ipmi://admin@127.0.0.1:{bmc_lab.port}"
    bmc_lab.console("sensor_set_bit 0x20 0 2 0 1 1")  # correctable memory ECC, DIMM A1
    (ecc,) = run_checks([sel_check(bmc)], LocalTarget()).checks
    assert ecc.verdict is Verdict.WARN
    assert ecc.evidence[1].endswith(
        "Memory #2 'Dimm A1': Correctable ECC / other correctable memory error [warning]"
    )
    bmc_lab.console("sensor_set_bit 0x20 0 3 1 1 1")  # OS critical stop: what a panic logs
    (panic,) = run_checks([sel_check(bmc)], LocalTarget()).checks
    assert panic.verdict is Verdict.FAIL
    assert panic.evidence[1].endswith(
        "OS Critical Stop #3 'OS Stop': OS run-time critical stop (panic) [critical]"
    )
    assert panic.evidence[2] == ecc.evidence[1]  # warnings after the critical events


@pytest.mark.lab
def test_hwcheck_bmc_json_fail_on_and_the_password_stays_secret(
    bmc_lab: BmcLab,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clear_sel(bmc_lab)
    bmc_lab.console("sensor_set_bit 0x20 0 2 1 0 0", "sensor_set_bit 0x20 0 2 1 1 1")
    url = bmc_lab.url()
    monkeypatch.setenv("CRASHCART_IPMI_PASSWORD", bmc_lab.password)
    argv = ["--bmc", url, "--only", "ipmi-sel", "--json"]
    assert cli_hwcheck.run(parse(*argv, "--fail-on", "fail")) == cli_hwcheck.EXIT_FOUND
    first = capsys.readouterr()
    (check,) = json.loads(first.out)["checks"]
    assert check["verdict"] == "fail"
    assert "Uncorrectable ECC / other uncorrectable memory error [critical]" in check["evidence"][1]
    assert check["install_hint"] is None
    # the password from a file instead, and --fail-on warn on a log with a warning only
    clear_sel(bmc_lab)
    bmc_lab.console("sensor_set_bit 0x20 0 2 0 0 0", "sensor_set_bit 0x20 0 2 0 1 1")
    monkeypatch.delenv("CRASHCART_IPMI_PASSWORD")
    secret = tmp_path / "bmc.pw"
    secret.write_text(bmc_lab.password + "\n")
    with_file = [*argv, "--password-file", str(secret)]
    outputs = [first]
    for level, code in (("fail", 0), ("warn", cli_hwcheck.EXIT_FOUND)):
        assert cli_hwcheck.run(parse(*with_file, "--fail-on", level)) == code
        outputs.append(capsys.readouterr())
        assert json.loads(outputs[-1].out)["checks"][0]["verdict"] == "warn"
    for output in outputs:
        assert bmc_lab.password not in output.out + output.err


@pytest.mark.lab
def test_wrong_bmc_password_is_an_input_error(
    bmc_lab: BmcLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASHCART_IPMI_PASSWORD", "not-the-password")
    with pytest.raises(InputError) as caught:
        cli_hwcheck.run(parse("--bmc", bmc_lab.url(), "--only", "ipmi-sel"))
    assert str(caught.value) == (
        f"ipmi://admin@127.0.0.1:{bmc_lab.port}: the BMC rejected user 'admin' or its password"
    )
