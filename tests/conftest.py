"""Shared fixtures: where ../shared (the design, the corpora, the labs) is.

shared/ lives beside the clone (`../shared`), or wherever CRASHCART_SHARED points. Tests that need
it skip when it is missing, except under CRASHCART_REQUIRE_LAB=1 (CI), where a missing corpus must
fail loudly rather than let the suite pass having tested nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_path() -> Path:
    override = os.environ.get("CRASHCART_SHARED")
    if override:
        return Path(override).resolve()
    return (REPO_ROOT / ".." / "shared").resolve()


def _require(path: Path, what: str) -> Path:
    if path.is_dir():
        return path
    message = f"{what} not found at {path} (set CRASHCART_SHARED to shared/)"
    if os.environ.get("CRASHCART_REQUIRE_LAB") == "1":
        pytest.fail(message + " and CRASHCART_REQUIRE_LAB=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder beside the clone."""
    return _require(_shared_path(), "shared/")


@pytest.fixture(scope="session")
def qemu_corpus(shared_dir: Path) -> Path:
    """Real Debian kernels crashing under QEMU: NAME.log, NAME.cast, NAME.expected.json."""
    return _require(shared_dir / "corpus" / "qemu", "the QEMU corpus")


@pytest.fixture(scope="session")
def syzkaller_corpus(shared_dir: Path) -> Path:
    """The syzkaller development corpus (read in place; never copy it into the repo)."""
    return _require(shared_dir / "corpus" / "syzkaller-dev", "the syzkaller corpus")


# Peer-process helpers (start/stop by PID, require_commands) for integration tests.
from labtools import processes  # noqa: E402, F401
