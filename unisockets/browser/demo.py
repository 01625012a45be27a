"""The demo app of ``web/index.html``: an echo server bound in the tab, and a chat/echo client.

Run by ``web/app.js`` once Pyodide and the wheel are installed (:func:`start`).
The page shows the node's address, the peers it talked to and their links
(links are set up on demand, so a tab that has not connected nor been
connected to lists none), every connection with the bytes it moved, and a
log. The URL can drive it, for demos and tests::

    index.html?signaling=ws://127.0.0.1:6999&subnet=10.0.0&echo=7&connect=10.0.0.1:7&message=hi

joins at once, serves echo on port 7, connects to ``10.0.0.1:7`` and sends
``hi``. Everything the app does happens in one task group under one root task
(:attr:`DemoApp.task`); leaving closes the node and cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from typing import Any, Final

from ..driver.errors import BrokenResourceError, ClosedResourceError, SignalingError
from ..driver.legacy import AnyStream
from ..protocol.addresses import format_alias, is_alias, parse_alias
from ..protocol.events import Disconnected, IdChanged, Reconnected
from ._js import Listeners, js_global, logger
from .tab import BrowserNode, SignalingStatus, open_node

__all__ = ["DemoApp", "start"]

#: Seconds between two refreshes of the status panel.
REFRESH_INTERVAL: Final = 0.25
#: Lines kept in the log panel.
MAX_LOG_LINES: Final = 200
#: The peer panel before any link: links are set up on demand (docs/protocol.md, "Lazy peer links").
NO_PEERS: Final = "none yet (a link is set up by the first connection either way)"

#: URL query parameter -> the id of the form field it fills in.
_URL_FIELDS: Final = {
    "signaling": "signaling",
    "subnet": "subnet",
    "echo": "echo-port",
    "connect": "remote",
    "message": "message",
}

_app: DemoApp | None = None


def start() -> DemoApp:
    """Create the page's app (once), wire its buttons, and start its root task.

    Returns:
        The app; its root task is :attr:`DemoApp.task`.
    """
    global _app
    if _app is None:
        _app = DemoApp(js_global("document"), js_global("location"))
        _app.task = asyncio.ensure_future(_app.run())
    return _app


class DemoApp:
    """The page's state and its one root task (see the module docstring).

    Args:
        document: the page's ``document``.
        location: the page's ``location`` (its query string may drive the app).

    Attributes:
        node: the joined node, or None.
        joined_after_ms: milliseconds from navigation start to ``joined``, or None.
        task: the root task running :meth:`run`.
    """

    def __init__(self, document: Any, location: Any) -> None:
        self._document = document
        self._params = js_global("URLSearchParams").new(location.search)
        self._commands: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._listeners = Listeners()
        self._log_lines: list[str] = []
        self._client: AnyStream | None = None
        self._served = 0
        self._roles: dict[int, str] = {}
        self.node: BrowserNode | None = None
        self.joined_after_ms: float | None = None
        self.task: asyncio.Future[None] | None = None
        # The form shows what the URL asked for, the message included.
        for name, element in _URL_FIELDS.items():
            if self._params.has(name):
                self._element(element).value = self._params.get(name)
        self._on_submit("join-form", lambda: self._commands.put_nowait(("join", "")))
        self._on_click("leave", lambda: self._commands.put_nowait(("leave", "")))
        self._on_submit(
            "connect-form", lambda: self._commands.put_nowait(("connect", self._value("remote")))
        )
        self._on_submit(
            "send-form", lambda: self._commands.put_nowait(("send", self._value("message")))
        )
        self._on_click("eof", lambda: self._commands.put_nowait(("eof", "")))
        self._set_enabled(join=True)

    # --- the root task -----------------------------------------------------------------------

    async def run(self) -> None:
        """Handle the page's commands forever: each join runs a session until leave."""
        if self._params.has("signaling"):
            self._commands.put_nowait(("join", ""))
            if self._params.has("connect"):
                self._commands.put_nowait(("connect", self._params.get("connect")))
                if self._params.has("message"):
                    self._commands.put_nowait(("send", self._params.get("message")))
        while True:
            command, _ = await self._commands.get()
            if command == "join":
                try:
                    await self._session()
                except Exception as exc:  # shown, and the page can join again
                    logger.exception("session failed")
                    self._log(f"session ended: {exc!r}", bad=True)
                self.node = None
                self._set_text("state", "not joined")
                self._set_enabled(join=True)

    async def _session(self) -> None:
        url, subnet = self._value("signaling"), self._value("subnet")
        self._set_text("state", f"joining {url} …")
        self._set_enabled()
        async with (
            open_node(url, subnet, on_signaling_event=self._on_signaling) as node,
            asyncio.TaskGroup() as tasks,
        ):
            self.node = node
            self.joined_after_ms = float(js_global("performance").now())
            self._set_text("state", f"joined as {node.address}")
            self._set_text("address", node.address)
            self._set_text("joined-after", f"{self.joined_after_ms:.0f} ms after page load")
            self._log(f"joined {url} as {node.address}", ok=True)
            self._set_enabled(leave=True, connect=True)
            refresh = tasks.create_task(self._refresh_loop(node))
            echo_port = self._value("echo-port")
            server = None
            if echo_port.isdigit():
                server = tasks.create_task(self._echo_server(node, int(echo_port), tasks))
            while True:
                command, argument = await self._commands.get()
                if command == "leave":
                    break
                if command == "connect":
                    await self._connect(node, argument, tasks)
                elif command == "send":
                    await self._send(argument)
                elif command == "eof":
                    await self._send_eof()
            self._log(f"leaving as {node.address}")
            for task in (refresh, server):
                if task is not None:
                    task.cancel()
            if self._client is not None:
                await self._client.aclose()

    # --- echo server and client --------------------------------------------------------------

    async def _echo_server(self, node: BrowserNode, port: int, tasks: asyncio.TaskGroup) -> None:
        try:
            async with node.listen(port) as listener:
                self._set_text("echo", f"listening on {node.address}:{port}, served 0")
                self._log(f"echo server listening on {node.address}:{port}", ok=True)
                while True:
                    stream = await listener.accept()
                    self._roles[id(stream)] = "echo server"
                    tasks.create_task(self._echo(stream, node, port))
        except (OSError, SignalingError, ClosedResourceError) as exc:
            self._set_text("echo", f"not serving: {exc}")
            self._log(f"echo server stopped: {exc}", bad=True)

    async def _echo(self, stream: AnyStream, node: BrowserNode, port: int) -> None:
        peer = format_alias(*stream.remote_address)
        self._log(f"echo: {peer} connected")
        try:
            async with stream:
                while data := await stream.receive_some():
                    await stream.send_all(data)
            self._log(f"echo: {peer} closed after {stream.bytes_received} bytes")
        except (BrokenResourceError, ClosedResourceError) as exc:
            self._log(f"echo: {peer} broke: {exc}", bad=True)
        self._served += 1
        self._set_text("echo", f"listening on {node.address}:{port}, served {self._served}")

    async def _connect(self, node: BrowserNode, remote: str, tasks: asyncio.TaskGroup) -> None:
        if not is_alias(remote):
            self._log(f"not an address: {remote!r} (use host:port)", bad=True)
            return
        if self._client is not None:
            await self._client.aclose()
        try:
            self._client = await node.connect(parse_alias(remote))
        except (OSError, SignalingError) as exc:
            self._log(f"connect to {remote} failed: {exc}", bad=True)
            return
        self._roles[id(self._client)] = "client"
        self._log(
            f"connected to {remote} from {format_alias(*self._client.local_address)}", ok=True
        )
        self._set_enabled(leave=True, connect=True, send=True, eof=True)
        tasks.create_task(self._read_replies(self._client))

    async def _read_replies(self, stream: AnyStream) -> None:
        try:
            while data := await stream.receive_some():
                self._log(f"received {data.decode('utf-8', 'replace')!r}", ok=True)
            self._log("the server closed the connection")
        except (BrokenResourceError, ClosedResourceError) as exc:
            self._log(f"connection ended: {exc}")
        finally:
            await stream.aclose()
            if stream is self._client:
                self._client = None
                self._set_enabled(leave=True, connect=True)

    async def _send(self, text: str) -> None:
        if self._client is None:
            self._log("not connected", bad=True)
            return
        try:
            await self._client.send_all(text.encode("utf-8"))
            self._log(f"sent {text!r}")
        except (BrokenResourceError, ClosedResourceError) as exc:
            self._log(f"send failed: {exc}", bad=True)

    async def _send_eof(self) -> None:
        if self._client is not None:
            with contextlib.suppress(BrokenResourceError, ClosedResourceError):
                await self._client.send_eof()
            self._log("sent EOF")

    def _on_signaling(self, event: SignalingStatus) -> None:
        """Show the signaling connection's ups and downs (the node reconnects by itself)."""
        if isinstance(event, Disconnected):
            self._set_text("state", "signaling lost: reconnecting (open streams keep working)")
            self._log(f"lost the signaling server as {event.id}; reconnecting", bad=True)
        elif isinstance(event, IdChanged):
            self._set_text("address", event.new_id)
            self._log(f"our address changed from {event.old_id} to {event.new_id}", bad=True)
        elif isinstance(event, Reconnected):
            self._set_text("state", f"joined as {event.id}")
            self._log(f"rejoined as {event.id}", ok=True)

    # --- the page ----------------------------------------------------------------------------

    async def _refresh_loop(self, node: BrowserNode) -> None:
        while True:
            self._refresh(node)
            await asyncio.sleep(REFRESH_INTERVAL)

    def _refresh(self, node: BrowserNode) -> None:
        status = node.statistics()
        # Lazy links (the tab's default): a node knows the peers it talked to, not every
        # member; it lists those and every link it holds, a closed idle one as "no link".
        links = status["links"]
        known = sorted(set(status["peers"]) | set(links))
        peers = [f"{peer} ({links.get(peer, 'no link')})" for peer in known]
        self._set_text("peers", ", ".join(peers) or NO_PEERS)
        connections = status["connections"]
        sent = sum(c["sent"] for c in connections)
        received = sum(c["received"] for c in connections)
        self._set_text(
            "traffic",
            f"{len(connections)} connection(s), {sent} bytes sent, {received} bytes received",
        )
        rows = []
        for stream in sorted(node.streams, key=lambda s: s.local_address + s.remote_address):
            cells = (
                format_alias(*stream.local_address),
                format_alias(*stream.remote_address),
                self._roles.get(id(stream), "accepted"),
                str(stream.bytes_sent),
                str(stream.bytes_received),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        self._element("connections").innerHTML = (
            "".join(rows) or '<tr><td colspan="5">none</td></tr>'
        )

    def _log(self, line: str, *, ok: bool = False, bad: bool = False) -> None:
        css = "ok" if ok else "bad" if bad else ""
        self._log_lines.append(f'<span class="{css}">{html.escape(line)}</span>')
        del self._log_lines[:-MAX_LOG_LINES]
        element = self._element("log")
        element.innerHTML = "\n".join(self._log_lines)
        element.scrollTop = element.scrollHeight

    def _element(self, element_id: str) -> Any:
        return self._document.getElementById(element_id)

    def _value(self, element_id: str) -> str:
        return str(self._element(element_id).value).strip()

    def _set_text(self, element_id: str, text: str) -> None:
        self._element(element_id).textContent = text

    def _set_enabled(self, **enabled: bool) -> None:
        for name in ("join", "leave", "connect", "send", "eof"):
            self._element(name).disabled = not enabled.get(name, False)

    def _on_submit(self, form_id: str, action: Any) -> None:
        def handler(event: Any) -> None:
            event.preventDefault()
            action()

        self._listeners.add(self._element(form_id), "submit", handler)

    def _on_click(self, button_id: str, action: Any) -> None:
        self._listeners.add(self._element(button_id), "click", lambda _: action())
