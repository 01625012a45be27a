"""The code in the Markdown pages: runnable blocks run, included files exist.

A page's Python code is either included from a file under examples/ (the
``--8<--`` snippet syntax; test_examples.py runs those files) or written
inline. An inline block preceded by ``<!-- runnable -->`` is executed here,
in a fresh interpreter; any other inline Python block must be marked
``<!-- fragment -->`` (a piece of a larger program that cannot run alone), so
that no example in the docs goes untested by accident.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import DOCS, ROOT, run_python

_FENCE = re.compile(
    r"^(?P<marker><!-- (?P<kind>runnable|fragment) -->\n)?"
    r"```(?P<lang>\w+)(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)
_SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    lang: str
    kind: str | None
    body: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page of the site (generated parts excluded: they are not in the source),
    and the README."""
    return [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)]


def blocks() -> list[Block]:
    found = []
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            found.append(
                Block(
                    page=page.relative_to(ROOT).as_posix(),
                    line=text.count("\n", 0, match.start("lang")) + 1,
                    lang=match["lang"],
                    kind=match["kind"],
                    body=match["body"],
                )
            )
    return found


RUNNABLE = [block for block in blocks() if block.kind == "runnable"]

#: Pages whose every Python block must be runnable, included or a fragment. The
#: pages other engineers write (transport, signaling-server, wasm, benchmarks)
#: may adopt the markers and join this list.
CHECKED_PAGES = {
    "README.md",
    "docs/index.md",
    "docs/getting-started.md",
    "docs/concepts.md",
    "docs/protocol.md",
    "docs/sans-io.md",
    "docs/comparison.md",
}


def test_the_docs_have_runnable_blocks() -> None:
    assert len(RUNNABLE) >= 3, [str(b) for b in RUNNABLE]
    assert any(block.page == "README.md" for block in RUNNABLE), "the README's example runs"
    assert all((ROOT / page).is_file() for page in CHECKED_PAGES)


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_runnable_block_runs(block: Block) -> None:
    assert block.lang == "python", f"{block}: only Python blocks can be runnable"
    run_python("-c", block.body, timeout=60)


def test_every_inline_python_block_is_runnable_included_or_a_fragment() -> None:
    unmarked = [
        str(block)
        for block in blocks()
        if block.page in CHECKED_PAGES
        and block.lang == "python"
        and block.kind is None
        and not _SNIPPET.fullmatch(block.body.strip())
    ]
    assert not unmarked, f"mark these <!-- runnable --> or <!-- fragment -->: {unmarked}"


def test_every_included_file_exists_under_examples() -> None:
    included = [
        match["path"]
        for page in pages()
        for match in _SNIPPET.finditer(page.read_text(encoding="utf-8"))
    ]
    assert included, "no page includes an example"
    for path in included:
        assert path.startswith("examples/"), f"{path}: examples live under examples/"
        assert (ROOT / path).is_file(), path


def test_a_failing_runnable_block_would_fail() -> None:
    """The runner really runs the code: an assertion in a block fails the test."""
    with pytest.raises(AssertionError, match="exited 1"):
        run_python("-c", "assert 1 + 1 == 3", timeout=60)


def test_the_readme_names_the_licence_pyproject_declares() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        licence = tomllib.load(file)["project"]["license"]
    licence = licence if isinstance(licence, str) else licence["text"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert licence == "AGPL-3.0-or-later"
    assert "## Licence" in readme and f"`{licence}`" in readme
