"""Where reads spool their Parquet parts: one folder per read under a project-owned root, swept when left behind.

A read removes its folder on every path it controls (success, a failed write, an exception). A process that is
killed cannot, so each folder carries the owner's pid in its name and the next read sweeps the folders whose owner
is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from esputnik_assets.processes import process_alive

ROOT_NAME = "esputnik-assets-spool"
STALE_AFTER_SECONDS = 24 * 3600  # a folder this old is swept even if its pid was reused by another process


def spool_root(base: str | None = None) -> Path:
    return Path(base or tempfile.gettempdir()) / ROOT_NAME


def sweep_stale(root: Path, log: logging.Logger) -> int:
    """Remove spool folders whose process has ended (or that are a day old); returns how many went."""
    if not root.is_dir():
        return 0
    swept = 0
    for folder in root.iterdir():
        pid_text = folder.name.rsplit("-", 2)[-2] if folder.name.count("-") >= 2 else ""
        if not folder.is_dir() or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        age = time.time() - folder.stat().st_mtime
        if pid == os.getpid() or (process_alive(pid) and age < STALE_AFTER_SECONDS):
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("Removed a spool folder left behind by an ended process: %s (%d bytes)", folder, size)
        swept += 1
    return swept


@contextmanager
def spool_dir(source: str, log: logging.Logger, base: str | None = None) -> Iterator[Path]:
    """A fresh spool folder for one read of `source`, removed when the block ends however it ends."""
    root = spool_root(base)
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale(root, log)
    folder = root / f"{source}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
