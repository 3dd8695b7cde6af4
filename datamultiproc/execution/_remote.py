"""Large buffers read straight from the parent's memory, where the kernel allows it.

Linux lets a process read another's memory with ``process_vm_readv`` when it may
trace it: the same user, and not under Yama's ``ptrace_scope`` 1 or above. The
parent then sends a worker only the address of each large buffer, and the worker
copies it into its own memory (:func:`read_remote`): the parent pays nothing per
byte, where a memory file (see ``_transport``) costs it a copy into fresh pages.
The parent keeps each buffer alive until the worker has answered for its chunk.

The worker reads when the chunk arrives, so a buffer changed in place meanwhile
arrives as it is then, as with threads. A worker the kernel refuses says so
(:class:`RemoteReadError`), and the parent sends that chunk and every later one
as memory files. A buffer whose pages the parent shares with a forked child
(:func:`exclusive`) travels as a file too: reading it from another process would
make the kernel copy those pages for the parent first.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import os
from typing import Any

from datamultiproc.execution import _transport as transport

__all__ = ["RemoteReadError", "address_of", "exclusive", "read_remote", "remote_read_available"]

_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56  # /proc/self/pagemap: in memory; mapped here only


class RemoteReadError(OSError):
    """The kernel refused to let this process read the sender's memory."""


def remote_read_available() -> bool:
    """Return ``True`` where a worker may read the parent's memory (see the module docstring).

    Examples
    --------
    >>> remote_read_available() in (True, False)
    True
    """
    if not transport.available() or _libc_remote() is None:
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
    address = address_of(view)
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


def address_of(buffer: Any) -> int:
    """Return where a contiguous buffer starts in this process (read-only ones too)."""
    import numpy as np

    view = memoryview(buffer).cast("B")
    address: int = np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]
    return address


def read_remote(pid: int, address: int, size: int) -> Any:
    """Copy ``size`` bytes at ``address`` in process ``pid`` into a new writable buffer.

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
    target: Any = np.empty(size, dtype=np.uint8)  # from the heap a busy worker keeps
    start = target.ctypes.data
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
