"""Running a wasm32-wasi program as a guest of a unisockets node, in its own thread.

:func:`run_wasm` starts the guest in a new thread and waits for it in trio.
The guest's ``unisockets_*`` calls block its own thread while trio does the
work (:mod:`unisockets.wasm.host`), so many guests and the node itself run
side by side. Cancelling :func:`run_wasm` (a cancel scope, Ctrl-C) stops the
guest: its blocked call is cancelled and every host call fails with
``ECANCELED``, and wasmtime's epoch interruption traps it at its next
function call or loop iteration (also when it computes without host calls).
:func:`run_wasm` then waits for the thread to end and closes the guest's
sockets; nothing outlives it.

wasmtime-py pitfalls handled here (see docs/wasm.md): each guest has its own
Engine (so stopping one guest interrupts only that one), Store and Linker,
all created, used and dropped explicitly in the guest's thread; no exception
object that could keep a Store alive leaves the thread; compiled modules are
cached (in memory and on disk), because compiling a Go module takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import trio
import wasmtime

from ..net.node import Node
from .host import SocketHost
from .wasi import (
    BytesInput,
    CallbackOutput,
    FdInput,
    FdOutput,
    InputSource,
    OutputSink,
    define_wasi,
)

__all__ = ["GuestTrapped", "WasmProgram", "run_wasm"]

logger = logging.getLogger("unisockets.wasm")

#: What a guest's standard output/error goes to: the host process's own, or a callback.
Output = Literal["inherit"] | Callable[[bytes], None]
#: A guest's standard input: the host process's own (``"inherit"``), a host
#: descriptor, fixed bytes, or nothing (``None``: end of input at once).
Input = Literal["inherit"] | int | bytes | None


class GuestTrapped(Exception):
    """The guest ended with a trap (e.g. ``unreachable``, an out-of-bounds access).

    Attributes:
        message: wasmtime's description of the trap.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: Part of the compilation cache's key: change it when :func:`_config` changes.
_CONFIG_TAG = "epoch"


def _config() -> wasmtime.Config:
    """The engine settings every guest uses (compiled modules depend on them)."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    return config


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "unisockets" / "wasm"


_memory_cache: dict[str, bytes] = {}
_memory_cache_lock = threading.Lock()


@dataclass(frozen=True)
class WasmProgram:
    """A compiled guest program, ready to run in any number of guests.

    Build one with :meth:`from_file` or :meth:`from_bytes`.

    Attributes:
        name: a label for logs (the file name).
        compiled: the module compiled by wasmtime (``Module.serialize()``),
            valid for this wasmtime version and the runner's engine settings.
    """

    name: str
    compiled: bytes = field(repr=False)

    @classmethod
    def from_bytes(
        cls, wasm: bytes, name: str = "guest", *, cache_dir: Path | Literal[False] | None = None
    ) -> WasmProgram:
        """Compile a WebAssembly module (binary or text), reusing a cached compilation.

        Args:
            wasm: the module's bytes (``.wasm``, or ``.wat`` text).
            name: a label for logs.
            cache_dir: where compiled modules are kept across processes
                (default ``$XDG_CACHE_HOME/unisockets/wasm``); ``False``: no disk cache.
                Only this user's own cache should be used: a compiled module
                is loaded without validation.

        Raises:
            wasmtime.WasmtimeError: the bytes are not a valid module.
        """
        key = f"{hashlib.sha256(wasm).hexdigest()}-{version('wasmtime')}-{_CONFIG_TAG}"
        with _memory_cache_lock:
            compiled = _memory_cache.get(key)
        if compiled is None:
            directory = _default_cache_dir() if cache_dir is None else cache_dir
            path = Path(directory) / f"{key}.cwasm" if directory is not False else None
            engine = wasmtime.Engine(_config())
            compiled = _read_cached(engine, path) if path is not None else None
            if compiled is None:
                compiled = bytes(wasmtime.Module(engine, wasm).serialize())
                if path is not None:
                    _write_atomically(path, compiled)
            engine.close()
            with _memory_cache_lock:
                _memory_cache[key] = compiled
        return cls(name=name, compiled=compiled)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, cache_dir: Path | Literal[False] | None = None
    ) -> WasmProgram:
        """Read and compile a ``.wasm`` file (see :meth:`from_bytes`).

        Raises:
            OSError: the file cannot be read.
            wasmtime.WasmtimeError: it is not a valid module.
        """
        return cls.from_bytes(Path(path).read_bytes(), Path(path).name, cache_dir=cache_dir)


def _read_cached(engine: wasmtime.Engine, path: Path) -> bytes | None:
    """A cached compilation, if there is one that this wasmtime loads."""
    try:
        compiled = path.read_bytes()
        wasmtime.Module.deserialize(engine, compiled)
    except (OSError, wasmtime.WasmtimeError) as exc:
        if path.exists():
            logger.info("recompiling: cached module %s unusable: %s", path, exc)
        return None
    return compiled


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        logger.info("not caching the compiled module at %s: %s", path, exc)


def _output_sink(output: Output, fd: int) -> OutputSink:
    return FdOutput(fd) if output == "inherit" else CallbackOutput(output)


def _input_source(stdin: Input) -> InputSource:
    if stdin == "inherit":
        return FdInput(0)
    if isinstance(stdin, int):
        return FdInput(stdin)
    return BytesInput(stdin or b"")


class _Guest:
    """One run of a program: the thread, its wasmtime objects, its socket host."""

    def __init__(
        self,
        node: Node,
        program: WasmProgram,
        argv: list[str],
        env: dict[str, str],
        stdin: Input,
        stdout: Output,
        stderr: Output,
    ) -> None:
        self.program = program
        self.argv = argv
        self.env = env
        self.stdin = _input_source(stdin)
        self.stdout = _output_sink(stdout, 1)
        self.stderr = _output_sink(stderr, 2)
        self.token = trio.lowlevel.current_trio_token()
        self.host = SocketHost(node, self.token)
        self.done = trio.Event()
        self.exit_code: int | None = None
        self.trap: str | None = None
        self.error: str | None = None
        self._engine: wasmtime.Engine | None = None
        self._engine_lock = threading.Lock()

    # -- trio thread ---------------------------------------------------

    def stop(self) -> None:
        """Stop the guest: fail its host calls and interrupt its computation."""
        self.host.stop()
        with self._engine_lock:
            if self._engine is not None:
                self._engine.increment_epoch()

    # -- guest thread --------------------------------------------------

    def thread_main(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported as a string: no traceback keeps a Store
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.done.set)

    def _run(self) -> None:
        engine = wasmtime.Engine(_config())
        store = linker = None
        try:
            with self._engine_lock:
                self._engine = engine
            module = wasmtime.Module.deserialize(engine, self.program.compiled)
            store = wasmtime.Store(engine)
            store.set_epoch_deadline(1)
            store.set_wasi(self._wasi_config())
            linker = wasmtime.Linker(engine)
            define_wasi(linker, self.host, self.stdin, self.stdout, self.stderr)
            self.host.define(linker)
            self._start(linker, store, module)
        finally:
            with self._engine_lock:
                self._engine = None
            # Drop the wasmtime objects here, in order, while nothing else refers to them.
            if linker is not None:
                linker.close()
            if store is not None:
                store.close()
            engine.close()

    def _start(
        self, linker: wasmtime.Linker, store: wasmtime.Store, module: wasmtime.Module
    ) -> None:
        message: str | None = None
        try:
            if self.host.stopping:
                return
            instance = linker.instantiate(store, module)
            self.host.attach(instance, store)
            start = instance.exports(store).get("_start")
            if not isinstance(start, wasmtime.Func):
                message = "the module has no _start function (not a WASI command)"
                return
            start(store)
            self.exit_code = 0
        except wasmtime.ExitTrap as exc:
            self.exit_code = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError, Exception) as exc:
            # An epoch interrupt (the guest was stopped) or a real trap.
            message = str(exc) or type(exc).__name__
        finally:
            if message is not None and not self.host.stopping:
                self.trap = message

    def _wasi_config(self) -> wasmtime.WasiConfig:
        config = wasmtime.WasiConfig()
        config.argv = [self.program.name, *self.argv]
        config.env = list(self.env.items())
        # No stdio and no preopened directories: wasi.define_wasi serves the descriptors.
        return config


async def run_wasm(
    node: Node,
    program: WasmProgram,
    argv: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    stdin: Input = None,
    stdout: Output = "inherit",
    stderr: Output = "inherit",
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run a wasm32-wasi program with WASI and the ``unisockets_*`` imports, in its own thread.

    The program's sockets are sockets of ``node`` (overlay or native);
    ``0.0.0.0`` is the node's own address, and so is ``127.x.x.x`` on a native
    node, while on an overlay node ``127.0.0.1`` is an ordinary overlay
    address, as in the original runner (:mod:`unisockets.wasm.host`). Cancelling
    this call stops the guest and waits until its thread has ended.

    Args:
        node: the node whose sockets the guest uses.
        program: the compiled program (:meth:`WasmProgram.from_file`).
        argv: the program's arguments (``argv[0]``, its name, is added).
        env: its environment variables (default: none).
        stdin: its standard input: ``"inherit"`` (this process's), a host
            file descriptor, bytes, or ``None`` (empty).
        stdout: ``"inherit"`` (this process's) or a callback taking each
            chunk of bytes written (called in the guest's thread).
        stderr: as ``stdout``.
        task_status: for ``nursery.start``; started once the thread runs.

    Returns:
        The program's exit status (0 when ``_start`` returns).

    Raises:
        GuestTrapped: the program trapped (or the host could not set it up).
        wasmtime.WasmtimeError: the module could not be loaded.
    """
    guest = _Guest(node, program, list(argv), dict(env or {}), stdin, stdout, stderr)
    thread = threading.Thread(
        target=guest.thread_main, name=f"unisockets-wasm-{program.name}", daemon=True
    )
    interrupted: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(guest.host.serve)
            thread.start()
            task_status.started()
            try:
                await guest.done.wait()
            except BaseException as exc:  # cancelled, KeyboardInterrupt: stop the guest
                guest.stop()
                with trio.CancelScope(shield=True):
                    await guest.done.wait()
                interrupted = exc  # re-raised below, not wrapped in an exception group
            finally:
                nursery.cancel_scope.cancel()
    finally:
        await guest.host.aclose()
        if thread.ident is not None:
            thread.join()
    if interrupted is not None:
        raise interrupted
    if guest.error is not None:
        raise GuestTrapped(guest.error)
    if guest.trap is not None:
        raise GuestTrapped(guest.trap)
    return guest.exit_code if guest.exit_code is not None else 0
