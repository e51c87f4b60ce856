"""The rule of the standalone audit (tests/fixtures/standalone.py): which paths lie beside
the clone."""

from __future__ import annotations

import os
from pathlib import Path


def escapes_clone(path: str, repo: Path, temp: Path) -> bool:
    """True when ``path`` lies beside the clone ``repo`` (under its parent, not under it)
    and is not a temporary file."""
    resolved = Path(os.path.abspath(path))
    for inside in (repo, temp):
        if resolved == inside or inside in resolved.parents:
            return False
    return repo.parent in resolved.parents
