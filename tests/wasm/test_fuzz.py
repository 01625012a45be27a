"""Garbage arguments to the imports: every call returns a result or -1 with an errno.

A hand-written module (WebAssembly text) calls the imports with arguments
Hypothesis picks; the guest must run to its end (no trap), report -1 with a
WASI errno or a plausible result for each call, and the node must still
work afterwards.
"""

from __future__ import annotations

import struct

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unisockets import net
from unisockets.wasm import WasmProgram, run_wasm

pytestmark = pytest.mark.timeout(300)

#: Where the module keeps errno, a valid sockaddr_in (127.0.0.1:0), and results.
ERRNO, SOCKADDR, IOVEC, RESULTS = 64, 256, 512, 1024
#: WASI preview 1's errno values are 1..76.
WASI_ERRNOS = range(1, 77)
#: Imports that never block on a native node given these arguments (accept would).
CALLS = {
    "unisockets_socket": 3,
    "unisockets_bind": 3,
    "unisockets_connect": 3,
    "unisockets_listen": 2,
    "unisockets_send": 4,
    "unisockets_recv": 4,
}
WASI_CALLS = {"fd_close": 1, "sock_shutdown": 2, "fd_fdstat_get": 2, "fd_write": 4}

arguments = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 8, 16, -1, SOCKADDR, 65535, 65536, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)
calls = st.lists(
    st.sampled_from(sorted({**CALLS, **WASI_CALLS}.items())).flatmap(
        lambda item: st.tuples(
            st.just(item[0]), st.lists(arguments, min_size=item[1], max_size=item[1])
        )
    ),
    min_size=1,
    max_size=12,
)


def module(sequence: list[tuple[str, list[int]]]) -> bytes:
    imports = []
    for module_name, functions in (("env", CALLS), ("wasi_snapshot_preview1", WASI_CALLS)):
        for name, count in functions.items():
            signature = f"(param{' i32' * count}) (result i32)"
            imports.append(f'(import "{module_name}" "{name}" (func ${name} {signature}))')
    body = []
    for index, (name, args) in enumerate(sequence):
        consts = " ".join(f"(i32.const {value})" for value in args)
        slot = RESULTS + 8 * index
        body.append(f"(i32.store (i32.const {slot}) (call ${name} {consts}))")
        # errno after the call, so that each -1 can be checked
        body.append(f"(i32.store (i32.const {slot + 4}) (i32.load (i32.const {ERRNO})))")
    # Finally write the (result, errno) pairs to stderr: one iovec at IOVEC.
    body.append(f"(i32.store (i32.const {IOVEC}) (i32.const {RESULTS}))")
    body.append(f"(i32.store (i32.const {IOVEC + 4}) (i32.const {8 * len(sequence)}))")
    write = f"(i32.const 2) (i32.const {IOVEC}) (i32.const 1) (i32.const {IOVEC + 8})"
    body.append(f"(drop (call $fd_write {write}))")
    sockaddr = "".join(
        f"\\{byte:02x}"
        for byte in struct.pack("<H", 1) + struct.pack(">H", 0) + bytes([127, 0, 0, 1])
    )
    text = f"""(module
      {" ".join(imports)}
      (memory (export "memory") 1)
      (global (export "errno") i32 (i32.const {ERRNO}))
      (data (i32.const {SOCKADDR}) "{sockaddr}")
      (func (export "_start") {" ".join(body)}))"""
    return text.encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=calls)
def test_garbage_calls_never_trap_and_the_node_keeps_working(
    sequence: list[tuple[str, list[int]]],
) -> None:
    program = WasmProgram.from_bytes(module(sequence), "fuzz", cache_dir=False)

    stderr: list[bytes] = []

    async def main() -> None:
        async with net.open_node(None) as node:
            with trio.fail_after(60):
                status = await run_wasm(node, program, stderr=stderr.append)
            assert status == 0
            report = b"".join(stderr)
            if report:  # unless the calls closed or broke stderr
                assert len(report) == 8 * len(sequence)
                for (name, _), (result, error) in zip(
                    sequence, struct.iter_unpack("<iI", report), strict=True
                ):
                    if name in WASI_CALLS:  # WASI's convention: the errno itself
                        assert result == 0 or result in WASI_ERRNOS, (name, result)
                    else:  # POSIX: a result, or -1 and errno
                        assert result >= 0 or (result == -1 and error in WASI_ERRNOS), (
                            name,
                            result,
                            error,
                        )
            # The node is unharmed: a socket of its own still works.
            listener = node.socket()
            await listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            client = node.socket()
            await client.connect(listener.getsockname())
            connection, _ = await listener.accept()
            await client.sendall(b"ok")
            assert await connection.recv(2) == b"ok"
            for sock in (client, connection, listener):
                await sock.aclose()

    trio.run(main)
