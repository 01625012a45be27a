"""The socket state machine: the table against a model of the POSIX rules, and the drivers.

The model (:func:`expected`) is written from the rules of connect(2), bind(2),
listen(2), accept(2), send(2), recv(2), shutdown(2) and close(2) on its own,
without looking at the table; every pair of a state and an input is compared,
then Hypothesis drives random sequences through the machine and the model.
The last tests run the same illegal call sequences through the native
:class:`unisockets.net.Socket` (memory backend), the browser socket and the
bare machine, and compare the errnos.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from unisockets.protocol.errors import LocalProtocolError
from unisockets.protocol.server_states import render_mermaid
from unisockets.protocol.socket_options import SocketOptions
from unisockets.protocol.socket_states import (
    CALLS,
    OUTCOMES,
    REFUSALS,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SOCKET_MACHINE,
    TRANSITIONS,
    SocketInput,
    SocketState,
    SocketStateMachine,
    check_backlog,
    check_bufsize,
    check_local_host,
)

S = SocketState
I = SocketInput  # noqa: E741 - as in the module

Outcome = SocketState | int | None  # next state, errno, or None: a driver bug


def expected(state: SocketState, call: SocketInput) -> Outcome:
    """The model: what POSIX (and our documented choices) say for one pair."""
    if call is I.CLOSE:
        return S.CLOSED  # close is idempotent, as socket.socket.close
    if state is S.CLOSED:
        if call in (I.BIND_FAILED, I.CONNECT_FAILED):
            return S.CLOSED  # I/O that ends after close changes nothing
        return errno.EBADF
    if call in OUTCOMES:
        pending = {I.BIND_DONE: S.BINDING, I.BIND_FAILED: S.BINDING}.get(call, S.CONNECTING)
        if state is not pending:
            return None
        return {I.BIND_DONE: S.BOUND, I.CONNECT_DONE: S.CONNECTED}.get(call, S.FRESH)
    if call in (I.GETSOCKNAME, I.OPTION):
        return state  # setsockopt/getsockopt: every open state (setsockopt(2): EBADF only)
    if call is I.BIND:
        return S.BINDING if state is S.FRESH else errno.EINVAL
    if call is I.LISTEN:
        return S.LISTENING if state in (S.BOUND, S.LISTENING) else errno.EINVAL
    if call is I.ACCEPT:
        return state if state is S.LISTENING else errno.EINVAL
    if call is I.CONNECT:
        if state is S.FRESH:
            return S.CONNECTING
        return errno.EISCONN if state in (S.CONNECTING, S.CONNECTED) else errno.EINVAL
    # getpeername, send, recv, shutdown
    return state if state is S.CONNECTED else errno.ENOTCONN


def actual(state: SocketState, call: SocketInput) -> Outcome:
    """What the tables say for one pair."""
    if (state, call) in TRANSITIONS:
        return TRANSITIONS[state, call]
    if (state, call) in REFUSALS:
        return REFUSALS[state, call].errno
    return None


def machine_in(state: SocketState) -> SocketStateMachine:
    """A machine brought into ``state`` through legal inputs only."""
    paths = {
        S.FRESH: [],
        S.BINDING: [I.BIND],
        S.BOUND: [I.BIND, I.BIND_DONE],
        S.LISTENING: [I.BIND, I.BIND_DONE, I.LISTEN],
        S.CONNECTING: [I.CONNECT],
        S.CONNECTED: [I.CONNECT, I.CONNECT_DONE],
        S.CLOSED: [I.CLOSE],
    }
    machine = SocketStateMachine()
    for step in paths[state]:
        machine.handle(step)
    assert machine.state is state
    return machine


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("call", list(I))
def test_every_pair_matches_the_model(state: SocketState, call: SocketInput) -> None:
    assert actual(state, call) == expected(state, call)
    machine = machine_in(state)
    want = expected(state, call)
    if isinstance(want, SocketState):
        assert machine.handle(call) is want
        assert machine.state is want
    elif want is None:
        with pytest.raises(LocalProtocolError):
            machine.handle(call)
        assert machine.state is state
    else:
        with pytest.raises(OSError) as info:
            machine.handle(call)
        assert info.value.errno == want
        assert machine.state is state  # a refused call changes nothing


def test_transitions_and_refusals_cover_every_call_exactly_once() -> None:
    assert set(I) == CALLS | OUTCOMES and not CALLS & OUTCOMES
    for state in S:
        for call in CALLS:
            assert ((state, call) in TRANSITIONS) != ((state, call) in REFUSALS), (state, call)
    assert set(TRANSITIONS).isdisjoint(REFUSALS)


def test_refusal_messages_are_the_drivers_messages() -> None:
    def message(state: SocketState, call: SocketInput) -> str:
        return str(REFUSALS[state, call].error())

    einval = f"[Errno {errno.EINVAL}] {os.strerror(errno.EINVAL)}"
    assert message(S.BOUND, I.BIND) == f"{einval}: socket already bound or connected"
    assert message(S.FRESH, I.LISTEN).endswith(": listen needs a bound, unconnected socket")
    assert message(S.BOUND, I.ACCEPT).endswith(": accept needs a listening socket")
    assert message(S.LISTENING, I.CONNECT).endswith(": connect on a bound or listening socket")
    error = REFUSALS[S.CONNECTED, I.CONNECT].error()
    assert isinstance(error, OSError) and error.errno == errno.EISCONN
    assert isinstance(REFUSALS[S.FRESH, I.SEND].error(), OSError)
    assert REFUSALS[S.CLOSED, I.RECV].detail is None


def test_shutdown_flags_epipe_and_eof() -> None:
    machine = machine_in(S.CONNECTED)
    with pytest.raises(OSError) as info:
        machine.shutdown(7)
    assert info.value.errno == errno.EINVAL
    assert machine.shutdown(SHUT_RD) is False  # reading side only: nothing to send
    assert machine.read_shut and not machine.write_shut
    machine.check(I.SEND)
    assert machine.shutdown(SHUT_WR) is True  # the driver sends EOF once
    assert machine.shutdown(SHUT_RDWR) is False
    with pytest.raises(BrokenPipeError) as info:
        machine.check(I.SEND)
    assert info.value.errno == errno.EPIPE
    machine.check(I.RECV)  # legal: the driver returns b"" because read_shut
    assert machine.close() is True
    assert machine.close() is False
    with pytest.raises(OSError) as info:
        machine.check(I.SEND)
    assert info.value.errno == errno.EBADF  # closed wins over shut down
    with pytest.raises(OSError) as info:
        machine.shutdown(SHUT_WR)
    assert info.value.errno == errno.EBADF


def test_shutdown_before_connect_is_enotconn_even_with_a_bad_how() -> None:
    with pytest.raises(OSError) as info:
        SocketStateMachine().shutdown(99)
    assert info.value.errno == errno.ENOTCONN


def test_shut_constants_are_the_socket_modules() -> None:
    assert (SHUT_RD, SHUT_WR, SHUT_RDWR) == (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR)


def test_attempt_failure_and_close_while_pending() -> None:
    machine = SocketStateMachine()
    with pytest.raises(ConnectionRefusedError), machine.attempt(I.CONNECT):
        assert machine.state is S.CONNECTING
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert machine.state is S.FRESH
    with machine.attempt(I.BIND):
        assert machine.close()  # closed while binding
    assert machine.closed
    with pytest.raises(OSError) as info:
        machine.handle(I.BIND_DONE)
    assert info.value.errno == errno.EBADF
    with (
        pytest.raises(ValueError, match="only bind and connect"),
        SocketStateMachine().attempt(I.SEND),
    ):
        pytest.fail("not an attempt")
    listening = machine_in(S.LISTENING)
    with pytest.raises(OSError) as info, listening.attempt(I.CONNECT):
        pytest.fail("a refused attempt must not run its block")
    assert info.value.errno == errno.EINVAL and listening.state is S.LISTENING


def test_argument_checks() -> None:
    assert check_backlog(0) == 0
    assert check_bufsize(1) == 1
    for bad_backlog in (True, 1.5, "5", None):
        with pytest.raises(OSError) as info:
            check_backlog(bad_backlog)
        assert info.value.errno == errno.EINVAL
    for bad_size in (0, -1, True, 2.0):
        with pytest.raises(OSError) as info:
            check_bufsize(bad_size)
        assert info.value.errno == errno.EINVAL
    for host in ("", "0.0.0.0", "localhost", "10.0.0.2"):
        check_local_host(host, "10.0.0.2")
    with pytest.raises(OSError) as info:
        check_local_host("10.0.0.3", "10.0.0.2")
    assert info.value.errno == errno.EADDRNOTAVAIL


def test_mermaid_diagram_draws_every_transition() -> None:
    diagram = render_mermaid(SOCKET_MACHINE)
    assert "    [*] --> fresh\n" in diagram and "    closed --> [*]\n" in diagram
    edges = {
        line.strip().split(": ")[0]: line.split(": ")[1].split(", ")
        for line in diagram.splitlines()
        if "-->" in line and ": " in line and "[*]" not in line
    }
    drawn = {
        (source, label, target)
        for key, labels in edges.items()
        for source, target in [key.split(" --> ")]
        for label in labels
    }
    assert drawn == {(s.value, i.value, t.value) for (s, i), t in TRANSITIONS.items()}


class SocketRules(RuleBasedStateMachine):
    """Random inputs through the machine, against the model and the flag rules."""

    def __init__(self) -> None:
        super().__init__()
        self.machine = SocketStateMachine()
        self.state = S.FRESH
        self.read_shut = False
        self.write_shut = False

    @rule(call=st.sampled_from(sorted(I, key=lambda call: call.value)))
    def handle(self, call: SocketInput) -> None:
        want = expected(self.state, call)
        if want is not None and call is I.SEND and self.write_shut and self.state is S.CONNECTED:
            want = errno.EPIPE
        if isinstance(want, SocketState):
            assert self.machine.handle(call) is want
            self.state = want
        elif want is None:
            with pytest.raises(LocalProtocolError):
                self.machine.handle(call)
        else:
            with pytest.raises(OSError) as info:
                self.machine.handle(call)
            assert info.value.errno == want

    @rule(how=st.sampled_from([SHUT_RD, SHUT_WR, SHUT_RDWR, -1, 3]))
    def shutdown(self, how: int) -> None:
        if self.state is not S.CONNECTED:
            with pytest.raises(OSError) as info:
                self.machine.shutdown(how)
            assert info.value.errno == (errno.EBADF if self.state is S.CLOSED else errno.ENOTCONN)
        elif how not in (SHUT_RD, SHUT_WR, SHUT_RDWR):
            with pytest.raises(OSError) as info:
                self.machine.shutdown(how)
            assert info.value.errno == errno.EINVAL
        else:
            newly_shut = how != SHUT_RD and not self.write_shut
            assert self.machine.shutdown(how) is newly_shut
            self.read_shut |= how != SHUT_WR
            self.write_shut |= how != SHUT_RD

    @rule(call=st.sampled_from([I.BIND, I.CONNECT]), fail=st.booleans(), close=st.booleans())
    def attempt(self, call: SocketInput, fail: bool, close: bool) -> None:
        if self.state is not S.FRESH:
            with pytest.raises(OSError), self.machine.attempt(call):
                pytest.fail("refused")
            return
        try:
            with self.machine.attempt(call):
                if close:
                    self.machine.close()
                if fail:
                    raise ConnectionRefusedError
        except ConnectionRefusedError:
            pass
        self.state = S.CLOSED if close else S.FRESH if fail else expected(S.FRESH, call)  # type: ignore[assignment]

    @invariant()
    def agrees(self) -> None:
        assert self.machine.state is self.state
        assert self.machine.closed == (self.state is S.CLOSED)
        assert (self.machine.read_shut, self.machine.write_shut) == (
            self.read_shut,
            self.write_shut,
        )
        if self.read_shut or self.write_shut:
            assert self.state in (S.CONNECTED, S.CLOSED)


TestSocketRules = SocketRules.TestCase
TestSocketRules.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


@given(st.lists(st.sampled_from(sorted(CALLS, key=lambda call: call.value)), max_size=20))
def test_a_refused_call_never_changes_the_state(calls: list[SocketInput]) -> None:
    machine = SocketStateMachine()
    for call in calls:
        before = machine.state
        try:
            machine.handle(call)
        except OSError:
            assert machine.state is before


# --- the drivers ---------------------------------------------------------------------------

#: Illegal call sequences and the errno of each step (0: the call succeeds).
#: ``connect`` goes to a listening socket of the same node.
SEQUENCES: dict[str, list[tuple[str, Any, int]]] = {
    "fresh, bound, listening, closed": [
        ("getpeername", None, errno.ENOTCONN),
        ("send", b"x", errno.ENOTCONN),
        ("recv", 1, errno.ENOTCONN),
        ("shutdown", SHUT_WR, errno.ENOTCONN),
        ("listen", 1, errno.EINVAL),
        ("accept", None, errno.EINVAL),
        ("bind", None, 0),
        ("bind", None, errno.EINVAL),
        ("connect", None, errno.EINVAL),
        ("accept", None, errno.EINVAL),
        ("listen", "many", errno.EINVAL),
        ("listen", 1, 0),
        ("listen", 1, 0),
        ("bind", None, errno.EINVAL),
        ("connect", None, errno.EINVAL),
        ("getpeername", None, errno.ENOTCONN),
        ("setsockopt", (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1), 0),
        ("setsockopt", (socket.SOL_SOCKET, socket.SO_BROADCAST, 1), errno.ENOPROTOOPT),
        ("getsockopt", (socket.SOL_SOCKET, socket.SO_REUSEADDR), 0),
        ("close", None, 0),
        ("close", None, 0),
        ("getsockname", None, errno.EBADF),
        ("setsockopt", (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1), errno.EBADF),
        ("getsockopt", (socket.SOL_SOCKET, socket.SO_BROADCAST), errno.EBADF),
        ("bind", None, errno.EBADF),
        ("listen", 1, errno.EBADF),
        ("accept", None, errno.EBADF),
        ("connect", None, errno.EBADF),
        ("shutdown", SHUT_RD, errno.EBADF),
    ],
    "connected, shut down, closed": [
        ("connect", None, 0),
        ("connect", None, errno.EISCONN),
        ("bind", None, errno.EINVAL),
        ("listen", 1, errno.EINVAL),
        ("accept", None, errno.EINVAL),
        ("shutdown", 9, errno.EINVAL),
        ("recv", 0, errno.EINVAL),
        ("shutdown", SHUT_WR, 0),
        ("send", b"x", errno.EPIPE),
        ("shutdown", SHUT_RD, 0),
        ("recv", 5, 0),
        ("close", None, 0),
        ("send", b"x", errno.EBADF),
        ("recv", 5, errno.EBADF),
        ("getpeername", None, errno.EBADF),
    ],
}


def run_on_machine(steps: list[tuple[str, Any, int]]) -> list[int | None]:
    """The errnos the bare machine gives for ``steps``, replayed as a driver would."""
    machine = SocketStateMachine()
    options = SocketOptions(socket)
    calls: dict[str, Callable[[Any], object]] = {
        "getsockname": lambda _: machine.check(I.GETSOCKNAME),
        "setsockopt": lambda args: (machine.check(I.OPTION), options.set(*args)),
        "getsockopt": lambda args: (machine.check(I.OPTION), options.get(*args)),
        "getpeername": lambda _: machine.check(I.GETPEERNAME),
        "send": lambda _: machine.check(I.SEND),
        "recv": lambda size: (machine.check(I.RECV), check_bufsize(size)),
        "shutdown": machine.shutdown,
        "listen": lambda backlog: (
            machine.check(I.LISTEN),
            check_backlog(backlog),
            machine.handle(I.LISTEN),
        ),
        "accept": lambda _: machine.check(I.ACCEPT),
        "close": lambda _: machine.close(),
    }
    errnos: list[int | None] = []
    for name, argument, _ in steps:
        try:
            if name in ("bind", "connect"):
                with machine.attempt(I.BIND if name == "bind" else I.CONNECT):
                    pass
                machine.handle(I.BIND_DONE if name == "bind" else I.CONNECT_DONE)
            else:
                calls[name](argument)
        except OSError as exc:
            errnos.append(exc.errno)
        else:
            errnos.append(0)
    return errnos


async def run_on_socket(
    sock: Any, listening: Any, steps: list[tuple[str, Any, int]], bind_to: Any
) -> list[int | None]:
    """The errnos a socket object (native or browser) gives for ``steps``."""
    errnos: list[int | None] = []
    for name, argument, _ in steps:
        try:
            if name == "bind":
                await sock.bind(bind_to)
            elif name == "connect":
                await sock.connect(listening.getsockname())
            elif name == "accept":
                await sock.accept()  # only ever refused here
            elif name in ("getsockname", "getpeername", "close"):
                getattr(sock, name)()
            elif name == "listen":
                result = sock.listen(argument)
                if isinstance(result, Awaitable):
                    await result
            elif name == "shutdown":
                sock.shutdown(argument)
            elif name in ("setsockopt", "getsockopt"):
                getattr(sock, name)(*argument)
            else:
                await getattr(sock, name)(argument)
        except OSError as exc:
            errnos.append(exc.errno)
        else:
            errnos.append(0)
    return errnos


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_the_machine_gives_the_sequences_errnos(name: str) -> None:
    assert run_on_machine(SEQUENCES[name]) == [step[2] for step in SEQUENCES[name]]


@pytest.mark.trio
@pytest.mark.parametrize("name", list(SEQUENCES))
async def test_native_socket_raises_what_the_machine_says(name: str) -> None:
    import unisockets.net as net
    from unisockets.signaling.server import open_signaling_server
    from unisockets.transport.memory import MemoryNetwork

    from ..net.transports import memory_transport

    steps = SEQUENCES[name]
    with trio.fail_after(60):
        async with (
            open_signaling_server(host="127.0.0.1", port=0) as server,
            net.open_node(
                server.url, "10.0.0", transport=memory_transport(MemoryNetwork())
            ) as node,
        ):
            listening = node.socket()
            await listening.bind(("", 0))
            await listening.listen(5)
            sock = node.socket()
            errnos = await run_on_socket(sock, listening, steps, (node.address, 0))
            sock.close()
            listening.close()
    assert errnos == run_on_machine(steps) == [step[2] for step in steps]


class _StandInNode:
    """The few calls of a browser node that a socket makes before it is connected.

    ``unisockets.browser`` needs Pyodide to make a real node (its interop with
    native nodes runs in Chromium, tests/browser); this stands in so that the
    browser socket's own rules run here. Nobody connects to it.
    """

    address = "10.0.0.2"

    def __init__(self) -> None:
        self.bound: set[tuple[str, int]] = set()

    async def bind(self, port: int, host: str = "") -> tuple[str, int]:
        await asyncio.sleep(0)
        bound = (host if host not in ("", "0.0.0.0") else self.address, port or 1234)
        self.bound.add(bound)
        return bound

    async def unbind(self, address: tuple[str, int]) -> None:
        self.bound.discard(address)

    def listen_bound(self, address: tuple[str, int], backlog: int) -> object:
        class _Listener:
            def close(self) -> None:
                pass

            async def aclose(self) -> None:
                pass

        return _Listener()

    def _spawn(self, coroutine: Any) -> None:
        coroutine.close()

    def _release(self, alias: str) -> None:
        self.bound.discard((self.address, int(alias.rsplit(":", 1)[1])))


def test_browser_socket_raises_what_the_machine_says_before_connecting() -> None:
    from unisockets.driver.sockets import Socket as BrowserSocket

    steps = SEQUENCES["fresh, bound, listening, closed"]
    node = _StandInNode()

    async def main() -> list[int | None]:
        sock = BrowserSocket(node)  # type: ignore[arg-type]
        listening = BrowserSocket(node)  # type: ignore[arg-type]
        return await run_on_socket(sock, listening, steps, ("", 0))

    assert asyncio.run(main()) == run_on_machine(steps) == [step[2] for step in steps]
