"""What a signaling server counts, served as Prometheus text with a health check for load balancers.

:class:`ServerMetrics` holds plain counters that the server bumps as it
works (no library call on the hot path). :func:`serve_metrics` answers HTTP
on its own port (``unisockets signaling-server --metrics-port``):

- ``GET /metrics``: the Prometheus text exposition format
  (https://prometheus.io/docs/instrumenting/exposition_formats/), rendered by
  prometheus-client at scrape time;
- ``GET /healthz``: ``200 ok`` while the server serves (and, with Redis,
  while Redis answers), else ``503`` with the reason: what a load balancer's
  health check asks.

Several instances (docs/signaling-server.md, "Several instances over
Redis"): each counts what it does. A request is counted by the instance that
applies it (its subnet's owner), connections and closes by the instance they
are on, and a subnet's members by its owner only, so sums over instances
are the network's figures.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import h11
import trio

from unisockets.protocol import (
    Acknowledged,
    Alias,
    Bind,
    Connect,
    Knock,
    Message,
    Shutdown,
)

if TYPE_CHECKING:
    from .server import SignalingServer

__all__ = ["ServerMetrics", "render_metrics", "serve_metrics"]

logger = logging.getLogger("unisockets.signaling.metrics")

#: Bound on one HTTP request (head and answer), in seconds.
_HTTP_TIMEOUT = 10.0


class ServerMetrics:
    """The counters of one server instance.

    Attributes:
        requests: ``(opcode, outcome)`` -> count: ``knock`` ``joined`` or
            ``rejected``, ``bind``/``shutdown`` ``ok`` or ``refused``,
            ``connect`` ``accepted`` or ``refused``, ``accepting`` ``ok``.
        relays: ``offer``, ``answer`` and ``candidate`` messages passed on.
        leaves: members that left (their connection closed).
        closes: WebSocket close code sent (``"none"``: the connection was
            already gone) -> count.
        rate_limited: clients closed for going over their message rate.
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.relays = 0
        self.leaves = 0
        self.closes: Counter[str] = Counter()
        self.rate_limited = 0

    def request(self, message: Message, replies: list[Message]) -> None:
        """Count one applied request by its outcome, read from the replies to its sender."""
        opcode = message.OPCODE
        if isinstance(message, Knock):
            ack = next((r for r in replies if isinstance(r, Acknowledged)), None)
            outcome = "joined" if ack is not None and not ack.rejected else "rejected"
        elif isinstance(message, Bind | Shutdown):
            reply = next(
                (r for r in replies if isinstance(r, Alias) and r.alias == message.alias), None
            )
            done = reply is not None and reply.set == isinstance(message, Bind)
            outcome = "ok" if done else "refused"
        elif isinstance(message, Connect):
            accepted = any(
                isinstance(r, Alias)
                and r.client_connection_id == message.client_connection_id
                and r.is_connection_alias
                for r in replies
            )
            outcome = "accepted" if accepted else "refused"
        else:
            outcome = "ok"
        self.requests[(opcode, outcome)] += 1


def _families(server: SignalingServer) -> Iterator[Any]:
    """The metric families of ``server`` now (prometheus-client's custom collector protocol)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    metrics = server.metrics
    requests = CounterMetricFamily(
        "unisockets_signaling_requests",
        "Requests applied by this instance, by opcode and outcome.",
        labels=["opcode", "outcome"],
    )
    for (opcode, outcome), count in sorted(metrics.requests.items()):
        requests.add_metric([opcode, outcome], count)
    yield requests
    yield CounterMetricFamily(
        "unisockets_signaling_relays",
        "offer, answer and candidate messages passed on by this instance.",
        value=metrics.relays,
    )
    yield CounterMetricFamily(
        "unisockets_signaling_leaves",
        "Members of this instance that left.",
        value=metrics.leaves,
    )
    closes = CounterMetricFamily(
        "unisockets_signaling_closes",
        "WebSocket closes by this instance, by close code ('none': already gone).",
        labels=["code"],
    )
    for code, count in sorted(metrics.closes.items()):
        closes.add_metric([code], count)
    yield closes
    yield CounterMetricFamily(
        "unisockets_signaling_rate_limited",
        "Clients closed for going over their message rate.",
        value=metrics.rate_limited,
    )
    yield GaugeMetricFamily(
        "unisockets_signaling_clients",
        "WebSocket clients connected to this instance (joined or not).",
        value=server.client_count,
    )
    members = GaugeMetricFamily(
        "unisockets_signaling_members",
        "Members per subnet (with several instances: of the subnets this one owns).",
        labels=["subnet"],
    )
    for subnet, count in sorted(server.subnet_sizes().items()):
        members.add_metric([subnet], count)
    yield members
    depth = server.queue_depth
    if depth is not None:
        yield GaugeMetricFamily(
            "unisockets_signaling_queue_depth",
            "Inputs waiting for their subnet's owner plus items waiting for Redis.",
            value=depth,
        )


def render_metrics(server: SignalingServer) -> bytes:
    """The Prometheus text exposition of ``server``'s metrics now.

    Returns:
        The body for ``GET /metrics`` (content type
        ``prometheus_client.CONTENT_TYPE_LATEST``).
    """
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: _families(server)))
    return generate_latest(registry)


class _Collector:
    def __init__(self, collect: Callable[[], Iterator[Any]]) -> None:
        self.collect = collect


async def serve_metrics(
    server: SignalingServer,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer ``GET /metrics`` and ``GET /healthz`` for ``server`` until cancelled.

    Args:
        server: the running signaling server.
        host: the address to listen on, e.g. ``"127.0.0.1"``.
        port: the TCP port; 0 for one the kernel picks.
        task_status: reports the port once listening (``nursery.start``).

    Raises:
        OSError: the address cannot be bound.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]
    task_status.started(bound)

    async def answer(stream: trio.SocketStream) -> None:
        await _answer(server, stream)

    await trio.serve_listeners(answer, listeners)


async def _answer(server: SignalingServer, stream: trio.abc.Stream) -> None:
    """One HTTP/1.1 request (h11), then close; errors end only this connection."""
    connection = h11.Connection(h11.SERVER)
    try:
        with trio.move_on_after(_HTTP_TIMEOUT):
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(bytes(await stream.receive_some(65536)))
                    continue
                break
            if not isinstance(event, h11.Request):
                return
            target = event.target.decode(errors="replace").split("?", 1)[0]
            if event.method not in (b"GET", b"HEAD"):
                status, kind, body = 405, "text/plain", b"only GET\n"
            elif target == "/metrics":
                from prometheus_client import CONTENT_TYPE_LATEST

                status, kind, body = 200, CONTENT_TYPE_LATEST, render_metrics(server)
            elif target == "/healthz":
                problem = server.health_problem()
                status = 200 if problem is None else 503
                body = b"ok\n" if problem is None else f"{problem}\n".encode()
                kind = "text/plain"
            else:
                status, kind, body = 404, "text/plain", b"/metrics or /healthz\n"
            if event.method == b"HEAD":
                body = b""
            headers = [
                ("content-type", kind),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            data = connection.send(h11.Response(status_code=status, headers=headers))
            await stream.send_all((data or b"") + (connection.send(h11.Data(data=body)) or b""))
            await stream.send_all(connection.send(h11.EndOfMessage()) or b"")
    except (h11.ProtocolError, trio.BrokenResourceError, OSError) as exc:
        logger.debug("metrics request failed: %s", exc)
    finally:
        await stream.aclose()
