"""Options shared by the node commands (``echo-server``, ``echo-client``, ``run``, ``demo``).

Each option validates its value when the command line is parsed, so a bad
value ends in click's usage error naming the option (exit status 2) before
anything is started. The ICE options build the ``aiortc.RTCConfiguration``
that :func:`unisockets.open_node` takes as ``rtc_configuration``
(docs/getting-started.md, "STUN and TURN").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from unisockets.protocol.addresses import is_subnet

__all__ = [
    "DEFAULT_LINK_TIMEOUT",
    "LOG_LEVELS",
    "configure_logging",
    "ice_options",
    "log_level_option",
    "node_options",
    "open_node_arguments",
    "parse_ice_server",
    "rtc_configuration",
    "signaling_option",
    "subnet_option",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds a peer link may take to connect (the WebRTC transport's default).
DEFAULT_LINK_TIMEOUT = 15.0

#: The ``--log-level`` choices, the names of :mod:`logging`'s levels.
LOG_LEVELS = ("debug", "info", "warning", "error")

#: URL schemes aiortc's ICE agent uses (``stuns:`` is parsed but never contacted).
ICE_SCHEMES = ("stun", "turn", "turns")


def _signaling_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
        raise click.BadParameter(f"expected a ws://HOST:PORT or wss://HOST:PORT URL, got {value!r}")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise click.BadParameter(f"bad port in {value!r}") from None
    return value


def signaling_option(help_text: str) -> Callable[[F], F]:
    """The ``--signaling URL`` option (``ws://`` or ``wss://``, checked when parsed).

    Args:
        help_text: the option's help.

    Returns:
        A click decorator.
    """
    return click.option("--signaling", metavar="URL", callback=_signaling_url, help=help_text)


def _subnet(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not is_subnet(value):
        raise click.BadParameter(f"expected three octets such as 10.0.0, got {value!r}")
    return value


#: ``--subnet``: the overlay subnet to join.
subnet_option = click.option(
    "--subnet",
    default="10.0.0",
    metavar="A.B.C",
    show_default=True,
    callback=_subnet,
    help="Overlay subnet to join, three octets; the server gives this node SUBNET.N.",
)

#: ``--log-level``: one of :data:`LOG_LEVELS`, any case.
log_level_option = click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Least severe log messages shown on stderr.",
)


def configure_logging(level: str) -> None:
    """Send log records of ``level`` and above to stderr, one line each.

    Args:
        level: one of :data:`LOG_LEVELS` (any case).
    """
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )


def parse_ice_server(url: str) -> tuple[str, str]:
    """Check a STUN/TURN URL the way aiortc will read it.

    aiortc (``aiortc.rtcicetransport.parse_stun_turn_uri``) takes
    ``stun:HOST[:PORT]`` (port 3478), ``turn:HOST[:PORT][?transport=udp|tcp]``
    (3478, UDP) and ``turns:HOST[:PORT][?transport=tcp]`` (5349, TLS over TCP),
    RFC 7064 / RFC 7065 syntax without IPv6 literals; it silently skips a
    TURN URL with another transport.

    Args:
        url: the URL as given.

    Returns:
        ``(kind, url)``: kind ``"stun"`` or ``"turn"`` (``turns:`` included).

    Raises:
        ValueError: another scheme, or a URL aiortc cannot parse or would skip.
    """
    scheme = url.partition(":")[0].lower()
    if scheme not in ICE_SCHEMES:
        raise ValueError(f"expected a stun:, turn: or turns: URL, got {url!r}")
    from aiortc.rtcicetransport import parse_stun_turn_uri

    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError:
        raise ValueError(f"expected {scheme}:HOST[:PORT], got {url!r}") from None
    transports: dict[str, set[str | None]] = {
        "stun": {None},
        "turn": {"udp", "tcp"},
        "turns": {"tcp"},
    }
    if parsed.get("transport") not in transports[scheme]:
        raise ValueError(f"aiortc supports no transport={parsed.get('transport')} for {scheme}:")
    return ("stun" if scheme == "stun" else "turn"), url


def _ice_servers(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    kinds: dict[str, str] = {}
    for url in value:
        try:
            kind, _ = parse_ice_server(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if kind in kinds:
            raise click.BadParameter(
                f"aiortc uses only one {kind} server: {kinds[kind]!r}, so {url!r} would be "
                "ignored (give one stun: and one turn:/turns: URL at most)"
            )
        kinds[kind] = url
    return value


def ice_options(function: F) -> F:
    """Add ``--ice-server``, ``--ice-username``, ``--ice-credential``, ``--link-timeout``.

    Args:
        function: the click command function.

    Returns:
        ``function`` with the four options.
    """
    options = [
        click.option(
            "--ice-server",
            "ice_servers",
            multiple=True,
            metavar="URL",
            callback=_ice_servers,
            help="STUN or TURN server for peers behind NATs: stun:HOST[:PORT], "
            "turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT] (repeatable: "
            "one of each kind).",
        ),
        click.option("--ice-username", metavar="NAME", help="Username for the TURN server."),
        click.option("--ice-credential", metavar="SECRET", help="Password for the TURN server."),
        click.option(
            "--link-timeout",
            default=DEFAULT_LINK_TIMEOUT,
            metavar="SECONDS",
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds a peer link may take to connect (ICE, DTLS, SCTP).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def rtc_configuration(
    ice_servers: tuple[str, ...], username: str | None, credential: str | None
) -> Any:
    """The ``aiortc.RTCConfiguration`` of the ICE options, or ``None`` without servers.

    Args:
        ice_servers: URLs checked by :func:`parse_ice_server`.
        username: the TURN username (``--ice-username``).
        credential: the TURN password (``--ice-credential``).

    Returns:
        ``RTCConfiguration(iceServers=[RTCIceServer(url, ...), ...])``, one
        server per URL, the credentials on the TURN ones; ``None`` (no ICE
        servers: host candidates only) when ``ice_servers`` is empty.

    Raises:
        click.UsageError: a TURN server without both credentials, or
            credentials without a TURN server.
    """
    turn = [url for url in ice_servers if parse_ice_server(url)[0] == "turn"]
    if turn and (username is None or credential is None):
        raise click.UsageError(f"{turn[0]} needs --ice-username and --ice-credential")
    if not turn and (username is not None or credential is not None):
        raise click.UsageError(
            "--ice-username/--ice-credential need a turn: or turns: --ice-server"
        )
    if not ice_servers:
        return None
    from aiortc import RTCConfiguration, RTCIceServer

    return RTCConfiguration(
        iceServers=[
            RTCIceServer(url, username=username, credential=credential)
            if url in turn
            else RTCIceServer(url)
            for url in ice_servers
        ]
    )


def node_options(function: F) -> F:
    """Add the options of a command that opens a node.

    ``--signaling URL`` or ``--native``, ``--subnet``, ``--ice-address``
    (repeatable) and the options of :func:`ice_options`; turn them into
    :func:`unisockets.open_node`'s arguments with :func:`open_node_arguments`.

    Args:
        function: the click command function.

    Returns:
        ``function`` with the options.
    """
    options = [
        signaling_option("Signaling server URL (ws:// or wss://); omit with --native."),
        click.option(
            "--native", is_flag=True, help="Use the OS's TCP instead of a signaling server."
        ),
        subnet_option,
        click.option(
            "--ice-address",
            "ice_addresses",
            multiple=True,
            metavar="IP",
            help="Local address to gather WebRTC host candidates on (repeatable); "
            "default: every non-loopback interface.",
        ),
        ice_options,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def open_node_arguments(
    signaling: str | None,
    native: bool,
    ice_addresses: tuple[str, ...],
    ice_servers: tuple[str, ...],
    ice_username: str | None,
    ice_credential: str | None,
    link_timeout: float,
) -> tuple[str | None, dict[str, Any]]:
    """The signaling URL and keyword arguments of :func:`unisockets.open_node` for the options.

    Args:
        signaling, native, ice_addresses, ice_servers, ice_username,
            ice_credential, link_timeout: the values of :func:`node_options`.

    Returns:
        ``(url, options)``: ``url`` is ``None`` with ``--native``; ``options``
        holds ``ice_addresses``, ``rtc_configuration`` and ``link_timeout``.

    Raises:
        click.UsageError: not exactly one of ``--signaling`` and ``--native``,
            or credentials that do not match the TURN servers.
    """
    if native == bool(signaling):
        raise click.UsageError("give exactly one of --signaling URL and --native")
    options = {
        "ice_addresses": ice_addresses or None,
        "rtc_configuration": rtc_configuration(ice_servers, ice_username, ice_credential),
        "link_timeout": link_timeout,
    }
    return (None if native else signaling), options
