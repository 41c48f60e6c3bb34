"""Finding the logs under a file, a folder, a mounted root, or `/`."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashcart.logs.discover import discover, root_timezone
from crashcart.recording import InputError


def touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    log = root / "var" / "log"
    for name in (
        "kern.log",
        "kern.log.1",
        "kern.log.2.gz",
        "kern.log.10.gz",
        "kern.log.3.xz",
        "syslog",
        "syslog.1",
        "messages-20261125.gz",
        "messages-20261126",
        "messages",
        "dmesg",
        "dmesg.0",
        "auth.log",  # not about the kernel
        "kern.log.bak.txt",  # not a rotation
    ):
        touch(log / name)
    touch(log / "installer" / "syslog")  # the installer's, years old
    touch(log / "apt" / "history.log")
    touch(log / "journal" / "abcdef0123456789abcdef0123456789" / "system.journal")
    touch(log / "journal" / "abcdef0123456789abcdef0123456789" / "user-1000.journal")
    touch(log / "journal" / "abcdef0123456789abcdef0123456789" / "system@0006-1.journal~")
    touch(root / "var" / "crash" / "202611261200" / "vmcore-dmesg.txt")
    touch(root / "var" / "crash" / "202611261200" / "vmcore")  # the dump itself: not a log
    touch(root / "var" / "crash" / "202611270600" / "dmesg.202611270600")  # Ubuntu's name
    touch(root / "var" / "lib" / "systemd" / "pstore" / "1795766400" / "dmesg.txt")
    touch(root / "var" / "lib" / "systemd" / "pstore" / "dmesg-efi-179576640001001")
    touch(root / "var" / "lib" / "systemd" / "pstore" / "dmesg-efi-179576640002001.enc.z")
    (root / "etc").mkdir()
    (root / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    return root


def test_a_mounted_root_yields_every_log_in_reading_order(root: Path) -> None:
    found = discover([root])
    got = [(str(s.path.relative_to(root)), s.kind) for s in found.sources]
    assert got == [
        ("var/log/kern.log.10.gz", "syslog"),
        ("var/log/kern.log.3.xz", "syslog"),
        ("var/log/kern.log.2.gz", "syslog"),
        ("var/log/kern.log.1", "syslog"),
        ("var/log/kern.log", "syslog"),
        ("var/log/syslog.1", "syslog"),
        ("var/log/syslog", "syslog"),
        ("var/log/messages-20261125.gz", "syslog"),
        ("var/log/messages-20261126", "syslog"),
        ("var/log/messages", "syslog"),
        ("var/log/journal/abcdef0123456789abcdef0123456789", "journal"),
        ("var/log/dmesg.0", "dmesg"),
        ("var/log/dmesg", "dmesg"),
        ("var/crash/202611261200/vmcore-dmesg.txt", "vmcore-dmesg"),
        ("var/crash/202611270600/dmesg.202611270600", "vmcore-dmesg"),
        ("var/lib/systemd/pstore/1795766400/dmesg.txt", "pstore"),
        ("var/lib/systemd/pstore/dmesg-efi-179576640001001", "pstore"),
    ]
    assert found.warnings == []
    assert all(str(s.tz) == "Europe/Berlin" for s in found.sources)


def test_a_log_folder_is_searched_and_its_root_gives_the_zone(root: Path) -> None:
    found = discover([root / "var" / "log"])
    names = [s.path.name for s in found.sources]
    assert "kern.log.2.gz" in names and "abcdef0123456789abcdef0123456789" in names
    assert "auth.log" not in names
    assert str(found.sources[0].tz) == "Europe/Berlin"


def test_a_pstore_folder_and_named_files(root: Path, tmp_path: Path) -> None:
    pstore = touch(tmp_path / "sys" / "fs" / "pstore" / "dmesg-ramoops-0").parent
    touch(pstore / "console-ramoops-0")
    assert [(s.path.name, s.kind) for s in discover([pstore]).sources] == [
        ("console-ramoops-0", "pstore"),
        ("dmesg-ramoops-0", "pstore"),
    ]
    journal = root / "var" / "log" / "journal" / "abcdef0123456789abcdef0123456789"
    named = [
        journal / "system.journal",
        root / "var" / "crash" / "202611261200" / "vmcore-dmesg.txt",
        touch(tmp_path / "console-capture.txt"),
    ]
    assert [s.kind for s in discover(named).sources] == ["journal", "vmcore-dmesg", "text"]


def test_the_same_file_named_twice_is_read_once(root: Path) -> None:
    kern = root / "var" / "log" / "kern.log"
    assert len(discover([kern, root / "var" / "log" / ".." / "log" / "kern.log"]).sources) == 1


def test_symlinked_folders_are_not_followed_out_of_the_root(root: Path, tmp_path: Path) -> None:
    outside = touch(tmp_path / "elsewhere" / "kern.log").parent
    (root / "var" / "crash" / "link").symlink_to(outside)
    assert not any("elsewhere" in str(s.path) for s in discover([root]).sources)


def test_missing_paths_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: no such file or directory"):
        discover([tmp_path / "nope"])


def test_a_folder_without_logs_is_a_warning(tmp_path: Path) -> None:
    touch(tmp_path / "notes.txt")
    found = discover([tmp_path])
    assert found.sources == []
    assert found.warnings == [f"{tmp_path}: no logs found in this folder"]


def test_slash_means_the_live_systems_places() -> None:
    places = (
        "/var/log/",
        "/run/log/journal",
        "/var/crash/",
        "/var/lib/systemd/pstore/",
        "/sys/fs/pstore/",
    )
    for source in discover(["/"]).sources:
        assert str(source.path).startswith(places), source
        assert source.tz is None  # this machine's own zone


def test_root_timezone_reads_the_mounted_roots_zone(root: Path, tmp_path: Path) -> None:
    assert str(root_timezone(root)) == "Europe/Berlin"
    other = tmp_path / "other"
    touch(other / "etc" / "timezone", "America/New_York\n")
    assert str(root_timezone(other)) == "America/New_York"
    assert root_timezone(tmp_path / "bare") is None
    assert root_timezone(Path("/")) is None
