"""A native link whose peer dies fails cleanly, in bounded time, and a reconnect makes a new one.

The native backend has no ICE restart of its own (docs/transport.md, "The
native backend"): when the peer stops answering (here SIGKILLed: no SCTP
ABORT, no DTLS close_notify, no signaling goodbye), ICE consent (RFC 7675)
expires and the link fails with :class:`trio.BrokenResourceError` ("ICE consent
expired") within the consent lifetime plus a poll; the next ``open_pipe`` to
the same id, once a new process answers behind it, negotiates a fresh link (a
new str0m peer, a new UDP socket). The peer's side of a restart (an offer on
a live link) is test_webrtc's restarted-peer test, rerun native and mixed in
test_native_rtc.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio

from unisockets.transport.native_rtc import native_available, open_native_rtc_transport
from unisockets.transport.native_rtc_link import NativePeerLink
from unisockets.transport.webrtc import LOOPBACK, WebRTCTransport
from unisockets.transport.webrtc_link_aio import LINGER_TIMEOUT

from .conftest import wait_until
from .test_webrtc import CHILD, FAST_CONSENT, HANG, A, B, _ProcessSignal, _pump_child

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not native_available(), reason="the native extension is not built"),
]

#: Seconds beyond the consent lifetime a dead peer's link may take to fail: one consent
#: interval for the check that notices, plus room for a loaded machine's scheduling.
FAIL_SLACK = 3.0


class _Retargeted(_ProcessSignal):
    """A :class:`_ProcessSignal` that can be pointed at the next child process."""

    def target(self, process: trio.Process) -> None:
        assert process.stdin is not None
        self._stdin = process.stdin


async def _child(backend: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), B, backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


async def _echo_pipe(signal: _ProcessSignal, transport: WebRTCTransport, label: str) -> None:
    await signal.write("pipe", A, label)  # the child accepts it and echoes
    pipe = await transport.open_pipe(B, label)
    await pipe.send_message(b"ping " + label.encode())
    assert await pipe.receive_message() == b"ping " + label.encode()
    return None


@pytest.mark.trio
@pytest.mark.parametrize("child_backend", ["native", "aiortc"])
async def test_a_killed_peer_fails_the_link_in_bounded_time_and_a_reconnect_makes_a_new_one(
    child_backend: str,
) -> None:
    first = await _child(child_backend)
    second: trio.Process | None = None
    try:
        signal = _Retargeted(first)
        async with (
            open_native_rtc_transport(
                A, signal, host_addresses=LOOPBACK, consent=FAST_CONSENT
            ) as transport,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_pump_child, first, transport)
            with trio.fail_after(HANG):
                await signal.write("pipe", A, "before")
                pipe = await transport.open_pipe(B, "before")
                await pipe.send_message(b"are you there")
                assert await pipe.receive_message() == b"are you there"
            old = transport.links[B]
            assert isinstance(old, NativePeerLink)
            first.kill()  # SIGKILL: no goodbye of any kind
            await first.wait()
            killed = trio.current_time()
            with trio.fail_after(HANG):
                with pytest.raises(trio.BrokenResourceError) as caught:
                    await pipe.receive_message()
            took = trio.current_time() - killed
            assert "ICE consent expired" in str(caught.value.__cause__)
            assert took <= FAST_CONSENT.lifetime + FAIL_SLACK, took
            assert B not in transport.links
            with trio.fail_after(LINGER_TIMEOUT + FAIL_SLACK):  # its peer and socket go too
                await wait_until(lambda: old.native_peer is None)
            # A new process behind the same id: the next pipe makes a new link.
            second = await _child(child_backend)
            signal.target(second)
            nursery.start_soon(_pump_child, second, transport)
            with trio.fail_after(HANG):
                await _echo_pipe(signal, transport, "after")
            new = transport.links[B]
            assert new is not old and isinstance(new, NativePeerLink)
            nursery.cancel_scope.cancel()
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
