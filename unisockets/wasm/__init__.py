"""Running WebAssembly programs (wasm32-wasi) whose Berkeley sockets are unisockets sockets.

Programs built against the original unisockets C ABI (``unisockets_socket``,
``unisockets_bind``, ... imported from ``env``; examples/c/unisockets.h)
run unchanged. See docs/wasm.md.

- :func:`run_wasm`: run a program as a guest of a node, in its own thread.
- :class:`WasmProgram`: a compiled program (cached across runs).
- :class:`GuestTrapped`: the program ended with a trap.

The runner (and wasmtime) is imported on first use of these names, so
:mod:`unisockets.wasm.abi`, the import table, also loads where wasmtime
does not (Pyodide, for the browser page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import GuestTrapped, WasmProgram, run_wasm

__all__ = ["GuestTrapped", "WasmProgram", "run_wasm"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
