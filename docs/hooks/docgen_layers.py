"""The package's layering as a Mermaid diagram, generated from the test that enforces it.

tests/test_layering.py lists, as data (``ALLOWED``), each layer of the
package and the layers it may import, and fails if the code imports along
any other arrow or no longer uses a listed one. This module draws that data,
so the diagram in docs/concepts.md cannot drift from what the code does. The
test file is read as a module by path (it imports nothing beyond the
standard library).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["DESCRIPTIONS", "TRIO_DRIVERS", "allowed", "layers_diagram"]

#: The test that holds the arrows.
LAYERING_TEST = Path(__file__).resolve().parents[2] / "tests" / "test_layering.py"

#: What each layer is, as its box in the diagram says it (the order helps the layout).
DESCRIPTIONS = {
    "__main__": "python -m unisockets",
    "cli": "the unisockets command",
    "wasm": "WebAssembly guests on a node's sockets",
    "unisockets": "the one-import API",
    "net": "nodes, listeners, streams, sockets",
    "transport": "pipes to peers: WebRTC (aiortc or native), memory",
    "_rtc": "the native WebRTC core: str0m in Rust (optional)",
    "signaling": "signaling server and client over WebSockets",
    "_nursery": "the trio drivers' nursery helper (private)",
    "aio": "asyncio natively: the driver on aiortc, in the caller's loop",
    "browser": "a node in a browser tab: the driver on the page's WebRTC",
    "driver": "the asyncio driver: no trio, anyio, aiortc",
    "protocol": "sans-IO core: standard library only",
}


#: The layers drawn together as the native (trio) drivers of the core.
TRIO_DRIVERS = ("net", "transport", "signaling", "_nursery")


@cache
def _test_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unisockets_layering_test", LAYERING_TEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def allowed() -> dict[str, frozenset[str]]:
    """Each layer and the layers it may import, as tests/test_layering.py enforces them.

    Raises:
        RuntimeError: a layer has no entry in :data:`DESCRIPTIONS` (or one is left over).
    """
    arrows: dict[str, frozenset[str]] = _test_module().ALLOWED
    if set(arrows) != set(DESCRIPTIONS):
        raise RuntimeError(
            f"DESCRIPTIONS and the layers disagree: {sorted(set(arrows) ^ set(DESCRIPTIONS))}"
        )
    return arrows


def _node_id(layer: str) -> str:
    return layer.strip("_")


def _title(layer: str) -> str:
    if layer == "unisockets":
        return "unisockets"
    if layer == "__main__":
        return "unisockets.__main__"
    return f"unisockets.{layer}"


def layers_diagram() -> str:
    """A fenced Mermaid flowchart: one box per layer, one arrow per allowed import.

    An arrow ``A --> B`` reads "A imports B"; importers are drawn above what
    they import. The trio drivers are grouped in a box, so that the browser
    driver, their twin, stands beside them.

    Returns:
        A ```` ```mermaid ```` block.
    """
    arrows = allowed()
    lines = ["flowchart TD"]

    def box(layer: str, indent: str = "    ") -> None:
        lines.append(f'{indent}{_node_id(layer)}["{_title(layer)}<br>{DESCRIPTIONS[layer]}"]')

    for layer in DESCRIPTIONS:
        if layer not in TRIO_DRIVERS:
            box(layer)
    lines.append('    subgraph trio["the trio drivers"]')
    for layer in TRIO_DRIVERS:
        box(layer, "        ")
    lines.append("    end")
    for layer in DESCRIPTIONS:
        for target in sorted(arrows[layer], key=list(DESCRIPTIONS).index):
            lines.append(f"    {_node_id(layer)} --> {_node_id(target)}")
    return "```mermaid\n" + "\n".join(lines) + "\n```\n"
