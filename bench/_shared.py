"""What the bench scripts share: where the corpus is and how the generator's manifest is named.

Kept import-free of crashcart so the generator runs without the package installed.
"""

from __future__ import annotations

import os
from pathlib import Path

MIB = 1 << 20  # "MB" in every bench figure is a mebibyte: sizes and MB/s use the same unit
REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_SUFFIX = ".manifest.json"


def shared_dir() -> Path:
    """shared/ beside the clone, or wherever CRASHCART_SHARED points (as tests/conftest.py)."""
    override = os.environ.get("CRASHCART_SHARED")
    if override:
        return Path(override).resolve()
    return (REPO_ROOT / ".." / "shared").resolve()


def qemu_corpus() -> Path:
    """The real QEMU captures; a clear error when they are missing rather than an empty bench."""
    corpus = shared_dir() / "corpus" / "qemu"
    if not corpus.is_dir():
        raise SystemExit(f"QEMU corpus not found at {corpus} (set CRASHCART_SHARED to shared/)")
    return corpus


def manifest_path(log: Path) -> Path:
    """The generator writes what it embedded next to the log, so the bench can check counts."""
    return log.with_name(log.name + MANIFEST_SUFFIX)
