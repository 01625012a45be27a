"""Running WebAssembly programs (wasm32-wasi) whose Berkeley sockets are unisockets sockets.

Programs built against the original unisockets C ABI (``unisockets_socket``,
``unisockets_bind``, ... imported from ``env``; examples/c/unisockets.h)
run unchanged. See docs/wasm.md.

- :func:`run_wasm`: run a program as a guest of a node, in its own thread.
- :class:`WasmProgram`: a compiled program (cached across runs).
- :class:`GuestTrapped`: the program ended with a trap.
"""

from .runner import GuestTrapped, WasmProgram, run_wasm

__all__ = ["GuestTrapped", "WasmProgram", "run_wasm"]
