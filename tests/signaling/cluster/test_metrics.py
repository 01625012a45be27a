"""Prometheus metrics and the health check over real HTTP (prometheus-client's text format)."""

from __future__ import annotations

import re

import pytest
import trio

from tests.cli.processes import child
from tests.redis_server import RedisServer, start_redis, stop_redis
from tests.signaling.server_helpers import open_member, wait_until
from unisockets.protocol import Bind, Candidate
from unisockets.signaling.metrics import serve_metrics
from unisockets.signaling.server import SignalingServer, open_signaling_server

from .cluster_helpers import open_instances


async def _get(port: int, path: str) -> tuple[int, str]:
    """``GET path`` on 127.0.0.1:port; returns the status and the body."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def _value(text: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels, as written) in exposition ``text``."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in:\n{text}"
    return float(match.group(1))


async def _serving(nursery: trio.Nursery, server: SignalingServer) -> int:
    port: int = await nursery.start(serve_metrics, server, "127.0.0.1", 0)
    return port


@pytest.mark.trio
async def test_one_instance_counts_requests_relays_members_and_closes() -> None:
    async with open_signaling_server() as server, trio.open_nursery() as nursery:
        port = await _serving(nursery, server)
        async with open_member(server.url) as a, open_member(server.url) as b:
            assert a.id is not None and b.id is not None
            await b.send(Bind(id=b.id, alias=f"{b.id}:80"))
            await b.send(Bind(id=b.id, alias=f"{b.id}:80"))  # refused: held
            await b.send(Candidate(offerer_id=b.id, answerer_id=a.id, candidate="{}"))
            await b.send(Bind(id=a.id, alias=f"{a.id}:80"))  # spoofed id: closed 1008
            await b.closed()
            await wait_until(lambda: server.client_count == 1)
            status, text = await _get(port, "/metrics")
            assert status == 200
            requests = "unisockets_signaling_requests_total"
            assert _value(text, f'{requests}{{opcode="knock",outcome="joined"}}') == 2
            assert _value(text, f'{requests}{{opcode="bind",outcome="ok"}}') == 1
            assert _value(text, f'{requests}{{opcode="bind",outcome="refused"}}') == 1
            assert _value(text, "unisockets_signaling_relays_total") == 1
            assert _value(text, "unisockets_signaling_leaves_total") == 1
            assert _value(text, 'unisockets_signaling_closes_total{code="1008"}') == 1
            assert _value(text, 'unisockets_signaling_members{subnet="10.0.0"}') == 1
            assert _value(text, "unisockets_signaling_clients") == 1
            assert "queue_depth" not in text
            assert await _get(port, "/healthz") == (200, "ok\n")
            assert (await _get(port, "/other"))[0] == 404
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_instances_count_what_they_own_and_health_follows_redis() -> None:
    redis = start_redis()
    try:
        async with open_instances(redis.url, 2) as (owner, other), trio.open_nursery() as nursery:
            ports = [await _serving(nursery, owner), await _serving(nursery, other)]
            async with open_member(owner.url), open_member(other.url), open_member(other.url):
                texts = [(await _get(port, "/metrics"))[1] for port in ports]
                joined = 'unisockets_signaling_requests_total{opcode="knock",outcome="joined"}'
                assert _value(texts[0], joined) == 3  # the owner applied all three
                assert joined not in texts[1]
                assert _value(texts[0], 'unisockets_signaling_members{subnet="10.0.0"}') == 3
                assert "unisockets_signaling_members{" not in texts[1]
                assert _value(texts[1], "unisockets_signaling_clients") == 2
                assert _value(texts[1], "unisockets_signaling_queue_depth") == 0
                assert await _get(ports[1], "/healthz") == (200, "ok\n")
                stop_redis(redis)
                with trio.fail_after(30):
                    while (await _get(ports[1], "/healthz"))[0] != 503:  # noqa: ASYNC110 - polling HTTP
                        await trio.sleep(0.1)
                assert (await _get(ports[1], "/healthz"))[1] == "Redis unreachable\n"
                redis = start_redis(port=redis.port)
                with trio.fail_after(30):
                    while (await _get(ports[1], "/healthz"))[0] != 200:  # noqa: ASYNC110 - polling HTTP
                        await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    finally:
        stop_redis(redis)


def test_the_cli_serves_metrics_on_the_port_it_logs(redis_server: RedisServer) -> None:
    import urllib.request

    args = ["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
    with child("signaling-server", *args, "--redis", redis_server.url) as server:
        server.expect("ws://")
        line = server.expect("", stream="stderr")
        while "metrics on http://" not in line:
            line = server.expect("", stream="stderr")
        url = line.split("metrics on ", 1)[1].split(",", 1)[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert b"unisockets_signaling_clients 0.0" in response.read()
        health = url.removesuffix("/metrics") + "/healthz"
        with urllib.request.urlopen(health, timeout=10) as response:
            assert response.read() == b"ok\n"


def test_a_busy_metrics_port_is_one_error_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--host", "127.0.0.1", "--port", "0", "--metrics-port", str(port)]
        with child("signaling-server", *args) as server:
            assert server.wait() == 1
    assert not any("Traceback" in line for line in server.stderr), server.report()
    assert server.stderr[-1] == (
        f"Error: cannot serve metrics on 127.0.0.1:{port}: [Errno 98] Address already in use"
    )
