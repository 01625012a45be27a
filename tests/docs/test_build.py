"""The site builds with ``mkdocs build --strict`` (warnings are errors), and says what it should."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import unisockets.net
import unisockets.protocol
from unisockets.protocol.messages import MESSAGE_TYPES

from .conftest import EXAMPLES, HOOKS, ROOT

sys.path.insert(0, str(HOOKS))

import docgen_api


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site, built strictly into a temporary directory (once for this module)."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-8000:]}"
    yield out


def _page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


@pytest.mark.timeout(300)
def test_every_page_is_built_and_nothing_is_left_unexpanded(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 15
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<!-- gen:" not in text, page
        assert "--8&lt;--" not in text and '--8<--"' not in text, page


@pytest.mark.timeout(300)
def test_protocol_page_has_every_opcode_frames_and_diagrams(site: Path) -> None:
    text = _page(site, "protocol")
    for opcode in MESSAGE_TYPES:
        assert f'id="opcode-{opcode}"' in text
    diagrams = re.findall(r'<pre class="mermaid"><code>(.*?)</code></pre>', text, re.DOTALL)
    assert sum("sequenceDiagram" in d for d in diagrams) == 7
    assert sum("stateDiagram-v2" in d for d in diagrams) == 5


@pytest.mark.timeout(300)
def test_examples_are_included_verbatim(site: Path) -> None:
    text = html.unescape(re.sub(r"<[^>]+>", "", _page(site, "getting-started")))
    for example in ("trio/echo_server.py", "anyio/echo_client.py", "native/echo_server.py"):
        source = (EXAMPLES / example).read_text(encoding="utf-8")
        for line in source.splitlines():
            assert line.strip() in text, f"{example}: {line!r}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("package", "page"),
    [(unisockets.net, "reference/net"), (unisockets.protocol, "reference/protocol")],
)
def test_reference_documents_every_exported_name(site: Path, package: object, page: str) -> None:
    text = _page(site, page)
    name = package.__name__  # type: ignore[attr-defined]
    targets = dict(re.findall(r"\[`(\w+)`\]\[([\w.]+)\]", docgen_api.exports(name)))
    assert set(targets) == set(package.__all__)  # type: ignore[attr-defined]
    for exported, target in targets.items():
        assert f'id="{target}"' in text, f"{exported}: no {target} documented on {page}"
        assert f'href="#{target}"' in text, f"{exported}: the export table does not link it"
    assert ":class:`" not in text and ":meth:`" not in text, "RST roles left in the reference"
