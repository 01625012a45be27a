"""When a request's answer is due: from the call, or from the driver's write.

The signaling session core with ``deadline_from_write`` (the trio client's
choice, docs/index.md "The layers"): a request issued in a session has no
deadline until the driver reports it written; from then it has
``request_timeout``. Without it, the deadline counts from the call.
"""

from __future__ import annotations

import errno
import math
import random

from unisockets.protocol import Acknowledged, encode
from unisockets.protocol.session import Send, SignalingSession, Ticket

TIMEOUT = 10.0


def _joined(*, deadline_from_write: bool) -> SignalingSession:
    session = SignalingSession(
        "10.0.0",
        request_timeout=TIMEOUT,
        rng=random.Random(1),
        deadline_from_write=deadline_from_write,
    )
    session.connection_made(0.0)
    session.receive_data(encode(Acknowledged(id="10.0.0.1", rejected=False)), 0.0)
    assert session.connected
    return session


def _expired(session: SignalingSession, ticket: Ticket, now: float) -> bool:
    session.expire(now)
    return ticket.error is not None and ticket.error.errno == errno.ETIMEDOUT


def test_the_deadline_counts_from_the_write() -> None:
    session = _joined(deadline_from_write=True)
    ticket, outputs = session.bind("10.0.0.1:5", 1.0)
    sends = [output for output in outputs if isinstance(output, Send)]
    assert [send.ticket for send in sends] == [ticket]  # the driver knows what it writes
    assert ticket.deadline == math.inf and session.next_deadline() == math.inf
    assert not _expired(session, ticket, 100.0)  # 99 s in the outbox: not late
    session.written(ticket, 100.0)
    assert ticket.deadline == 100.0 + TIMEOUT == session.next_deadline()
    assert not _expired(session, ticket, 109.0)
    assert _expired(session, ticket, 110.0)


def test_without_reports_the_deadline_counts_from_the_call() -> None:
    session = _joined(deadline_from_write=False)
    ticket, _ = session.bind("10.0.0.1:5", 1.0)
    assert ticket.deadline == 1.0 + TIMEOUT
    session.written(ticket, 5.0)  # ignored
    assert ticket.deadline == 1.0 + TIMEOUT
    assert _expired(session, ticket, 11.0)


def test_a_write_reported_after_the_session_ended_changes_nothing() -> None:
    session = _joined(deadline_from_write=True)
    ticket, _ = session.connect("10.0.0.2:80", 1.0)
    session.connection_lost("gone", 2.0)
    deadline = ticket.deadline
    session.written(ticket, 3.0)
    assert ticket.deadline == deadline
