"""A real kernel, really crashing: `crashcart watch` on QEMU's serial port finds the incident.

Slow (the lab builds a module and boots Debian's kernel under TCG); run alone with `-m slow`.
The lab lives in ../shared/lab/qemu and writes only to CRASHLAB_DIR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labtools import require_commands

pytestmark = [pytest.mark.slow, pytest.mark.lab]


@pytest.fixture(scope="module")
def crashlab(shared_dir: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The built lab (kernel, crashme.ko, initramfs) and the environment its scripts need."""
    lab = shared_dir / "lab" / "qemu"
    env = dict(os.environ)
    env.setdefault(
        "CRASHLAB_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "crashcart-qemu-lab")
    )
    for script in ("setup.sh", "build-module.sh", "build-initramfs.sh"):
        done = subprocess.run(
            ["bash", str(lab / script)], env=env, capture_output=True, text=True, timeout=1200
        )
        if done.returncode != 0:
            pytest.fail(f"lab {script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    require_commands("qemu-system-x86_64")
    yield lab, env


def _boot(lab: Path, env: dict[str, str], scenario: str, run_dir: Path) -> dict[str, str]:
    pidfile = run_dir / f"{scenario}.pid"
    done = subprocess.run(
        [
            "bash",
            str(lab / "boot.sh"),
            scenario,
            "--serial",
            "tcp:0",
            "--pidfile",
            str(pidfile),
            "--timeout",
            "600",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    assert "PORT" in values and "PIDFILE" in values, done.stdout
    return values


@pytest.mark.timeout(1500)
def test_watch_finds_a_real_kernel_oops_on_its_serial_port(
    crashlab: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    lab, env = crashlab
    booted = _boot(lab, env, "oops_null_panic", tmp_path)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "crashcart",
                "watch",
                f"socket://127.0.0.1:{booted['PORT']}",
                "--record",
                str(tmp_path / "rec"),
                "--exit-on-crash",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        subprocess.run(["bash", str(lab / "stop.sh"), booted["PIDFILE"]], env=env, timeout=60)
    assert done.returncode == 3, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.strip()]
    assert lines, done.stderr
    first = lines[0]
    assert first["kind"] == "null_deref"
    assert first["function"] == "crashme_null_deref"
    assert first["module"] == "crashme"
    incident = Path(first["incident"])
    for name in (
        "console.log",
        "console.cast",
        "screen.txt",
        "screen.svg",
        "oops.txt",
        "report.json",
        "report.md",
    ):
        assert (incident / name).is_file(), name
    report = json.loads((incident / "report.json").read_text())
    assert report["crash"]["panic"] == "Fatal exception"
    assert b"Linux version" in (incident / "console.log").read_bytes()
