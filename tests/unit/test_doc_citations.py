"""Docstrings, comments and messages that send a reader to the documentation name a page
and section that exist: the README's sections moved to docs/ pages, and citations such as
README "URLs" pointed at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "lakeshift"
#: ``README "Section"``, ``docs/page.md "Section"`` (also ``docs/page.md, \"Section\"``
#: inside a message string), or a page alone.
_CITATION = re.compile(r'(README|docs/[\w-]+\.md)(?:,? \\?"([^"\\]+)\\?")?')


def _headings(page: Path) -> list[str]:
    return [ln.lstrip("#").strip().replace("`", "").lower()
            for ln in page.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]


def test_every_cited_page_and_section_exists() -> None:
    wrong: list[str] = []
    cited = 0
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        text = path.read_text(encoding="utf-8")
        for m in _CITATION.finditer(text):
            page, section = m.group(1), m.group(2)
            if page == "README" and section is None:
                continue  # the word, not a citation
            cited += 1
            file = ROOT / ("README.md" if page == "README" else page)
            where = f"{rel}: {m.group(0)}"
            if not file.is_file():
                wrong.append(f"{where} (no such page)")
            elif section is not None and not any(
                    h.startswith(section.lower()) for h in _headings(file)):
                wrong.append(f"{where} (no such section)")
    assert cited > 10
    assert wrong == [], "\n".join(wrong)
