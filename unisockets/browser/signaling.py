"""The signaling client in the browser: the sans-IO protocol over the page's ``WebSocket``.

:class:`BrowserSignaling` feeds every text frame of the browser's WebSocket to
:class:`~unisockets.protocol.client.SignalingClientProtocol` and acts on the
events it returns (shared/PROTOCOL.md, "Flows"):

- answers to our requests resolve the futures that :meth:`bind`,
  :meth:`connect` and :meth:`shutdown` wait on (a cancelled or timed-out
  request is cancelled in the protocol, and a late success is undone);
- ``accept`` (:class:`~unisockets.protocol.events.IncomingConnection`) goes to
  the queue of that bound alias, read by :meth:`next_connection`;
- every other event (peers greeted, offers, answers, candidates, leaves) goes
  to the ``on_event`` callback: the node hands them to its peer links.

There is no reader task: the WebSocket's ``message`` listener does the work,
synchronously, and sending is ``WebSocket.send`` (never blocks). A frame the
protocol rejects (:class:`~unisockets.protocol.errors.RemoteProtocolError`)
is logged and ignored, as the native client does.

Unlike the native client this one does not reconnect: when the WebSocket
closes, requests in flight fail with :class:`SignalingError` and the node
stops accepting and connecting (streams already open keep working: their
bytes never pass through the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Callable
from typing import Any, Final

from ..protocol.client import SignalingClientProtocol
from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.events import (
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    ConnectRefused,
    ConnectSucceeded,
    Disconnected,
    Event,
    IncomingConnection,
    Joined,
    JoinRejected,
    Request,
    RequestFailed,
    ShutdownRejected,
    ShutdownSucceeded,
)
from ..protocol.messages import Message
from ..protocol.wire import encode
from ._js import Listeners, js_global, logger, settle
from .errors import SignalingError, oserror

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "BrowserSignaling"]

#: Seconds a bind, connect or shutdown may wait for the server's answer.
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
#: ``accept`` announcements kept per bound alias while nobody reads them.
MAX_QUEUED_CONNECTIONS: Final = 1024

_ANSWERS: Final = (
    BindSucceeded,
    BindRejected,
    ConnectSucceeded,
    ConnectRefused,
    ShutdownSucceeded,
    ShutdownRejected,
    RequestFailed,
)


class BrowserSignaling:
    """One node's signaling session over the browser's WebSocket (see the module docstring).

    Use :meth:`open` to connect and join; :meth:`close` to leave.

    Args:
        url: ``ws://`` or ``wss://`` URL of the signaling server.
        subnet: the subnet to join, three octets such as ``"10.0.0"``.
        on_event: called with each event that is not an answer to a request
            (must not raise; exceptions are logged).
        request_timeout: seconds a request may wait for its answer.

    Attributes:
        protocol: the sans-IO state machine (read-only use: ids, aliases, peers).
    """

    def __init__(
        self,
        url: str,
        subnet: str,
        *,
        on_event: Callable[[Event], object],
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.url = url
        self.protocol = SignalingClientProtocol(subnet=subnet)
        self._on_event = on_event
        self._request_timeout = request_timeout
        self._ws: Any = None
        self._listeners = Listeners()
        self._requests: dict[Request, asyncio.Future[Event]] = {}
        self._joined: asyncio.Future[str] | None = None
        # Client aliases announced by ``accept``, per bound alias; None: the session ended.
        self._incoming: dict[str, asyncio.Queue[str | None]] = {}
        self._closed = False
        self.close_reason: str | None = None

    # --- session -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Our node id, e.g. ``"10.0.0.1"``.

        Raises:
            SignalingError: not joined (any more).
        """
        node_id = self.protocol.id
        if node_id is None:
            raise SignalingError(f"not joined to {self.url}: {self.close_reason or 'not open'}")
        return node_id

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open and we are joined."""
        return self.protocol.id is not None and not self._closed

    async def open(self) -> str:
        """Open the WebSocket, send ``knock`` and wait for ``acknowledged``.

        Returns:
            Our id.

        Raises:
            SignalingError: the server is unreachable, closed the socket, or
                rejected the join (subnet full); or no answer within the request timeout.
        """
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        self._joined = loop.create_future()
        try:
            ws = js_global("WebSocket").new(self.url)
        except Exception as exc:  # a SyntaxError for a bad URL
            raise SignalingError(f"cannot open a WebSocket to {self.url!r}: {exc}") from exc
        self._ws = ws
        self._listeners.add(ws, "open", lambda _: settle(opened))
        self._listeners.add(ws, "message", self._on_message)
        self._listeners.add(ws, "close", self._on_close)
        try:
            async with asyncio.timeout(self._request_timeout):
                await _first(opened, self._joined)
                if not opened.done():
                    await self._joined  # the close listener failed it: raises
                self._send([self.protocol.knock()])
                return await self._joined
        except TimeoutError:
            self.close(f"no answer from {self.url} within {self._request_timeout} s")
            raise SignalingError(f"joining {self.url} timed out") from None
        except BaseException:
            self.close("join failed")
            raise

    def close(self, reason: str = "closed by the node") -> None:
        """Close the WebSocket (idempotent): the server frees our id and aliases."""
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        ws, self._ws = self._ws, None
        self._lost(reason)
        self._listeners.clear()
        if ws is not None:
            try:
                ws.close(1000)
            except Exception:
                logger.debug("closing the WebSocket failed", exc_info=True)

    # --- requests ----------------------------------------------------------------------------

    async def bind(self, alias: str) -> None:
        """Bind our ``alias`` (``"<our id>:<port>"``).

        Raises:
            OSError: ``EADDRINUSE`` when taken, ``ETIMEDOUT`` without an answer.
            SignalingError: the session ended.
        """
        event = await self._request(*self.protocol.bind(alias))
        if isinstance(event, BindRejected):
            raise oserror(errno.EADDRINUSE, alias)

    async def shutdown(self, alias: str) -> None:
        """Release our ``alias`` (a bound one, or a connection alias).

        Raises:
            OSError: ``EPERM`` when the server says it is not ours,
                ``ETIMEDOUT`` without an answer.
            SignalingError: the session ended.
        """
        event = await self._request(*self.protocol.shutdown(alias))
        if isinstance(event, ShutdownRejected):
            raise oserror(errno.EPERM, f"{alias} is not ours")

    async def connect(self, remote_alias: str) -> tuple[str, str]:
        """Ask the server to connect us to ``remote_alias``.

        Returns:
            ``(our connection alias, remote alias)``.

        Raises:
            OSError: ``ECONNREFUSED`` when nobody accepts there, ``ETIMEDOUT``
                without an answer.
            SignalingError: the session ended.
        """
        event = await self._request(*self.protocol.connect(remote_alias))
        if isinstance(event, ConnectRefused):
            raise oserror(errno.ECONNREFUSED, remote_alias)
        assert isinstance(event, ConnectSucceeded)
        return event.local_alias, event.remote_alias

    def accept(self, alias: str) -> None:
        """Tell the server we accept the next connection on our bound ``alias``.

        Raises:
            SignalingError: not joined.
            LocalProtocolError: ``alias`` is not bound by us.
        """
        self._check_connected()
        self._send(self.protocol.accept(alias))

    async def next_connection(self, alias: str) -> str:
        """Wait for the server's next ``accept`` on our bound ``alias``.

        Returns:
            The client's connection alias.

        Raises:
            SignalingError: the session ended.
        """
        self._check_connected()
        client_alias = await self._queue(alias).get()
        if client_alias is None:
            self._queue(alias).put_nowait(None)  # for the next caller too
            self._check_connected()
            raise SignalingError("signaling ended")
        return client_alias

    def forget_alias(self, alias: str) -> None:
        """Drop the ``accept`` queue of an alias we no longer listen on."""
        self._incoming.pop(alias, None)

    def send_offer(self, peer_id: str, sdp: str) -> None:
        """Relay our SDP offer to ``peer_id`` (PROTOCOL.md, "Peer link")."""
        self._send([self.protocol.offer(peer_id, sdp)])

    def send_answer(self, peer_id: str, sdp: str) -> None:
        """Relay our SDP answer to ``peer_id``."""
        self._send([self.protocol.answer(peer_id, sdp)])

    def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Trickle one ICE candidate (a JSON ``RTCIceCandidateInit`` string) to ``peer_id``."""
        self._send([self.protocol.candidate(peer_id, candidate)])

    # --- internals ---------------------------------------------------------------------------

    def _queue(self, alias: str) -> asyncio.Queue[str | None]:
        return self._incoming.setdefault(alias, asyncio.Queue(MAX_QUEUED_CONNECTIONS))

    def _check_connected(self) -> None:
        if not self.connected:
            raise SignalingError(f"signaling to {self.url} ended: {self.close_reason or '?'}")

    def _send(self, messages: list[Message]) -> None:
        if self._ws is None:
            raise SignalingError(f"signaling to {self.url} ended: {self.close_reason or '?'}")
        for message in messages:
            self._ws.send(encode(message))

    async def _request(self, request: Request, messages: list[Message]) -> Event:
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._requests[request] = future
        try:
            self._send(messages)
            async with asyncio.timeout(self._request_timeout):
                event = await future
        except BaseException as exc:
            if self._requests.pop(request, None) is not None and self.connected:
                with contextlib.suppress(LocalProtocolError, SignalingError):
                    self._send(self.protocol.cancel(request))
            if isinstance(exc, TimeoutError):
                raise oserror(errno.ETIMEDOUT, f"signaling {request.kind.value}") from None
            raise
        if isinstance(event, RequestFailed):
            raise SignalingError(event.reason)
        return event

    def _on_message(self, js_event: Any) -> None:
        data = js_event.data
        if not isinstance(data, str):
            logger.warning("ignoring a binary signaling frame")
            return
        try:
            events = self.protocol.receive_data(data)
        except RemoteProtocolError as exc:
            logger.warning("ignoring a signaling message: %s", exc)
            return
        for event in events:
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Joined):
            if self._joined is not None:
                settle(self._joined, event.id)
        elif isinstance(event, JoinRejected):
            if self._joined is not None:
                settle(self._joined, error=SignalingError(f"subnet {event.subnet} is full"))
        elif isinstance(event, _ANSWERS):
            future = self._requests.pop(event.request, None)
            if future is not None:
                settle(future, event)
        elif isinstance(event, CancelledRequestSucceeded):
            self._send([event.undo])
        elif isinstance(event, IncomingConnection):
            queue = self._queue(event.bound_alias)
            if queue.full():
                logger.warning("dropping a connection to %s: nobody accepts", event.bound_alias)
            else:
                queue.put_nowait(event.client_alias)
        else:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("signaling event handler failed for %r", event)

    def _on_close(self, js_event: Any) -> None:
        reason = f"the server closed the WebSocket (code {js_event.code})"
        if self._joined is not None:
            settle(self._joined, error=SignalingError(f"cannot join {self.url}: {reason}"))
        self._closed = True
        self.close_reason = self.close_reason or reason
        self._ws = None
        self._lost(reason)
        self._listeners.clear()

    def _lost(self, reason: str) -> None:
        for event in self.protocol.connection_lost(reason):
            if isinstance(event, Disconnected):
                self._on_event(event)
            else:
                self._dispatch(event)
        for request, future in list(self._requests.items()):
            settle(future, error=SignalingError(reason))
            del self._requests[request]
        for queue in self._incoming.values():  # wake next_connection() callers
            if not queue.full():
                queue.put_nowait(None)


async def _first(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` is done (without cancelling or consuming the others)."""
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
