"""``unisockets signaling-server``: run the signaling server until SIGINT or SIGTERM.

The first line on standard output is the URL the server listens on (the
real port when ``--port 0``), so scripts and tests can read it; logs go to
standard error. Ctrl-C (SIGINT) and SIGTERM close every client (1001); the
process then exits with status 130 after Ctrl-C (one line on stderr) and 0
after SIGTERM (:mod:`unisockets.cli._entry`).
"""

from __future__ import annotations

import gc
import logging
import math
import signal
import ssl
import sys
from functools import partial

import click
import trio

from unisockets.signaling.limits import (
    DEFAULT_BURST,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_MESSAGES_PER_SECOND,
    DEFAULT_PING_INTERVAL,
    DEFAULT_REJOIN_GRACE,
    ServerLimits,
)

from ._entry import leaves, run_trio
from ._options import LOG_LEVELS

__all__ = ["parse_subnet_range", "signaling_server"]

#: The port of the original server, ours by default too (docs/signaling-server.md).
DEFAULT_PORT = 6999


def parse_subnet_range(text: str) -> range:
    """Parse ``"FIRST-LAST"`` (inclusive, within 0..255) into the range of suffixes.

    Args:
        text: e.g. ``"1-254"`` (ours) or ``"0-255"`` (the original's).

    Returns:
        ``range(FIRST, LAST + 1)``.

    Raises:
        ValueError: not two integers 0 <= FIRST <= LAST <= 255 joined by ``-``.
    """
    first, sep, last = text.strip().partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise ValueError(f"expected FIRST-LAST, e.g. 1-254, got {text!r}")
    low, high = int(first), int(last)
    if not 0 <= low <= high <= 255:
        raise ValueError(f"expected 0 <= FIRST <= LAST <= 255, got {text!r}")
    return range(low, high + 1)


def _subnet_range(_ctx: click.Context, _param: click.Parameter, value: str) -> range:
    try:
        return parse_subnet_range(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _finite(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):  # click's FloatRange lets "inf" through
        raise click.BadParameter(f"{value} is not a finite number")
    return value


@click.command("signaling-server", short_help="Run the signaling server until Ctrl-C or SIGTERM.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one (the URL on the first output line has it).",
)
@click.option(
    "--subnet-range",
    "suffixes",
    default="1-254",
    show_default=True,
    callback=_subnet_range,
    help="Last octets handed out as node ids, FIRST-LAST (the original used 0-255).",
)
@click.option(
    "--ping-interval",
    default=DEFAULT_PING_INTERVAL,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    callback=_finite,
    help="Seconds between WebSocket pings; a client missing one is dropped.",
)
@click.option(
    "--max-message-size",
    default=DEFAULT_MAX_MESSAGE_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest message a client may send, in characters (close 1009 over it).",
)
@click.option(
    "--max-clients",
    default=DEFAULT_MAX_CLIENTS,
    show_default=True,
    type=click.IntRange(min=1),
    help="WebSocket clients at once (close 1013 over it).",
)
@click.option(
    "--max-handshakes",
    default=DEFAULT_MAX_HANDSHAKES,
    show_default=True,
    type=click.IntRange(min=1),
    help="TCP connections at once still in the TLS/HTTP handshake (closed over it).",
)
@click.option(
    "--rate",
    default=DEFAULT_MAX_MESSAGES_PER_SECOND,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    callback=_finite,
    help="Messages per second a client may send, sustained (close 1008 over it).",
)
@click.option(
    "--burst",
    default=DEFAULT_BURST,
    show_default=True,
    type=click.IntRange(min=1),
    help="Messages a client may send at once above --rate.",
)
@click.option(
    "--rejoin-grace",
    default=DEFAULT_REJOIN_GRACE,
    show_default=True,
    type=click.FloatRange(min=0),
    callback=_finite,
    help=(
        "Seconds after the start during which joins that do not ask for their previous id"
        " wait, so that nodes coming back after a restart get theirs (and how long a"
        " leaving node's id is kept for it); keep it below the nodes' request timeout."
    ),
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate chain: serve wss:// (needs --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM private key for --tls-cert.",
)
@click.option(
    "--redis",
    metavar="URL",
    help="Serve one network with every instance given the same Redis, e.g."
    " redis://127.0.0.1:6379/0 (docs/signaling-server.md).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics (/metrics) and a health check (/healthz) over HTTP"
    " on this port of --host; 0 picks a free one (logged).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Least severe log messages shown on stderr.",
)
def signaling_server(
    host: str,
    port: int,
    suffixes: range,
    ping_interval: float,
    max_message_size: int,
    max_clients: int,
    max_handshakes: int,
    rate: float,
    burst: int,
    rejoin_grace: float,
    tls_cert: str | None,
    tls_key: str | None,
    redis: str | None,
    metrics_port: int | None,
    log_level: str,
) -> None:
    """Run the signaling server (joins, binds and connects are logged to stderr)."""
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    ssl_context = None
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_cert is not None and tls_key is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(tls_cert, tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise click.UsageError(f"cannot load the TLS certificate or key: {exc}") from None

    from unisockets.signaling.cluster import ClusterError
    from unisockets.signaling.metrics import serve_metrics
    from unisockets.signaling.server import serve_signaling

    limits = ServerLimits(
        ping_interval=ping_interval,
        max_message_size=max_message_size,
        max_messages_per_second=rate,
        burst=burst,
        max_clients=max_clients,
        max_handshakes=max_handshakes,
        rejoin_grace=rejoin_grace,
    )

    async def run() -> None:
        try:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    partial(
                        serve_signaling,
                        host,
                        port,
                        limits=limits,
                        suffixes=suffixes,
                        ssl_context=ssl_context,
                        redis=redis,
                    )
                )
                print(server.url, flush=True)
                if metrics_port is not None:
                    try:
                        bound = await nursery.start(serve_metrics, server, host, metrics_port)
                    except OSError as exc:
                        raise click.ClickException(
                            f"cannot serve metrics on {host}:{metrics_port}: {exc}"
                        ) from None
                    shown = f"[{host}]" if ":" in host else host
                    logging.getLogger("unisockets.signaling.metrics").info(
                        "metrics on http://%s:%d/metrics, health on /healthz", shown, bound
                    )
        except* ClusterError as group:
            raise click.ClickException(str(next(leaves(group)))) from None
        except* OSError as group:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {next(leaves(group))}"
            ) from None

    def shutting_down(signum: signal.Signals) -> None:
        logging.getLogger("unisockets.signaling.server").info("%s: shutting down", signum.name)

    # The server holds every client's state while it is connected. With CPython's default
    # thresholds (700, 10, 10), the short-lived objects of each relayed message promote
    # enough survivors to set off a full collection every few seconds, and each one walks
    # the whole heap (about 1 s with 10,000 clients). Collecting the young generation every
    # 50,000 allocations instead removes them from steady relaying: measured with
    # benchmarks/signaling_load.py, server CPU per relayed message 611 -> 155 us at 10,000
    # clients and 224 -> 137 us at 1,000 (docs/benchmarks.md).
    gc.set_threshold(50_000, 20, 10)
    run_trio("signaling-server", run, on_signal=shutting_down)
