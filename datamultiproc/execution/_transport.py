"""Large buffers between processes at memory speed: anonymous memory passed as descriptors.

A buffer of at least :data:`SHARED_BYTES` (a large numpy array, out of band in a
pickle protocol 5 stream) does not go through the pipe. The sender copies it once
into an anonymous memory file (``memfd_create``), passes the descriptor over a Unix
socket (``SCM_RIGHTS``) and closes its own; the receiver maps the file and hands
the map to the unpickler, so the array it rebuilds *is* the mapped memory: no
second copy, no reads through a pipe.

Nothing has a name, in ``/dev/shm`` or anywhere: the kernel frees the memory when
the last descriptor and the last map are gone, whoever dies, however (a descriptor
still in flight in a socket is freed with the socket).

Lifetime: an array that arrived this way keeps its map alive for as long as the
array (or any view of it) lives; it is writable, private to its process (no other
process holds the file) and independent of later runs.

Where ``memfd_create`` or ``socket.send_fds`` is missing (not Linux), or a map
cannot be made, buffers travel through the pipe as before.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import socket
from collections.abc import Sequence
from typing import Any

__all__ = ["SHARED_BYTES", "available", "map_shared", "receive_fds", "send_fds", "share"]

SHARED_BYTES = 1 << 19  # smaller buffers are cheaper to copy through the pipe
_MAX_FDS = 250  # the kernel accepts at most 253 descriptors per message
_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)


def available() -> bool:
    """Return ``True`` where buffers can be shared (Linux: memfd and descriptor passing)."""
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds")


def share(buffer: Any) -> int:
    """Copy ``buffer`` into a new anonymous memory file; return its descriptor (close-on-exec)."""
    fd = os.memfd_create("datamultiproc", os.MFD_CLOEXEC)
    try:
        view = memoryview(buffer).cast("B")
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


def send_fds(sock: socket.socket, fds: Sequence[int]) -> None:
    """Send descriptors over a Unix socket, in order; the caller still closes its copies."""
    for start in range(0, len(fds), _MAX_FDS):
        socket.send_fds(sock, [b"F"], list(fds[start : start + _MAX_FDS]))


def receive_fds(sock: socket.socket, count: int) -> list[int]:
    """Receive ``count`` descriptors sent by :func:`send_fds`; ``EOFError`` if the peer is gone."""
    fds: list[int] = []
    while len(fds) < count:
        # One byte per message: a stream socket never merges two messages' descriptors.
        data, received, _, _ = socket.recv_fds(sock, 1, min(_MAX_FDS, count - len(fds)))
        fds.extend(received)
        if not data:
            for fd in fds:
                os.close(fd)
            msg = "connection closed"
            raise EOFError(msg)
    return fds


def map_shared(fd: int, size: int) -> Any:
    """Return a writable buffer over the first ``size`` bytes of ``fd``, and close ``fd``.

    The buffer is the file's memory mapped into this process; the map goes when the
    buffer (and every array built on it) is freed. Falls back to a copy if the map
    cannot be made (e.g. at the ``vm.max_map_count`` limit).
    """
    try:
        buffer = _map(fd, size)
        return buffer if buffer is not None else _read_copy(fd, size)
    finally:
        os.close(fd)


class _Mapping:
    """Owns one map; unmaps it when the last buffer over it is freed."""

    __slots__ = ("address", "size")

    def __init__(self, address: int, size: int) -> None:
        self.address, self.size = address, size

    def __del__(self) -> None:
        _libc().munmap(self.address, self.size)


@functools.cache
def _libc() -> Any:
    # Python's mmap.mmap keeps a duplicate of the descriptor open for the map's life
    # (before 3.13): a thousand result arrays would exhaust the descriptor limit.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


def _map(fd: int, size: int) -> Any:
    address = _libc().mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, _FLAGS, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        return None
    buffer = (ctypes.c_char * size).from_address(address)
    buffer.mapping = _Mapping(address, size)  # type: ignore[attr-defined]  # unmaps with the buffer
    return buffer


def _read_copy(fd: int, size: int) -> Any:
    import numpy as np

    target: Any = np.empty(size, dtype=np.uint8)
    view = memoryview(target)
    done = 0
    while done < size:
        count = os.preadv(fd, [view[done:]], done)
        if count == 0:
            msg = "shared buffer is shorter than announced"
            raise EOFError(msg)
        done += count
    return target
