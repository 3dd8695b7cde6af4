"""File and folder names for sample ids and stages that stay inside their directory.

A name is the id itself when that is safe everywhere: lower-case ASCII letters,
digits, ``-``, ``_`` and ``.``, not a Windows device name, not hidden, not ending in
a dot, not too long. Anything else is *altered*: unsafe characters become ``_``, the
text is shortened, and ``~`` plus a hash of the exact id is appended. ``~`` never
occurs in an unaltered name and the hash is lower-case hex, so two different ids
never share a name, also on case-insensitive file systems (macOS, Windows).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["entry_name", "stage_folder_name"]

_SAFE_ID = re.compile(r"[a-z0-9_.-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_SAFE_STAGE = re.compile(r"[A-Za-z0-9_]+")
_MAX_READABLE = 80  # characters of the id kept; the whole name stays far below 255 bytes
_HASH_CHARS = 20  # 80 bits of blake2b

# Device names that Windows refuses as file names, with or without an extension.
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{i}" for i in "123456789¹²³"}
    | {f"lpt{i}" for i in "123456789¹²³"}
)


def entry_name(sample_id: str) -> str:
    """Return the file name stem for ``sample_id``: readable, safe and collision-free.

    Parameters
    ----------
    sample_id
        Any string.

    Returns
    -------
    str
        The id itself when it is safe on every platform, else a sanitized prefix,
        ``~`` and a hash of the exact id.

    Examples
    --------
    >>> entry_name("sample-001")
    'sample-001'
    >>> entry_name("../etc/passwd")
    '_._etc_passwd~a4b7645d4830ff6d5533'
    """
    if _is_safe(sample_id):
        return sample_id
    readable = _UNSAFE_CHAR.sub("_", sample_id[:_MAX_READABLE])
    if readable.startswith("."):
        readable = "_" + readable[1:]
    if readable.split(".", 1)[0].lower() in _RESERVED:
        readable = "_" + readable  # "con.txt~..." is still the console device on Windows
    return f"{readable}~{_short_hash(sample_id)}"


def stage_folder_name(stage: str) -> str:
    """Return the folder name for a stage: the class name itself when it is a plain identifier.

    Stage names come from code, not data, so upper case is kept (``DIR/Smooth/``);
    anything else (a ``<lambda>`` step, non-ASCII) goes through :func:`entry_name`.
    """
    if _SAFE_STAGE.fullmatch(stage) and stage.lower() not in _RESERVED:
        return stage
    return entry_name(stage)


def _is_safe(name: str) -> bool:
    return (
        len(name) <= _MAX_READABLE
        and _SAFE_ID.fullmatch(name) is not None
        and not name.startswith(".")
        and not name.endswith(".")
        and name.split(".", 1)[0] not in _RESERVED
    )


def _short_hash(text: str) -> str:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    return digest.hexdigest()[:_HASH_CHARS]
