"""Numbers the pages quote next to a constant's name are the constant's value.

A page names the constant and gives its value in parentheses, e.g.
``HELLO_GRACE`` (3 s); this test fails when either drifts from the code
(issue 15: a page once said 1 s while the code waited 3 s).
"""

from __future__ import annotations

import re

import pytest

from unisockets.protocol import peer_link

from .conftest import DOCS

#: Constant name -> (its value in seconds, the pages that must quote it).
QUOTED = {
    "HELLO_GRACE": (peer_link.HELLO_GRACE, ("protocol.md", "transport.md")),
}


def _quotes(text: str, name: str) -> list[float]:
    """Every ``(N s`` right after a mention of ``name`` in backticks (same clause)."""
    return [float(n) for n in re.findall(rf"`{name}`[^()`]*\((\d+(?:\.\d+)?) s\b", text)]


@pytest.mark.parametrize("name", sorted(QUOTED))
def test_pages_quote_the_constants_value(name: str) -> None:
    value, pages = QUOTED[name]
    for page in pages:
        quotes = _quotes((DOCS / page).read_text(encoding="utf-8"), name)
        assert quotes, f"docs/{page} does not quote {name} with its value"
        assert quotes == [value] * len(quotes), f"docs/{page}: {name} is {value} s, not {quotes}"


def test_no_page_quotes_another_hello_wait() -> None:
    """No page states the legacy-detection wait without naming the constant."""
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        stray = re.findall(r"no hello within\s+(\d+(?:\.\d+)?) s", text)
        assert not stray, f"{page.name} says 'no hello within {stray[0]} s'"


def test_a_wrong_quote_would_fail() -> None:
    assert _quotes("within `HELLO_GRACE` (1 s) after", "HELLO_GRACE") == [1.0]
