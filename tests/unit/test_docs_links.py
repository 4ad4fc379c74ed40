"""The README and the pages under docs/ link to each other (the README was split into pages,
session 20): every relative link names a file that exists, and every ``#anchor`` a heading of
the page it points to, as GitHub renders it — so a section moved or renamed cannot leave a
link behind that leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced blocks and code spans (a ``# comment`` in a shell block is no
    heading; ``[a-z](x)`` in backticks is no link)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation other than
    ``-`` and ``_`` removed, each space a ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "").lower()
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # GitHub numbers a repeated heading's anchor: -1, -2, …
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    return [t for t in _LINK.findall(_prose(page.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, https:, mailto: …


def test_slug_follows_github() -> None:
    assert slug("Which value wins with `run --config`") == "which-value-wins-with-run---config"
    assert slug("Partitions (`plan`)") == "partitions-plan"
    assert slug("URLs and how names map") == "urls-and-how-names-map"
    assert slug("Quick start (5 minutes, on the emulators)") == (
        "quick-start-5-minutes-on-the-emulators")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(REPO)}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page() -> None:
    """A page no one links to is a page no one finds: the README names every page under
    docs/ (architecture.md included)."""
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(REPO / "README.md")}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, missing


def test_the_readme_stays_short() -> None:
    """The README is the way in (quick start, commands, links); the reference lives in
    docs/. A new user found 1,194 lines too many to find anything in."""
    assert len((REPO / "README.md").read_text().splitlines()) <= 250
