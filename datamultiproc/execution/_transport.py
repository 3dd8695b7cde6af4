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

From the parent to its workers there is a cheaper way still, where the kernel
allows one process to read another's memory (Linux ``process_vm_readv``; not
under Yama's ``ptrace_scope`` 1 or above): the parent sends only the address of
each large buffer, and the worker copies it straight from the parent's memory
into its own (:func:`read_remote`). The parent then pays nothing per byte; it
keeps each buffer alive until the worker has answered for its chunk. The worker
reads when the chunk arrives, so a buffer changed in place meanwhile arrives as
it is then, as with threads. A worker the kernel refuses says so, and the parent
sends that chunk and every later one as memory files. A buffer whose pages the
parent shares with a forked child (see :func:`exclusive`) travels as a file too:
reading it from another process would make the kernel copy those pages first. In
the worker, inputs land in reused private maps (:class:`Landing`).

Where ``memfd_create`` or ``socket.send_fds`` is missing (not Linux), or a map
cannot be made, buffers travel through the pipe as before.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import os
import socket
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "SHARED_BYTES",
    "Landing",
    "Recycler",
    "RemoteReadError",
    "available",
    "exclusive",
    "map_shared",
    "read_remote",
    "receive_fds",
    "remote_read_available",
    "send_fds",
    "share",
]

SHARED_BYTES = 1 << 19  # smaller buffers are cheaper to copy through the pipe
_MAX_FDS = 250  # the kernel accepts at most 253 descriptors per message
_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)
_ANONYMOUS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
_LANDING_BYTES = 256 << 20  # free input memory a busy worker keeps for the next inputs
_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56  # /proc/self/pagemap: in memory; mapped here only


def available() -> bool:
    """Return ``True`` where buffers can be shared (Linux: memfd and descriptor passing)."""
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds")


class RemoteReadError(OSError):
    """The kernel refused to let this process read the sender's memory."""


def remote_read_available() -> bool:
    """Return ``True`` where a worker may read the parent's memory (see the module docstring).

    Examples
    --------
    >>> remote_read_available() in (True, False)
    True
    """
    if not available() or _libc_remote() is None:
        return False
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as scope:
            return scope.read().strip() == "0"
    except OSError:
        return True  # no Yama: the usual rule (same user) holds


def exclusive(buffer: Any) -> bool:
    """Return ``True`` if the pages of ``buffer`` belong to this process alone (Linux).

    A page this process shares with a forked child (the child inherited it and
    neither wrote it since) must not be read by another process with
    :func:`read_remote`: the kernel would first give this process a copy of every
    such page (about as slow as copying the buffer, and the child keeps the
    original, so the memory is held twice). Such buffers travel as memory files.
    Only the pages the buffer covers whole count; ``False`` where it cannot be told.
    """
    import numpy as np

    view = memoryview(buffer)
    address = np.frombuffer(view.cast("B"), dtype=np.uint8).__array_interface__["data"][0]
    first = -(-address // mmap.PAGESIZE)
    end = (address + view.nbytes) // mmap.PAGESIZE
    if end <= first:
        return True
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        entries = os.pread(fd, 8 * (end - first), 8 * first)
    except OSError:
        return False
    finally:
        os.close(fd)
    flags = np.frombuffer(entries, dtype=np.uint64)
    wanted = np.uint64(_PRESENT | _EXCLUSIVE)
    return len(flags) == end - first and bool(np.all(flags & wanted == wanted))


def read_remote(pid: int, address: int, size: int, landing: Landing | None = None) -> Any:
    """Copy ``size`` bytes at ``address`` in process ``pid`` into a new writable buffer.

    The buffer comes from ``landing`` where given (memory reused from earlier
    inputs), else from the heap.

    Raises
    ------
    ProcessLookupError
        If ``pid`` is gone.
    RemoteReadError
        If the kernel refuses (permissions, a missing system call, a bad address).
    """
    import numpy as np

    libc = _libc_remote()
    if libc is None:
        raise RemoteReadError(0, "process_vm_readv is not available here")
    target: Any = None if landing is None else landing.take(size)
    if target is None:
        target = np.empty(size, dtype=np.uint8)
        start = target.ctypes.data
    else:
        start = ctypes.addressof(target)
    done = 0
    while done < size:
        local = _IOVec(start + done, size - done)
        remote = _IOVec(address + done, size - done)
        count = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if count <= 0:
            number = ctypes.get_errno()
            if number == errno.ESRCH:
                raise ProcessLookupError(number, os.strerror(number))
            raise RemoteReadError(number, f"cannot read process {pid}: {os.strerror(number)}")
        done += count
    return target


class Landing:
    """Private memory that a worker's inputs land in, reused once no array uses it.

    A fresh 4 MiB buffer costs 1,024 page faults; one from the heap may be worse: a
    forked worker's heap is its parent's, copied page by page on first write, and
    the allocator cycles through every free block it inherited. A buffer taken here
    is an anonymous map of its own; once the arrays built on it are gone, the map
    serves the next input of about its size, so a busy worker faults its input
    memory in once. Free maps beyond :data:`_LANDING_BYTES` are unmapped, and
    :meth:`clear` unmaps them all (an idle worker gives its memory back).

    Examples
    --------
    >>> landing = Landing()
    >>> first = landing.take(1 << 20)
    >>> address = ctypes.addressof(first)
    >>> del first  # the input's arrays are gone: its map is free
    >>> ctypes.addressof(landing.take(1 << 20)) == address
    True
    """

    def __init__(self) -> None:
        self.free: list[_Mapping] = []
        self.lent: list[tuple[_Mapping, weakref.ref[Any]]] = []

    def take(self, size: int) -> Any:
        """Return a writable buffer of ``size`` bytes; ``None`` if no map can be made."""
        self._collect()
        fits = [m for m in self.free if size <= m.size <= 2 * size]
        if fits:
            mapping = min(fits, key=lambda m: m.size)
            self.free.remove(mapping)
        else:
            length = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
            address = _libc().mmap(
                None, length, mmap.PROT_READ | mmap.PROT_WRITE, _ANONYMOUS, -1, 0
            )
            if address in (None, ctypes.c_void_p(-1).value):
                return None
            mapping = _Mapping(address, length)
        buffer = (ctypes.c_char * size).from_address(mapping.address)
        buffer.mapping = mapping  # type: ignore[attr-defined]  # kept mapped while the buffer lives
        self.lent.append((mapping, weakref.ref(buffer)))
        return buffer

    def clear(self) -> None:
        """Unmap every map no array uses."""
        self._collect()
        self.free = []

    def _collect(self) -> None:
        lent = []
        for mapping, buffer in self.lent:
            if buffer() is None:
                self.free.append(mapping)
            else:
                lent.append((mapping, buffer))
        self.lent = lent
        while sum(m.size for m in self.free) > _LANDING_BYTES:
            self.free.pop(0)  # the oldest first


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_size_t), ("length", ctypes.c_size_t)]


@functools.cache
def _libc_remote() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        read = libc.process_vm_readv
    except (OSError, AttributeError):
        return None
    iovecs = ctypes.POINTER(_IOVec)
    read.argtypes = [ctypes.c_int, iovecs, ctypes.c_ulong, iovecs, ctypes.c_ulong, ctypes.c_ulong]
    read.restype = ctypes.c_ssize_t
    return libc


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
