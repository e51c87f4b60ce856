"""Guards for the repository layout that, when broken, break everything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_operator_folder_is_not_a_package() -> None:
    # operator/__init__.py would make `import operator` pick our folder over the standard
    # library whenever the repo root is on sys.path, breaking collections, ccxt and kopf.
    assert not (REPO_ROOT / "operator" / "__init__.py").exists()


def test_stdlib_operator_wins_with_repo_root_on_sys_path() -> None:
    code = "import operator, collections; print(operator.__file__); print(operator.itemgetter)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    first_line = out.stdout.splitlines()[0]
    assert not first_line.startswith(str(REPO_ROOT)), first_line


def test_both_entry_packages_import_from_the_installed_distribution() -> None:
    import tradebot_operator
    import tradebot_runtime

    assert Path(tradebot_operator.__file__).parent == REPO_ROOT / "operator" / "tradebot_operator"
    assert Path(tradebot_runtime.__file__).parent == REPO_ROOT / "runtime" / "tradebot_runtime"
