"""asyncio as a first-class runtime: the asyncio driver on aiortc, in the caller's loop.

``unisockets.open_node`` (and ``unisockets.listen``/``connect``) use this
package when called under asyncio, e.g. from ``anyio.run(main,
backend="asyncio")`` or ``asyncio.run(main())``; under trio they use
:mod:`unisockets.net`. The node is the asyncio driver that also runs in
browser tabs (:mod:`unisockets.driver`: the sans-IO cores of
:mod:`unisockets.protocol` with I/O, timers and tasks on asyncio), here on
aiortc peer connections and a wsproto WebSocket
(:class:`~unisockets.aio.runtime.NativeRuntime`): no thread, no bridge.

- :func:`open_node` / :class:`AioNode`: join, listen, connect, socket objects;
- :class:`AioStream` (:class:`anyio.abc.ByteStream`) and :class:`AioListener`
  (:class:`anyio.abc.Listener`), with typed address attributes;
- :class:`AioTransport`: what ``open_node(transport=...)`` takes: the native
  core (:class:`NativeTransport`, str0m: what ``webrtc_backend="native"``
  and, with the extension built, the default ``"auto"`` pick), aiortc
  (:class:`AiortcTransport`) or in-process peer connections
  (:class:`MemoryNetwork`).
"""

from .memory import MemoryNetwork
from .native_rtc import NativeTransport
from .node import AioNode, open_node
from .runtime import AiortcTransport
from .runtime_base import AioTransport, RuntimeSettings
from .streams import AioListener, AioStream

__all__ = [
    "AioListener",
    "AioNode",
    "AioStream",
    "AioTransport",
    "AiortcTransport",
    "MemoryNetwork",
    "NativeTransport",
    "RuntimeSettings",
    "open_node",
]
