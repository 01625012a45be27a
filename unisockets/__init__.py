"""unisockets: Berkeley sockets over WebRTC data channels, natively and in the browser.

The public API (docs/getting-started.md walks through it)::

    async with unisockets.open_signaling_server(host="127.0.0.1", port=0) as server:
        async with unisockets.open_node(server.url, subnet="10.0.0") as node:
            async with node.listen(1234) as listener:
                stream = await listener.accept()

The layers (docs/concepts.md, "The layers", draws who imports whom):

- :mod:`unisockets.protocol`: the sans-IO core (signaling protocol, stream
  framing, socket states), standard library only.
- :mod:`unisockets.signaling`: trio drivers of the protocol over WebSockets
  (the signaling server and the node's signaling client).
- :mod:`unisockets.transport`: moves bytes between peers (WebRTC, in-memory).
- :mod:`unisockets.net`: nodes, listeners, streams and socket objects.
- :mod:`unisockets.wasm`: WebAssembly programs on a node's sockets.
- :mod:`unisockets.browser`: a node in a browser tab (Pyodide's asyncio).
- :mod:`unisockets.cli`: the ``unisockets`` command.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .net import (
        AF_INET,
        SHUT_RD,
        SHUT_RDWR,
        SHUT_WR,
        SOCK_DGRAM,
        SOCK_STREAM,
        AnyioConnectedUDPSocket,
        AnyioListener,
        AnyioSocketStream,
        AnyioUDPSocket,
        DatagramSocket,
        Node,
        Socket,
        SocketStream,
        connect,
        listen,
        open_node,
    )
    from .signaling import ServerLimits, SignalingError, open_signaling_server, serve_signaling

#: Where each public name lives. They are imported on first use, so that
#: ``import unisockets.protocol`` stays free of trio, anyio and aiortc (the
#: sans-IO core must load in any runtime, e.g. Pyodide in a browser).
_EXPORTS = {
    **dict.fromkeys(
        [
            "AF_INET",
            "SHUT_RD",
            "SHUT_RDWR",
            "SHUT_WR",
            "SOCK_DGRAM",
            "SOCK_STREAM",
            "AnyioConnectedUDPSocket",
            "AnyioListener",
            "AnyioSocketStream",
            "AnyioUDPSocket",
            "DatagramSocket",
            "Node",
            "Socket",
            "SocketStream",
            "connect",
            "listen",
            "open_node",
        ],
        ".net",
    ),
    **dict.fromkeys(
        ["ServerLimits", "SignalingError", "open_signaling_server", "serve_signaling"],
        ".signaling",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a public name from its layer on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unisockets' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AF_INET",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "AnyioConnectedUDPSocket",
    "AnyioListener",
    "AnyioSocketStream",
    "AnyioUDPSocket",
    "DatagramSocket",
    "Node",
    "ServerLimits",
    "SignalingError",
    "Socket",
    "SocketStream",
    "__version__",
    "connect",
    "listen",
    "open_node",
    "open_signaling_server",
    "serve_signaling",
]


def __dir__() -> list[str]:
    """The module's names, including the public ones not imported yet."""
    return sorted({*globals(), *_EXPORTS})
