"""kubelet's AtomicWriter, in small: a volume's files change all at once.

    <dir>/..data -> ..2024_01_01_00_00_00.123456   (swapped with one rename)
    <dir>/<file> -> ..data/<file>

A reader never sees half of an update, and a program watching <dir>/..data sees one event.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)

DATA = "..data"


def write(directory: Path, payload: Payload) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
    fresh = directory / stamp
    fresh.mkdir()
    for rel, (content, mode) in payload.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    previous = os.readlink(directory / DATA) if (directory / DATA).is_symlink() else None
    tmp = directory / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(stamp, tmp)
    os.replace(tmp, directory / DATA)
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            os.symlink(f"{DATA}/{top}", link)
    for entry in directory.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in tops:
            entry.unlink()  # a key that disappeared from the ConfigMap
    if previous and previous != stamp:
        shutil.rmtree(directory / previous, ignore_errors=True)
