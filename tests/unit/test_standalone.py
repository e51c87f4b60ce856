"""The repository stands alone: nothing it tracks points beside the clone, and every
relative link in its documents resolves inside it. (The session-wide audit hook in
tests/fixtures/standalone.py catches reads at run time; this catches references.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from support.standalone import escapes_clone

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".yaml", ".yml", ".cfg", ".txt", ".lua", ".tpl"}
BESIDE_THE_CLONE = re.compile(r"\.\./shared\b|/work/shared|shared/fixtures/ccxt")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        REPO_ROOT / n
        for n in names
        if (Path(n).suffix in TEXT_SUFFIXES or Path(n).name in {"Makefile", "run"})
        and (REPO_ROOT / n).is_file()
    ]


def test_the_audit_rule() -> None:
    repo, temp = Path("/w/clone"), Path("/tmp")
    assert escapes_clone("/w/shared/fixtures/x.json", repo, temp)
    assert escapes_clone("/w/clone/../shared/DESIGN.md", repo, temp)
    assert escapes_clone("/w/other-clone/pyproject.toml", repo, temp)
    assert not escapes_clone("/w/clone/tests/data/x.json", repo, temp)
    assert not escapes_clone("/usr/lib/python3.11/os.py", repo, temp)
    assert not escapes_clone("/tmp/pytest-of-root/x", Path("/tmp/clone"), temp)


def test_nothing_tracked_points_beside_the_clone() -> None:
    this = Path(__file__).resolve()
    hits = []
    for path in tracked_text_files():
        if path == this:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if BESIDE_THE_CLONE.search(line):
                hits.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not hits, "references outside the clone:\n" + "\n".join(hits)


def markdown_files() -> list[Path]:
    return [p for p in tracked_text_files() if p.suffix == ".md"]


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    broken = []
    for target in MARKDOWN_LINK.findall(doc.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same document
        resolved = (doc.parent / target.split("#", 1)[0]).resolve()
        if REPO_ROOT not in resolved.parents and resolved != REPO_ROOT:
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (missing)")
    assert not broken, f"{doc.relative_to(REPO_ROOT)}: " + ", ".join(broken)


def test_the_architecture_document_is_linked_from_the_readme() -> None:
    assert "](docs/architecture.md)" in (REPO_ROOT / "README.md").read_text()
