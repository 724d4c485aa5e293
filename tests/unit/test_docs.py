"""What a user who clones the repository reads: every document it cites is in the repository.

Code, tests and documents cite RFCs, AWS's documentation (by URL) or the repository's own files;
never a file that exists only on the machine they were written on (``../shared/...``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".ini"}
SKIPPED_DIRS = {"build", "test-artifacts", "node_modules", "__pycache__"}
# A file name ending in .md (with an optional path before it), not part of a URL.
CITED_DOCUMENT = re.compile(r"(?<![\w/.:-])((?:\.\.?/)*[\w-]+(?:/[\w-]+)*\.md)\b")


def repository_text_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        hidden = any(p.startswith(".") and p != ".chalice" for p in parts[:-1])
        if hidden or SKIPPED_DIRS & set(parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name == "Makefile":
            found.append(path)
    return found


def test_every_cited_document_is_in_the_repository() -> None:
    files = repository_text_files()
    names = {p.name for p in files if p.suffix == ".md"}
    missing = []
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for cited in CITED_DOCUMENT.findall(line):
                reachable = (path.parent / cited).resolve().is_file() or (
                    "/" not in cited and cited in names
                )
                if cited.startswith("../") or not reachable:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {cited}")
    assert missing == [], "cite RFCs, AWS's documentation or the repository's own files"
