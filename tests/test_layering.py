"""The layers of unisockets import one another only along the arrows listed here.

Read statically: every module of the package is parsed (:mod:`ast`, nothing
is imported) and each import of one of our modules becomes an arrow from the
importing module's layer to the imported one's. A layer is a subpackage
(``protocol``, ``net``, ...), a top-level module (``_nursery``,
``__main__``), or ``unisockets`` itself, the one-import facade of its
``__init__``. Imports under ``if TYPE_CHECKING:`` and inside functions count
too: they are arrows all the same.

:data:`ALLOWED` is the data: each layer and the layers it may import. The
diagram in docs/concepts.md ("The layers") is generated from it
(docs/hooks/docgen_layers.py), and every arrow listed must be one the code
uses, so the diagram shows the real layering. The sans-IO core's
standard-library-only rule is tests/protocol/test_purity.py's; the browser
driver's runtime rule is checked both here (statically) and in
tests/browser/test_purity.py (by importing it without trio).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "unisockets"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

#: Each layer and the layers its modules may import (an arrow means "imports").
#: Imports within a layer are always allowed. Keep the arrows the code uses,
#: no more: a new arrow is a design decision, made here, where it is reviewed.
ALLOWED: dict[str, frozenset[str]] = {
    # the sans-IO core: standard library only (tests/protocol/test_purity.py)
    "protocol": frozenset(),
    # the trio nursery helper the trio drivers share (private)
    "_nursery": frozenset(),
    # the native WebRTC core, a Rust extension module (rtc/; its types in _rtc.pyi)
    "_rtc": frozenset(),
    # message pipes between peers: memory, WebRTC (aiortc, or str0m through _rtc);
    # never signaling opcodes
    "transport": frozenset({"protocol", "_nursery", "_rtc"}),
    # the signaling server and client over WebSockets (trio)
    "signaling": frozenset({"protocol", "_nursery"}),
    # nodes, listeners, streams, sockets: what programs hold
    "net": frozenset({"protocol", "transport", "signaling", "aio", "_nursery"}),
    # WebAssembly guests whose sockets are a node's
    "wasm": frozenset({"net"}),
    # the asyncio driver of the core, on a runtime's WebSocket and WebRTC (no third party)
    "driver": frozenset({"protocol"}),
    # the driver in a browser tab: Pyodide's asyncio, the page's WebSocket and WebRTC; from
    # wasm only the stdlib-only import table and memory checks (abi, memory) for programs
    "browser": frozenset({"driver", "protocol", "wasm"}),
    # the driver natively: aiortc, or str0m through _rtc, and wsproto in the caller's asyncio loop
    "aio": frozenset({"driver", "protocol", "transport", "_rtc"}),
    # the one-import API (unisockets/__init__.py, lazy re-exports)
    "unisockets": frozenset({"net", "signaling"}),
    # the command line, on top of everything it runs
    "cli": frozenset({"unisockets", "protocol", "signaling", "net", "wasm"}),
    # python -m unisockets
    "__main__": frozenset({"cli"}),
}

#: Third-party modules a layer must not import, even lazily (Pyodide has none of them).
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {
    # asyncio natively: no trio in the caller's asyncio loop (no thread, no bridge)
    "aio": frozenset({"trio", "trio_websocket", "trio_asyncio", "outcome"}),
    "browser": frozenset(
        {
            "trio",
            "trio_websocket",
            "trio_asyncio",
            "anyio",
            "aiortc",
            "aioice",
            "wsproto",
            "outcome",
            "wasmtime",
        }
    ),
}
FORBIDDEN_THIRD_PARTY["driver"] = FORBIDDEN_THIRD_PARTY["browser"]  # it runs under Pyodide too


def layer_of(module: str) -> str:
    """The layer of a dotted module name of ours: ``unisockets.net.node`` -> ``"net"``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def module_name(path: Path) -> str:
    """``unisockets/net/node.py`` -> ``unisockets.net.node`` (a package: its ``__init__``'s)."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_layer(name: str) -> bool:
    return any((PACKAGE_DIR / f"{name}{suffix}").exists() for suffix in ("", ".py", ".pyi"))


def imported_modules(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every module an import statement of ``source`` names.

    Relative imports are resolved against ``module``; ``from unisockets
    import net`` names ``unisockets.net``, ``from unisockets import
    open_node`` names ``unisockets`` (the facade).

    Args:
        source: the module's Python source.
        module: its dotted name, e.g. ``"unisockets.net.node"``.
        is_package: whether it is a package's ``__init__``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == PACKAGE:  # the facade, or a layer by name
                for alias in node.names:
                    named = _is_layer(alias.name)
                    yield node.lineno, f"{PACKAGE}.{alias.name}" if named else PACKAGE
            elif node.module is None:  # from . import a, b: submodules
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def arrows(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, layer)`` for each import of ``source`` that leaves its own layer."""
    here = layer_of(module)
    for line, target in imported_modules(source, module, is_package=is_package):
        if target.split(".")[0] == PACKAGE and layer_of(target) != here:
            yield line, layer_of(target)


def _sources() -> list[Path]:
    """Every module's source: ``.py`` files, and the stubs of extension modules (``.pyi``)."""
    stubs = [path for path in PACKAGE_DIR.rglob("*.pyi") if not path.with_suffix(".py").exists()]
    return sorted([*PACKAGE_DIR.rglob("*.py"), *stubs])


def _all_arrows() -> Iterator[tuple[str, int, str, str]]:
    """``(path, line, from layer, to layer)`` of every cross-layer import of the package."""
    for path in _sources():
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        for line, target in arrows(source, module, is_package=path.name == "__init__.py"):
            yield str(path.relative_to(PACKAGE_DIR.parent)), line, layer_of(module), target


def test_every_module_belongs_to_a_listed_layer() -> None:
    layers = {layer_of(module_name(path)) for path in _sources()}
    assert layers == set(ALLOWED), "add the new layer (or drop the gone one) in ALLOWED"
    assert len(_sources()) > 50


def test_imports_follow_the_allowed_arrows() -> None:
    offenders = [
        f"{path}:{line}: {source} imports {target}"
        for path, line, source, target in _all_arrows()
        if target not in ALLOWED[source]
    ]
    assert offenders == []


def test_every_allowed_arrow_is_used() -> None:
    """So that the generated diagram shows the layering as it is, not as it may be."""
    used = {(source, target) for _, _, source, target in _all_arrows()}
    listed = {(source, target) for source, targets in ALLOWED.items() for target in targets}
    assert listed - used == set(), "no module imports along these arrows: remove them"


def test_the_arrows_have_no_cycle_and_nothing_imports_the_cli() -> None:
    assert [layer for layer, targets in ALLOWED.items() if "cli" in targets] == ["__main__"]
    assert all(
        targets <= set(ALLOWED) and layer not in targets for layer, targets in ALLOWED.items()
    )
    order: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:
        ready = [layer for layer, targets in remaining.items() if targets <= set(order)]
        assert ready, f"a cycle among {sorted(remaining)}"
        order += ready
        for layer in ready:
            del remaining[layer]
    assert order[0] == "protocol"


def test_layers_import_no_forbidden_runtime() -> None:
    offenders = []
    for path in _sources():
        module = module_name(path)
        forbidden = FORBIDDEN_THIRD_PARTY.get(layer_of(module), frozenset())
        source = path.read_text(encoding="utf-8")
        offenders += [
            f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {name}"
            for line, name in imported_modules(
                source, module, is_package=path.name == "__init__.py"
            )
            if name.split(".")[0] in forbidden
        ]
    assert offenders == []
    assert FORBIDDEN_THIRD_PARTY["browser"].isdisjoint(sys.stdlib_module_names)


def test_the_checker_sees_relative_absolute_lazy_and_facade_imports() -> None:
    """A wrong arrow of each spelling would be caught (the test above can fail)."""
    source = """
from __future__ import annotations
import unisockets.signaling.client
from ..net import node
from .. import cli
from . import stream
from unisockets import open_node
from unisockets import protocol as p

def later():
    from ..browser.links import PeerLinks
    import trio
"""
    found = list(arrows(source, "unisockets.transport.memory", is_package=False))
    assert sorted(found) == [
        (3, "signaling"),
        (4, "net"),
        (5, "cli"),
        (7, "unisockets"),
        (8, "protocol"),
        (11, "browser"),
    ]
    init = "from ..protocol import x\nfrom .base import y\n"
    assert list(arrows(init, "unisockets.transport", is_package=True)) == [(1, "protocol")]
    names = [
        name
        for _, name in imported_modules(source, "unisockets.transport.memory", is_package=False)
    ]
    assert "trio" in names and "unisockets.transport.stream" in names


def test_the_concepts_page_draws_exactly_these_arrows() -> None:
    """docs/concepts.md's diagram is generated from ALLOWED (docs/hooks/docgen_layers.py)."""
    sys.path.insert(0, str(PACKAGE_DIR.parent / "docs" / "hooks"))
    import docgen_layers

    diagram = docgen_layers.layers_diagram()
    ids = {layer.strip("_"): layer for layer in ALLOWED}
    drawn = {
        (ids[source], ids[target])
        for source, target in (
            line.strip().split(" --> ") for line in diagram.splitlines() if "-->" in line
        )
    }
    assert drawn == {(source, target) for source, targets in ALLOWED.items() for target in targets}
    assert all(f'{layer.strip("_")}["' in diagram for layer in ALLOWED)
    concepts = (PACKAGE_DIR.parent / "docs" / "concepts.md").read_text(encoding="utf-8")
    assert "\n<!-- gen: layers -->\n" in concepts
