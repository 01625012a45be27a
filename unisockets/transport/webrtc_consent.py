"""Consent freshness (RFC 7675) for our aiortc peer connections, per connection.

aioice checks consent with module-wide settings (``aioice.ice.CONSENT_INTERVAL``
and ``CONSENT_FAILURES``): every check waits 0.5 s for its response with no
retransmission, and a few late responses in a row end the connection. On a
busy event loop a healthy peer's responses arrive late, and the link dies.
Changing those module settings would change every other aiortc user in the
process, so we leave them alone and replace the checks **of our own peer
connections only**: once a peer connection is connected,
:func:`take_over_consent` cancels aioice's checking task on that
connection's ICE agent and runs ours in its place, driven by the sans-IO
:class:`unisockets.protocol.consent.ConsentFreshness` (the policy and every
decision live there: RFC 7675's 5 s checks and 30 s lifetime, and no expiry
before several checks went unanswered).

Each check is one STUN binding request per nominated candidate pair, sent
through aioice's own transaction machinery (authenticated with the peer's
ICE password) with :data:`CHECK_RETRANSMISSIONS` retransmissions, so a
response that a busy loop handles seconds late still counts. Our task is
stored where aioice keeps its own (``Connection._query_consent_task``), so
closing the ICE agent (closing the peer connection) cancels and awaits it:
it never outlives its connection.

This reads aioice internals (``_nominated``, ``_query_consent_task``, the
pair's STUN protocol); :func:`take_over_consent` says ``False`` when they are
not there, and the link then keeps aioice's own checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from aioice import stun

from ..protocol.consent import EXPIRE, SEND_CHECK, ConsentFreshness, ConsentPolicy
from .webrtc_ice import ice_connection

__all__ = ["CHECK_RETRANSMISSIONS", "take_over_consent"]

logger = logging.getLogger(__name__)

#: Retransmissions of each consent check (aioice doubles its 0.5 s RTO each time:
#: a check is answered if a response arrives within 7.5 s of sending it).
CHECK_RETRANSMISSIONS = 3


def take_over_consent(
    pc: Any,
    policy: ConsentPolicy,
    on_expired: Callable[[str], object],
    *,
    rng: random.Random | None = None,
) -> bool:
    """Run our consent checks on a connected peer connection instead of aioice's.

    Call on the peer connection's asyncio loop once it is connected (ICE has
    nominated its pair and started aioice's checks).

    Args:
        pc: the connected :class:`aiortc.RTCPeerConnection`.
        policy: when to check and when consent expires.
        on_expired: called once, on the asyncio loop, with a human-readable
            reason when consent expires; the ICE agent is closed right after
            (RFC 7675: cease sending), which closes the peer connection.
            It must not raise (errors are logged).
        rng: jitter source; a fresh :class:`random.Random` by default.

    Returns:
        True if our checks now run; False if the internals were not found
        (aioice's own checks go on).
    """
    connection = ice_connection(pc)
    if connection is None or not hasattr(connection, "_query_consent_task"):
        return False
    if getattr(connection, "_closing", False) or not hasattr(connection, "_nominated"):
        return False
    old = connection._query_consent_task
    if old is not None and not old.done():
        old.cancel()
    loop = asyncio.get_running_loop()
    consent = ConsentFreshness(loop.time(), policy, rng or random.Random())
    connection._query_consent_task = loop.create_task(
        _check_consent(connection, consent, on_expired)
    )
    return True


async def _check_consent(
    connection: Any, consent: ConsentFreshness, on_expired: Callable[[str], object]
) -> None:
    """Drive ``consent`` for ``connection`` until it expires or the task is cancelled."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    checks: set[asyncio.Task[None]] = set()

    async def check() -> None:
        answered = await _send_check(connection)
        if answered:
            consent.check_answered(loop.time())
        else:
            consent.check_unanswered(loop.time())
        changed.set()

    try:
        while True:
            action = consent.poll(loop.time())
            if action is SEND_CHECK:
                task = loop.create_task(check())
                checks.add(task)
                task.add_done_callback(checks.discard)
                continue
            if action is EXPIRE:
                break
            changed.clear()
            delay = max(0.0, consent.deadline() - loop.time())
            with contextlib.suppress(TimeoutError):  # the deadline came first
                await asyncio.wait_for(changed.wait(), delay)
    finally:
        consent.stop()
        for task in checks:
            task.cancel()
    silent = loop.time() - consent.last_answer
    reason = (
        f"ICE consent expired: no response to {consent.unanswered} consent checks "
        f"in {silent:.0f} s (RFC 7675)"
    )
    logger.info("%s; closing the ICE connection", reason)
    try:
        on_expired(reason)
    except Exception:
        logger.exception("consent expiry handler failed")
    connection._query_consent_task = None  # close() must not cancel (and await) us
    await connection.close()


async def _send_check(connection: Any) -> bool:
    """Send one consent check on every nominated pair; True if all of them were answered."""
    password = connection.remote_password
    if password is None:
        return False
    key = password.encode("utf8")
    pairs = list(connection._nominated.values())
    if not pairs:
        return False
    for pair in pairs:
        request = connection.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(
                request,
                pair.remote_addr,
                integrity_key=key,
                retransmissions=CHECK_RETRANSMISSIONS,
            )
        except stun.TransactionError:
            return False
        except (ConnectionError, OSError) as exc:  # the socket went away under us
            logger.debug("consent check could not be sent: %s", exc)
            return False
    return True
