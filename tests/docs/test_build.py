"""The site builds with ``mkdocs build --strict`` (warnings are errors), and says what it should."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

import unisockets.net
import unisockets.protocol
from unisockets.protocol.messages import MESSAGE_TYPES

from .conftest import EXAMPLES, HOOKS

sys.path.insert(0, str(HOOKS))

import docgen_api


def _page(site: Path, path: str) -> str:
    return (site / f"{path}.html").read_text(encoding="utf-8")


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
    for example in (
        "trio/echo_server.py",
        "anyio/echo_client.py",
        "asyncio/echo_server.py",
        "native/echo_server.py",
    ):
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


#: Members the node uses and users must not call, which the reference once listed.
INTERNAL = [
    "unisockets.net.listeners.OverlayListener.set_ready",
    "unisockets.net.listeners.OverlayListener.fail",
    "unisockets.net.listeners.OverlayListener.offer",
    "unisockets.net.listeners.OverlayListener.cancel_scope",
    "unisockets.net.node.connection_label",
    "unisockets.driver.node.connection_label",
]


@pytest.mark.timeout(300)
def test_reference_hides_internal_members(site: Path) -> None:
    pages = {path: path.read_text(encoding="utf-8") for path in (site / "reference").glob("*.html")}
    text = "".join(pages.values())
    assert 'id="unisockets.net.listeners.OverlayListener.accept"' in text
    assert 'id="unisockets.net.listeners.OverlayListener.wait_ready"' in text
    for name in INTERNAL:
        owner, member = name.rsplit(".", 1)
        assert f'id="{name}"' not in text, name
        assert f'id="{owner}._{member}"' not in text, f"{owner}._{member}"
    # Undocumented special attributes are hidden like special methods (docs/hooks/griffe_public.py).
    for name in ("unisockets.wasm.memory.MemoryView", "unisockets.wasm.host.GuestSocket"):
        assert f'id="{name}"' in text
        assert f'id="{name}.__slots__"' not in text
