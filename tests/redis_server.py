"""A real ``redis-server`` on a free loopback port, for the multi-instance tests and benchmarks.

Debian's ``redis-server`` (``scripts/install-redis.sh``, run by ``make
system-deps``) runs in the foreground as a child process, without a config
file, persistence off unless asked for. Readiness is its own log line
("Ready to accept connections"), not a poll.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Bound on redis-server's start, so that a broken install fails instead of hanging.
START_TIMEOUT = 30.0


@dataclass
class RedisServer:
    """A running ``redis-server``.

    Attributes:
        port: its TCP port on 127.0.0.1.
        url: ``redis://127.0.0.1:PORT/0``.
        process: the child process (``kill()`` it for a crash).
    """

    port: int
    url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_redis(directory: Path | None = None, port: int = 0) -> RedisServer:
    """Start ``redis-server`` on 127.0.0.1 and wait until it accepts connections.

    Args:
        directory: where it keeps an append-only file (persistence on, so that
            a restart on the same directory keeps the data); ``None``: no
            persistence at all.
        port: the TCP port; 0 for a free one (pass a stopped server's port to
            restart it on the same URL).

    Returns:
        The running server; stop it with :func:`stop_redis`.

    Raises:
        RuntimeError: redis-server is not installed, or it exited or did not
            get ready within :data:`START_TIMEOUT` seconds (its output is in
            the message).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/install-redis.sh")
    port = port or _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    if directory is None:
        args += ["--appendonly", "no"]
    else:
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    lines: list[bytes] = []
    timer = _Timer(process)
    try:
        for line in process.stdout:
            lines.append(line)
            if b"Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(
                "redis-server did not start: " + b"".join(lines).decode(errors="replace")
            )
    finally:
        timer.cancel()
    # Keep reading its log so that a full pipe never blocks it.
    _drain(process)
    return RedisServer(port, f"redis://127.0.0.1:{port}/0", process)


def stop_redis(server: RedisServer) -> None:
    """Stop ``redis-server`` (SIGTERM, then SIGKILL after 10 s) and reap it."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(10.0)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def running_redis(directory: Path | None = None) -> Iterator[RedisServer]:
    """:func:`start_redis` for the body of a ``with``, stopped after it."""
    server = start_redis(directory)
    try:
        yield server
    finally:
        stop_redis(server)


class _Timer:
    """Kill the process if it is not ready within START_TIMEOUT (ends the read loop)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        import threading

        self._timer = threading.Timer(START_TIMEOUT, process.kill)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


def _drain(process: subprocess.Popen[bytes]) -> None:
    import threading

    def read() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    threading.Thread(target=read, daemon=True, name="redis-server log").start()
