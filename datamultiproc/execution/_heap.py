"""A busy worker keeps the memory it frees; an idle one gives it back.

By default glibc's allocator returns freed memory at the top of the heap to the
kernel once more than a few MiB are free, and serves blocks of some MiB with
their own ``mmap``. A worker that turns one large array into another (allocating
the result and temporaries, freeing them once the result is sent) then pays the
kernel for every page again on every sample: on a 4 MiB array, about as much
time as the arithmetic itself. So while a worker has samples to run it keeps
what it frees (up to :data:`_KEEP_BYTES` at the top of the heap, blocks up to
:data:`_MMAP_BYTES` from the heap), and when it goes idle (no message for
:data:`_IDLE_SECONDS`) it hands every free page back (``malloc_trim``), so an
idle warm pool holds no more memory than before.

Only with glibc; elsewhere both functions do nothing.
"""

from __future__ import annotations

import ctypes
import functools
import select
from typing import Any

__all__ = ["keep_freed_memory", "release_if_idle"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 64 << 20  # free memory at the top of the heap kept while busy
_MMAP_BYTES = 32 << 20  # glibc's largest allowed value on 64-bit systems
_IDLE_SECONDS = 0.05  # a parent that is merely late with the next message is not idleness


@functools.cache
def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    wanted = ("gnu_get_libc_version", "mallopt", "malloc_trim")
    return libc if all(hasattr(libc, name) for name in wanted) else None


def keep_freed_memory() -> bool:
    """Keep freed memory in this process while it is busy; ``True`` if set (glibc).

    Examples
    --------
    >>> keep_freed_memory() in (True, False)
    True
    """
    libc = _glibc()
    if libc is None:
        return False
    # Setting either value stops glibc from adjusting both: set both.
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    )


def release_if_idle(fd: int, wait: float = _IDLE_SECONDS) -> bool:
    """Give free memory back to the kernel unless data arrives on ``fd`` within ``wait`` s.

    Returns ``True`` if memory was given back. Returns as soon as data arrives.

    Examples
    --------
    >>> import os
    >>> read_end, write_end = os.pipe()
    >>> os.write(write_end, b"x")
    1
    >>> release_if_idle(read_end)  # a message is waiting: keep the memory for it
    False
    >>> for end in (read_end, write_end):
    ...     os.close(end)
    """
    libc = _glibc()
    if libc is None:
        return False
    poller = select.poll()  # not select(): descriptors may be numbered above 1023
    poller.register(fd, select.POLLIN)
    if poller.poll(wait * 1000):
        return False
    libc.malloc_trim(0)
    return True
