"""Bounds-checked access to a guest's linear memory from inside a host call.

A host function gets a :class:`wasmtime.Caller`; :class:`GuestMemory` reads
the memory's base address and length through it once per call (the memory
may have grown or moved since the previous call) and then copies bytes with
:mod:`ctypes`. Every access is checked against the memory's length, so a
guest passing a bad pointer gets ``EFAULT`` and the host never touches
memory outside the guest's.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: MemoryView also serves the browser page (no wasmtime)
    import wasmtime

__all__ = ["GuestMemory", "MemoryView"]

#: Guest pointers and sizes are unsigned 32-bit; wasmtime hands i32s over signed.
U32 = 0xFFFFFFFF


def efault(detail: str) -> OSError:
    """An ``EFAULT`` :class:`OSError` (a guest pointer outside its memory)."""
    return OSError(errno.EFAULT, f"{os.strerror(errno.EFAULT)}: {detail}")


class MemoryView:
    """The guest's memory during one host call.

    Args:
        base: the host address of byte 0 of the memory.
        length: the memory's size in bytes.
    """

    __slots__ = ("base", "length")

    def __init__(self, base: int, length: int) -> None:
        self.base = base
        self.length = length

    def check(self, pointer: int, size: int) -> int:
        """Check that ``[pointer, pointer + size)`` lies in the memory.

        Args:
            pointer: a guest address (an i32 as wasmtime gives it, possibly negative).
            size: the number of bytes (also read as unsigned 32-bit).

        Returns:
            ``pointer`` as an unsigned offset.

        Raises:
            OSError: ``EFAULT`` when the range is not inside the memory.
        """
        pointer &= U32
        size &= U32
        if pointer + size > self.length:
            raise efault(f"{size} bytes at {pointer:#x} outside {self.length} bytes of memory")
        return pointer

    def read(self, pointer: int, size: int) -> bytes:
        """Copy ``size`` bytes at ``pointer`` out of the guest.

        Raises:
            OSError: ``EFAULT`` (out of bounds).
        """
        offset = self.check(pointer, size)
        return ctypes.string_at(self.base + offset, size & U32)

    def write(self, pointer: int, data: bytes | bytearray) -> None:
        """Copy ``data`` into the guest at ``pointer``.

        Raises:
            OSError: ``EFAULT`` (out of bounds).
        """
        offset = self.check(pointer, len(data))
        ctypes.memmove(self.base + offset, bytes(data), len(data))

    def read_u32(self, pointer: int) -> int:
        """Read a little-endian unsigned 32-bit integer (e.g. a ``socklen_t``)."""
        value: int = struct.unpack("<I", self.read(pointer, 4))[0]
        return value

    def write_u32(self, pointer: int, value: int) -> None:
        """Write a little-endian unsigned 32-bit integer."""
        self.write(pointer, struct.pack("<I", value & U32))

    def iovecs(self, pointer: int, count: int) -> list[tuple[int, int]]:
        """Read WASI ``iovec``/``ciovec`` array entries: ``(buffer pointer, length)`` pairs.

        Each entry is 8 bytes: buffer (u32), length (u32). Every buffer is
        bounds-checked.

        Raises:
            OSError: ``EFAULT`` (out of bounds).
        """
        raw = self.read(pointer, 8 * (count & U32))
        vectors = []
        for buffer, length in struct.iter_unpack("<II", raw):
            self.check(buffer, length)
            vectors.append((buffer, length))
        return vectors


class GuestMemory:
    """The exported ``memory`` of one guest instance.

    Args:
        memory: the instance's exported memory.
    """

    def __init__(self, memory: wasmtime.Memory) -> None:
        self._memory = memory

    def view(self, caller: wasmtime.Caller) -> MemoryView:
        """The memory as it is now, for the duration of this host call."""
        base = ctypes.addressof(self._memory.data_ptr(caller).contents)
        return MemoryView(base, self._memory.data_len(caller))
