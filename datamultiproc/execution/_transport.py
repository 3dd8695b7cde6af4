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

Writing into a fresh memory file costs about twice a plain copy: the kernel
allocates its pages one by one. A worker therefore writes its results into the
memory files its inputs came in (a :class:`Recycler`), whose pages exist already,
but only into a file no array maps any more (the processor replaced the array,
and nothing kept it): the parent closed its descriptor when it sent the file,
so no other process can see the new contents. A file whose map is still alive
(the processor returned the array, a view of it, or kept it somewhere), or that
was mapped when the worker forked, is never written; results then go into fresh files.

From the parent to its workers there is a cheaper way still where the kernel
allows it: see ``_remote``.

Where ``memfd_create`` or ``socket.send_fds`` is missing (not Linux), or a map
cannot be made, buffers travel through the pipe as before.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "SHARED_BYTES",
    "Recycler",
    "available",
    "map_shared",
    "receive_fds",
    "send_fds",
    "share",
]

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
        _write_at_start(fd, buffer)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_at_start(fd: int, buffer: Any) -> None:
    view = memoryview(buffer).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], done)


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


class Recycler:
    """Memory files that brought a worker its inputs, kept open to take its results.

    :meth:`map` replaces :func:`map_shared` for incoming buffers and keeps their
    descriptors; :meth:`share` replaces :func:`share` for outgoing ones and writes
    into a kept file that no array maps any more, if there is one; :meth:`close`
    closes the rest. See the module docstring for why this is safe.

    Examples
    --------
    >>> import numpy as np
    >>> recycler = Recycler()
    >>> buffer = recycler.map(share(np.ones(4)), 32)  # an input array arrives
    >>> del buffer  # the processor replaced it: nothing maps the file now
    >>> fd = recycler.share(np.zeros(4))  # the result goes into the same file
    >>> recycler.held, os.fstat(fd).st_size
    ([], 32)
    >>> os.close(fd)
    >>> recycler.close()
    """

    def __init__(self) -> None:
        # (descriptor, file size, the file's map or None); a file is free once the map is dead.
        self.held: list[tuple[int, int, Callable[[], object]]] = []
        _RECYCLERS.add(self)

    def map(self, fd: int, size: int) -> Any:
        """Like :func:`map_shared`, but keep ``fd`` for :meth:`share` until :meth:`close`."""
        try:
            buffer = _map(fd, size)
            if buffer is None:
                buffer = _read_copy(fd, size)
        except BaseException:
            os.close(fd)
            raise
        mapping = getattr(buffer, "mapping", None)
        self.held.append((fd, size, _unmapped if mapping is None else weakref.ref(mapping)))
        return buffer

    def share(self, buffer: Any) -> int:
        """Like :func:`share`, into a kept file no array maps, if any; the caller closes it."""
        nbytes = memoryview(buffer).nbytes
        free = [n for n, (_, _, mapping) in enumerate(self.held) if mapping() is None]
        if not free:
            return share(buffer)
        # The closest size: growing a file allocates pages, shrinking one frees them.
        place = min(free, key=lambda n: abs(self.held[n][1] - nbytes))
        fd, size, _ = self.held.pop(place)
        try:
            if size != nbytes:
                os.ftruncate(fd, nbytes)
            _write_at_start(fd, buffer)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        """Close the descriptors :meth:`share` did not hand out."""
        held, self.held = self.held, []
        for fd, _, _ in held:
            os.close(fd)

    def forking(self) -> None:
        """Before a fork: keep out files still mapped, which the child will map too."""
        self.held = [
            (fd, size, mapping if mapping() is None else _forever)
            for fd, size, mapping in self.held
        ]


def _unmapped() -> None:
    return None


_FOREVER = object()


def _forever() -> object:
    return _FOREVER


_RECYCLERS: weakref.WeakSet[Recycler] = weakref.WeakSet()


def _before_fork() -> None:
    for recycler in list(_RECYCLERS):
        recycler.forking()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


class _Mapping:
    """Owns one map; unmaps it when the last buffer over it is freed."""

    __slots__ = ("__weakref__", "address", "size", "unmap")

    def __init__(self, address: int, size: int) -> None:
        self.address, self.size = address, size
        # Held here: arrays still alive at interpreter exit are freed after this
        # module's globals are gone.
        self.unmap = _libc().munmap

    def __del__(self) -> None:
        self.unmap(self.address, self.size)


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
