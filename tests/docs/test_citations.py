"""Docstrings and pages cite what users have: the published docs pages, not project files.

The project's design notes (``shared/DESIGN.md``, ``PROTOCOL.md``, ``STYLE.md``,
``notes/...``) sit beside the repository, not in it: a user reading a docstring
(``help()``, the API reference) or a page cannot follow them. Docstrings cite
``docs/PAGE.md, "Heading"`` instead, and each such citation must name a page
and a heading that exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import DOCS, EXAMPLES, ROOT

#: What users do not have: the shared/ folder and the design files in it.
UNPUBLISHED = re.compile(r"shared/[\w./-]*|\b(?:DESIGN|PROTOCOL|STYLE|DEVELOPERS)\.md\b")

#: ``docs/protocol.md, "Join"`` or ``docs/concepts.md`` (a heading is optional).
CITATION = re.compile(r'docs/(?P<page>[\w/-]+\.md)(?:,\s+"(?P<heading>[^"]+)")?')


def docstrings(path: Path) -> list[tuple[int, str]]:
    """Every docstring of a module: of the module, classes, functions and attributes.

    An attribute's docstring is a string statement after it (what Griffe and
    mkdocstrings show); any bare string statement counts.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        (node.lineno, node.value.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def sources() -> list[Path]:
    return sorted([*(ROOT / "unisockets").rglob("*.py"), *EXAMPLES.rglob("*.py")])


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


def unpublished_citations(path: Path) -> list[str]:
    """``path:line: text`` for each docstring of ``path`` that cites an unpublished file."""
    return [
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {match[0]}"
        for line, text in docstrings(path)
        for match in UNPUBLISHED.finditer(text)
    ]


def headings(page: Path) -> set[str]:
    """The ATX headings of a Markdown page, without the ``#`` marks."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {m[1].strip() for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def test_the_sources_have_docstrings_to_check() -> None:
    assert len(sources()) > 50
    assert sum(len(docstrings(path)) for path in sources()) > 500


def test_no_docstring_cites_a_file_users_do_not_have() -> None:
    found = [hit for path in sources() for hit in unpublished_citations(path)]
    assert not found, f'cite docs/PAGE.md, "Heading" instead: {found}'


def test_no_page_cites_a_file_users_do_not_have() -> None:
    found = [
        f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match[0]}"
        for page in pages()
        for text in [page.read_text(encoding="utf-8")]
        for match in UNPUBLISHED.finditer(text)
    ]
    assert not found, found


def test_every_docs_citation_names_a_page_and_heading_that_exist() -> None:
    cited = 0
    wrong = []
    for path in sources():
        for line, text in docstrings(path):
            for match in CITATION.finditer(re.sub(r"\s+", " ", text)):
                cited += 1
                page = DOCS / match["page"]
                where = f"{path.relative_to(ROOT)}:{line}: {match[0]}"
                if not page.is_file():
                    wrong.append(f"{where}: no such page")
                elif match["heading"] and match["heading"] not in headings(page):
                    wrong.append(f"{where}: no such heading on {match['page']}")
    assert cited >= 25
    assert not wrong, wrong


def test_the_check_finds_a_citation_of_shared_files(tmp_path: Path) -> None:
    """A planted citation in a method docstring is found (the test above can fail)."""
    module = tmp_path / "planted.py"
    module.write_text(
        'class A:\n    def f(self) -> None:\n        """Do it (shared/PROTOCOL.md, "Join")."""\n'
    )
    assert unpublished_citations(module) == [f"{module}:3: shared/PROTOCOL.md"]


@pytest.mark.parametrize(
    ("text", "page", "heading"),
    [
        ('(docs/protocol.md, "Bind and listen")', "protocol.md", "Bind and listen"),
        ("see docs/concepts.md.", "concepts.md", None),
    ],
)
def test_citation_pattern(text: str, page: str, heading: str | None) -> None:
    match = CITATION.search(text)
    assert match is not None
    assert (match["page"], match["heading"]) == (page, heading)
