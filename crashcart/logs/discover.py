"""Find the logs that may tell why a machine died: in a file, a log directory, or a whole root.

After a panic the box is rebooted into rescue and its root file system mounted (`/mnt`); the
operator points crashcart at that root, at `/mnt/var/log`, or at single files. Under a root the
places are fixed (`var/log`, its journal, `var/crash`, systemd-pstore's folder); a plain
directory is searched a few levels deep by file name. `/` means the live system, which adds
`/sys/fs/pstore` and the volatile journal in `/run/log/journal`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from crashcart.recording import InputError

__all__ = ["SOURCE_KINDS", "Discovery", "Source", "discover", "root_timezone"]

# What a source is; it decides how it is read (journal) and is shown to the operator.
SOURCE_KINDS = ("syslog", "journal", "dmesg", "vmcore-dmesg", "pstore", "text")

# kern.log, syslog.1, messages-20261126.gz, dmesg.0, kern.log.3.xz ...
_TEXT_LOG = re.compile(
    r"^(?P<base>kern\.log|syslog|messages|dmesg)"
    r"(?:\.(?P<num>\d+)|-(?P<date>\d{8}))?(?:\.(?:gz|xz|bz2))?$"
)
_VMCORE_DMESG = re.compile(r"^vmcore-dmesg.*\.txt$")
# pstore records: dmesg-ramoops-0, dmesg-efi-172394811001, console-ramoops-0, and the dmesg.txt
# that systemd-pstore assembles; "*.enc.z" records are compressed data the kernel could not
# decompress, not text.
_PSTORE_RECORD = re.compile(r"^(?:dmesg|console)(?:[-.].*)?$")
_JOURNAL_FILE = re.compile(r"\.journal~?$")

# Display and merge order: logs first (oldest rotation first), then what the kernel left
# behind when it died (crash dumps), so untimed hits read from older to newer evidence.
_GROUP = {"kern.log": 0, "syslog": 1, "messages": 2, "journal": 3, "dmesg": 4}
_KIND_GROUP = {"vmcore-dmesg": 5, "pstore": 6}

_WALK_DEPTH = 2  # how deep a plain directory is searched


@dataclass(frozen=True, slots=True)
class Source:
    """One log to read: a text file (maybe compressed), a journal directory or journal file."""

    path: Path
    kind: str  # one of SOURCE_KINDS
    tz: tzinfo | None = None  # zone of the machine that wrote it (None: this machine's)


@dataclass(slots=True)
class Discovery:
    sources: list[Source] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _order(source: Source) -> tuple[int, str, int, str, str]:
    """Sort key: group, then rotations oldest first (kern.log.3.gz, .2.gz, .1, kern.log)."""
    name = source.path.name
    m = _TEXT_LOG.match(name)
    if source.kind in _KIND_GROUP:
        return (_KIND_GROUP[source.kind], "", 0, "", str(source.path))
    if source.kind == "journal":
        return (_GROUP["journal"], "", 0, "", str(source.path))
    if m is None:
        return (2, name, 0, "", str(source.path))
    num = m.group("num")
    date = m.group("date")
    # Numbered rotations: higher is older (dmesg.0 too is older than dmesg). Date rotations:
    # earlier is older. The current file is the newest.
    rotation = -int(num) - 1 if num is not None else 0
    return (_GROUP[m.group("base")], m.group("base"), rotation, date or "~", str(source.path))


def _kind_for_file(path: Path) -> str | None:
    """The kind of a log file found while searching, from its name and folder; None: not a log."""
    name = path.name
    in_pstore = any(part == "pstore" for part in path.parts[:-1])
    if in_pstore and _PSTORE_RECORD.match(name) and not name.endswith(".enc.z"):
        return "pstore"
    if _JOURNAL_FILE.search(name):
        return "journal"
    if _VMCORE_DMESG.match(name):
        return "vmcore-dmesg"
    m = _TEXT_LOG.match(name)
    if m is None:
        return None
    if m.group("base") == "dmesg":
        # Ubuntu's kdump-tools keeps the dying kernel's log as var/crash/STAMP/dmesg.STAMP.
        return "vmcore-dmesg" if "crash" in path.parts[:-1] else "dmesg"
    return "syslog"


def _kind_for_named_file(path: Path) -> str:
    """The kind of a file the operator named: anything not recognised is plain "text" (a
    console capture, a saved dmesg); its lines say which clock they carry."""
    kind = _kind_for_file(path)
    if kind is not None:
        return kind
    if _PSTORE_RECORD.match(path.name) and path.parent.name == "pstore":
        return "pstore"
    return "text"


def _listdir(path: Path, warnings: list[str]) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        warnings.append(f"{path}: cannot list: {exc.strerror or exc}")
        return []


def _walk(
    top: Path, depth: int, warnings: list[str], text_logs: bool = True
) -> Iterable[tuple[Path, str]]:
    """(path, kind) of the logs under `top`; a folder of journal files is one source."""
    entries = _listdir(top, warnings)
    if any(e.is_file() and _JOURNAL_FILE.search(e.name) for e in entries):
        yield top, "journal"
        return
    for entry in entries:
        if entry.is_symlink() and entry.is_dir():
            continue  # never follow a link out of the mounted root
        if entry.is_dir():
            if depth > 0:
                yield from _walk(entry, depth - 1, warnings, text_logs)
            continue
        if not entry.is_file():
            continue
        kind = _kind_for_file(entry)
        if kind is None or kind == "journal" or (kind == "syslog" and not text_logs):
            continue
        yield entry, kind


def _is_root(path: Path) -> bool:
    return path == Path("/") or (path / "var" / "log").is_dir()


def _root_locations(root: Path) -> list[tuple[Path, int, bool]]:
    """(folder, depth, text logs wanted) of everything worth reading under a root."""
    places = [
        (root / "var" / "log", 0, True),  # only its top level: var/log/installer/syslog is old
        (root / "var" / "log" / "journal", 1, False),
        (root / "run" / "log" / "journal", 1, False),
        (root / "var" / "crash", 1, False),
        (root / "var" / "lib" / "systemd" / "pstore", 1, False),
    ]
    if root == Path("/") or (root / "sys" / "fs" / "pstore").is_dir():
        places.append((root / "sys" / "fs" / "pstore", 0, False))
    return places


def _guess_root(path: Path) -> Path | None:
    """The root file system a log path lives in (`/mnt` for /mnt/var/log/kern.log)."""
    for candidate in (path, *path.parents):
        if (candidate / "etc").is_dir() and (candidate / "var").is_dir():
            return candidate
    return None


def root_timezone(root: Path | None) -> tzinfo | None:
    """The time zone configured in a mounted root; None for this machine's own (or unknown).

    Traditional syslog stamps are local time without a zone, so they must be read in the zone
    of the machine that wrote them, not the rescue system's.
    """
    if root is None or root == Path("/"):
        return None
    localtime = root / "etc" / "localtime"
    key: str | None = None
    try:
        if localtime.is_symlink():
            # An absolute link (/usr/share/zoneinfo/Europe/Berlin) points outside the mount.
            target = os.readlink(localtime)
            if "zoneinfo/" in target:
                key = target.split("zoneinfo/", 1)[1]
                inside = root / "usr" / "share" / "zoneinfo" / key
                if inside.is_file():
                    with inside.open("rb") as fh:
                        return ZoneInfo.from_file(fh, key=key)
        elif localtime.is_file():
            with localtime.open("rb") as fh:
                return ZoneInfo.from_file(fh)
        if key is None:
            timezone_file = root / "etc" / "timezone"
            if timezone_file.is_file():
                key = timezone_file.read_text(encoding="utf-8", errors="replace").strip()
        return ZoneInfo(key) if key else None
    except (OSError, ValueError, KeyError):
        return None


def discover(paths: Sequence[str | os.PathLike[str]]) -> Discovery:
    """The sources under `paths`, in reading order. A path that does not exist is an error."""
    found = Discovery()
    seen: set[Path] = set()
    for arg in paths:
        path = Path(arg)
        if not path.exists():
            raise InputError(f"{arg}: no such file or directory")
        absolute = Path(os.path.abspath(path))
        tz = root_timezone(absolute if _is_root(absolute) else _guess_root(absolute))
        batch: list[tuple[Path, str]] = []
        if absolute.is_dir():
            if _is_root(absolute):
                for place, depth, text_logs in _root_locations(absolute):
                    batch.extend(_walk(place, depth, found.warnings, text_logs))
            else:
                batch.extend(_walk(absolute, _WALK_DEPTH, found.warnings))
            if not batch:
                found.warnings.append(f"{arg}: no logs found in this folder")
        else:
            batch.append((absolute, _kind_for_named_file(absolute)))
        sources = [Source(p, kind, tz) for p, kind in batch]
        for source in sorted(sources, key=_order):
            key = source.path.resolve()
            if key not in seen:
                seen.add(key)
                found.sources.append(source)
    return found
