"""Every ``method.md §N`` a comment or docstring cites is a section of docs/method.md, and no code
cites the old internal ``SPEC N`` numbering any more."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"method\.md (§[0-9][0-9.]*(?:(?:, | and |-)§[0-9][0-9.]*)*)")


def _sections() -> set[str]:
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#+ §([0-9][0-9.]*)", text, re.M)}


def _sources() -> list[Path]:
    return [p for d in ("src", "benchmarks", "scripts", "tests") for p in (ROOT / d).rglob("*.py")]


def test_every_cited_section_exists() -> None:
    sections = _sections()
    assert {"1", "3.3", "9.5", "11"} <= sections  # the parser sees the document's headings
    missing = []
    for path in _sources():
        for m in CITED.finditer(path.read_text(encoding="utf-8")):
            for num in re.findall(r"§([0-9][0-9.]*[0-9]|[0-9])", m.group(1)):
                if num not in sections:
                    missing.append(f"{path.relative_to(ROOT)}: §{num}")
    assert not missing, missing


def test_no_code_cites_the_internal_spec_numbering() -> None:
    old = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _sources()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bSPEC [0-9]", line) and p.name != "test_method_citations.py"
    ]
    assert not old, old
