"""The ``unisockets_*`` imports of a WebAssembly program running in this tab, over the tab's node.

The page ``web/wasm.html`` (docs/wasm.md, "In a browser tab") loads an
unmodified wasm32-wasi program built for ``unisockets run`` and instantiates
it with WASI preview 1 from a JavaScript shim plus the imports served here:
the ``env.unisockets_*`` functions and the WASI functions that touch sockets
(the table :data:`unisockets.wasm.abi.IMPORTS` and
:data:`~unisockets.wasm.abi.WASI_SOCKET_FUNCTIONS`, the one the native
runner defines its imports from). A call that may wait returns an asyncio
future, which the page awaits inside a ``WebAssembly.Suspending`` import, so
JavaScript Promise Integration suspends the guest, not the tab; the others
return their result at once.

Behaviour follows the native runner (:mod:`unisockets.wasm.host`): POSIX
imports return -1 and write the guest's exported ``errno`` in WASI's
numbering (:func:`unisockets.wasm.abi.wasi_errno`); WASI functions return a
WASI errno. Addresses are the overlay's, as natively: ``0.0.0.0`` is the
node's own address, a program may bind any address that is no other node's
id (the original's default ``127.0.0.1`` included; another node's id is
``EADDRNOTAVAIL``, docs/protocol.md "Bind and listen"), and ``connect``
reaches any overlay address.

:meth:`TabGuest.stop` cancels the call in progress and fails every later
one: the page then throws out of the suspended import, which unwinds the
guest.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..driver.errors import oserror
from ..wasm import abi
from ..wasm.memory import MemoryView, efault
from ._js import js_global, require_browser
from .guest_sockets import EAGER, METHODS, GuestSocket, GuestSocketCalls
from .tab import BrowserNode, open_node

__all__ = ["GuestStopped", "JsMemoryView", "TabGuest", "start", "unimplemented"]

logger = logging.getLogger("unisockets.browser")


class GuestStopped(OSError):
    """A call of a guest that is being stopped (``ECANCELED``); the page unwinds the guest."""

    def __init__(self) -> None:
        super().__init__(errno.ECANCELED, "the guest is being stopped")


class JsMemoryView(MemoryView):
    """Bounds-checked access to a guest's ``WebAssembly.Memory`` from Python in the page.

    The memory's buffer is read again for every access (it is replaced when
    the memory grows). Checks and layouts are :class:`unisockets.wasm.memory.MemoryView`'s.

    Args:
        memory: the instance's exported ``WebAssembly.Memory`` (a JsProxy).
    """

    __slots__ = ("memory",)

    def __init__(self, memory: Any) -> None:
        super().__init__(0, int(memory.buffer.byteLength))
        self.memory = memory

    def check(self, pointer: int, size: int) -> int:
        self.length = int(self.memory.buffer.byteLength)
        return super().check(pointer, size)

    def read(self, pointer: int, size: int) -> bytes:
        offset = self.check(pointer, size)
        return bytes(
            js_global("Uint8Array").new(self.memory.buffer, offset, size & 0xFFFFFFFF).to_bytes()
        )

    def write(self, pointer: int, data: bytes | bytearray) -> None:
        offset = self.check(pointer, len(data))
        if data:
            js_global("Uint8Array").new(self.memory.buffer, offset, len(data)).assign(bytes(data))


def unimplemented() -> list[str]:
    """The imports of the shared table that a tab does not serve yet (they fail with ``ENOSYS``).

    Returns:
        Their names, sorted; empty when the tab serves the whole table.
    """
    names = {spec.name for spec in (*abi.IMPORTS, *abi.WASI_SOCKET_FUNCTIONS)}
    return sorted(names - set(METHODS))


def _not_implemented(spec: abi.ImportSpec, *, blocking: bool) -> Callable[..., Any]:
    def fail() -> OSError:
        logger.warning("%s is not served in a browser tab yet: ENOSYS", spec.name)
        return oserror(errno.ENOSYS, f"{spec.name} in a browser tab")

    if blocking:

        async def blocking_stub(*args: int) -> int:
            raise fail()

        return blocking_stub

    def stub(*args: int) -> int:
        raise fail()

    return stub


class TabGuest(GuestSocketCalls):
    """Serves one guest's socket imports from a node of this tab.

    Create it with :func:`start`; the page calls :meth:`attach` once the
    guest is instantiated, :meth:`call` for every import, :meth:`stop` from
    its stop button, and :meth:`aclose` when the guest has ended.

    Args:
        node: the tab's node whose sockets the guest uses.
    """

    def __init__(self, node: BrowserNode) -> None:
        self.node = node
        self.sockets: dict[int, GuestSocket] = {}
        self.last_errno = 0
        self.stopping = False
        self._finished = asyncio.Event()
        self._session: asyncio.Task[None] | None = None
        self._memory: JsMemoryView | None = None
        self._errno_address: int | None = None
        self._tasks: set[asyncio.Task[int]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._specs = {spec.name: spec for spec in (*abi.IMPORTS, *abi.WASI_SOCKET_FUNCTIONS)}
        self._implementations: dict[str, Callable[..., Any]] = {
            name: getattr(self, method) for name, method in METHODS.items()
        }
        for spec in self._specs.values():
            if spec.name not in self._implementations:
                # The table grew before this host learned the import: a program that
                # calls it gets ENOSYS; the others run (tests/browser lists the gap).
                self._implementations[spec.name] = _not_implemented(spec, blocking=spec.blocks)

    @property
    def address(self) -> str:
        """The node's overlay address (``"10.0.0.3"``)."""
        return self.node.address

    @staticmethod
    def table_json() -> str:
        """The import table (:func:`unisockets.wasm.abi.import_table`) as JSON, for the page."""
        return json.dumps(abi.import_table())

    def attach(self, memory: Any, errno_address: int | None) -> None:
        """Give the guest's memory and ``errno`` address (call before ``_start``).

        Args:
            memory: the instance's exported ``WebAssembly.Memory``.
            errno_address: the value of its ``errno`` export (a global holding
                an address), or ``None`` when it exports none (then only
                ``unisockets_errno`` reports errors).
        """
        self._memory = JsMemoryView(memory)
        self._errno_address = errno_address

    def is_socket(self, fd: int) -> bool:
        """Whether ``fd`` is one of the guest's sockets (else the WASI shim serves it)."""
        return fd in self.sockets

    def call(self, name: str, *args: int) -> int:
        """Call import ``name``, one that does not block, with the guest's arguments.

        Args:
            name: an import of the table whose ``blocks`` is false.
            args: its arguments (i32s, as JavaScript numbers).

        Returns:
            The result. A failure is a result too (-1 and ``errno``, or a
            WASI errno), never an exception.

        Raises:
            GuestStopped: the guest is being stopped.
            KeyError: ``name`` is not in the table.
            TypeError: the import blocks (use :meth:`call_blocking`).
        """
        spec = self._specs[name]
        if spec.blocks:
            raise TypeError(f"{name} blocks: use call_blocking")
        if self.stopping:
            raise GuestStopped()
        implementation = self._implementations[name]
        return self._result(spec, lambda: implementation(*args))

    def call_blocking(
        self,
        resolve: Callable[[int], object],
        reject: Callable[[str], object],
        name: str,
        *args: int,
    ) -> int | None:
        """Call import ``name``, one that may block; the page awaits it with JSPI.

        The call starts eagerly (Python 3.12+), so one that need not wait
        (bytes already received, an error) finishes here and its result is
        returned, sparing the guest a suspension. Otherwise the task settles
        the page's promise itself when it ends, from inside its last step,
        instead of through a done callback, which would cost one more turn
        of the event loop per call (docs/wasm.md, "Benchmarks in a browser tab").

        Args:
            resolve: the page's promise's ``resolve``, called with the result.
            reject: its ``reject``, called with a message when the guest is
                being stopped (or on a bug).
            name: an import of the table.
            args: its arguments (i32s, as JavaScript numbers).

        Returns:
            The result if the call finished at once (then neither callback
            is called), else ``None``. Failures are results (-1 and ``errno``,
            or a WASI errno).

        Raises:
            GuestStopped: the guest is being stopped.
            KeyError: ``name`` is not in the table.
        """
        spec = self._specs[name]
        implementation = self._implementations[name]
        page_waits = False  # set once the call did not finish at once

        async def run() -> int:
            try:
                result = await self._call_async(spec, implementation, args)
            except BaseException as exc:
                if page_waits:
                    reject(f"{type(exc).__name__}: {exc}")
                raise
            if page_waits:
                resolve(result)
            return result

        task = asyncio.Task(run(), loop=asyncio.get_event_loop(), **EAGER)
        if task.done():
            return task.result()
        page_waits = True  # from now on the task settles the page's promise
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return None

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: it was reported to the page already

    async def _call_async(
        self, spec: abi.ImportSpec, implementation: Callable[..., Awaitable[int]], args: Any
    ) -> int:
        if self.stopping:
            raise GuestStopped()
        try:
            result = await implementation(*args)
        except asyncio.CancelledError:
            if self.stopping:
                raise GuestStopped() from None
            raise
        except OSError as exc:
            return self._failed(spec, exc.errno)
        except Exception:
            logger.exception("%s failed", spec.name)
            return self._failed(spec, errno.EIO)
        if self.stopping:
            raise GuestStopped()
        return result

    def _result(self, spec: abi.ImportSpec, thunk: Callable[[], int]) -> int:
        try:
            return thunk()
        except OSError as exc:
            return self._failed(spec, exc.errno)
        except Exception:
            logger.exception("%s failed", spec.name)
            return self._failed(spec, errno.EIO)

    def _failed(self, spec: abi.ImportSpec, code: int | None) -> int:
        number = abi.wasi_errno(code)
        if spec.errors == "wasi":
            return number
        self.last_errno = number
        if self._errno_address is not None and self._memory is not None:
            try:
                self._memory.write_u32(self._errno_address, number)
            except OSError:
                self._errno_address = None  # a bogus export: stop writing there
        return -1

    def stop(self) -> None:
        """Stop the guest: cancel its call in progress; later calls raise :class:`GuestStopped`."""
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Stop the guest, close its sockets and leave the network (the node of :func:`start`)."""
        self.stop()
        self._finished.set()
        if self._session is not None:
            await asyncio.shield(self._session)
        else:
            await self._close_sockets()

    async def _close_sockets(self) -> None:
        """Close what the guest left open; finish the closes it made (before the node leaves)."""
        sockets, self.sockets = list(self.sockets.values()), {}
        for guest_socket in sockets:
            await guest_socket.socket.aclose()
        # A guest that closes a socket and exits at once: its EOF and close must still
        # reach the peer, which would otherwise see the node leave instead.
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- helpers -----------------------------------------------------------------------

    @property
    def _view(self) -> JsMemoryView:
        if self._memory is None:
            raise efault("the guest exports no memory")
        return self._memory


_sessions: set[asyncio.Task[None]] = set()  # running sessions (a task needs a reference)


def start(signaling_url: str, subnet: str = "10.0.0", **options: Any) -> asyncio.Future[TabGuest]:
    """Join a network from this tab in a new task; the future gives its :class:`TabGuest`.

    The node lives in that task (its task group must), until
    :meth:`TabGuest.aclose`.

    Args:
        signaling_url: the signaling server's ``ws://`` URL.
        subnet: the overlay subnet, three octets.
        options: more keyword arguments of :func:`unisockets.browser.open_node`.

    Returns:
        A future of the guest host, failing as :func:`unisockets.browser.open_node`
        does (``SignalingError``: unreachable server, full subnet).

    Raises:
        RuntimeError: not under Pyodide.
    """
    require_browser()
    ready: asyncio.Future[TabGuest] = asyncio.get_event_loop().create_future()

    async def session() -> None:
        try:
            async with open_node(signaling_url, subnet, **options) as node:
                guest = TabGuest(node)
                guest._session = asyncio.current_task()
                ready.set_result(guest)
                await guest._finished.wait()
                await guest._close_sockets()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                logger.exception("the guest's node failed")

    task = asyncio.ensure_future(session())
    _sessions.add(task)
    task.add_done_callback(_sessions.discard)
    return ready
