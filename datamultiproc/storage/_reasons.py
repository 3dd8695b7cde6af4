"""Why a cache lookup missed, in words: compare with the closest earlier configuration.

Every configuration folder's ``manifest.json`` holds ``"parts"``: everything in the
key as ``label -> short value`` (``"parameter h" -> "0.4"``, ``"code of Denoise.process"``
-> a digest). When a configuration is new, the earlier configuration of the same stage
that shares the most parts (ties: the most recent) is the one the user most likely
edited, and the parts that differ are the reason::

    parameter h: 0.4 → 0.5
    code of Denoise.process changed; scikit-image 0.24.0 → 0.25.1

The comparison works from any parts mapping; it knows nothing about how parts are
made, only that hex digests are shown as "changed" and other values as old → new.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_CORRUPT",
    "ENTRY_UNREADABLE",
    "NEW_CONFIGURATION",
    "NEW_SAMPLE",
    "closest_configuration",
    "configuration_reason",
    "describe_changes",
]

NEW_CONFIGURATION = "new configuration"
NEW_SAMPLE = "new sample"
ENTRY_CORRUPT = "entry corrupt"
ENTRY_UNREADABLE = "entry's class not importable in this process"
CHANGED_OTHERWISE = "configuration changed"
MANIFEST = "manifest.json"
_MAX_CHANGES = 3
_MAX_CHARS = 240
_HEX = re.compile(r"[0-9a-f]{8,64}")
_DIGEST_LABELS = ("code of ", "helper ", "global ", "sample schema", "function ", "class ")


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """Say in words how ``new`` parts differ from ``old`` ones.

    Examples
    --------
    >>> describe_changes({"parameter h": "0.4"}, {"parameter h": "0.5"})
    'parameter h: 0.4 → 0.5'
    >>> old, new = {"code of Denoise.process": "1f0e3dad9990"}, {"code of Denoise.process": "e4da3b7fbbce"}
    >>> describe_changes(old, new)
    'code of Denoise.process changed'
    >>> describe_changes({"a": "1"}, {"a": "1"})
    'configuration changed'
    """
    changes = [
        _change(label, old.get(label), value)
        for label, value in new.items()
        if old.get(label) != value
    ]
    changes += [f"{label} removed" for label in old if label not in new]
    if not changes:
        return CHANGED_OTHERWISE
    text = "; ".join(changes[:_MAX_CHANGES])
    if len(changes) > _MAX_CHANGES:
        text += f"; and {len(changes) - _MAX_CHANGES} more"
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def closest_configuration(
    cache_dir: str | Path, folder: str, parts: Mapping[str, str]
) -> tuple[Path, dict[str, str]] | None:
    """Return the folder and parts of the earlier configuration closest to ``parts``.

    Closest: most parts equal; ties go to the most recently created. ``folder``
    (``<stage>/<digest>``, relative to ``cache_dir``) itself is not a candidate.
    Configurations without parts in their manifest (older versions) are skipped.
    """
    path = Path(cache_dir) / folder
    earlier = _earlier_configurations(path.parent, path.name)
    if not earlier:
        return None

    def closeness(item: tuple[int, Path, dict[str, str]]) -> tuple[int, int]:
        mtime, _, old = item
        return sum(1 for label, value in parts.items() if old.get(label) == value), mtime

    _, found, closest = max(earlier, key=closeness)
    return found, closest


def configuration_reason(
    cache_dir: str | Path, folder: str, parts: Mapping[str, str]
) -> str | None:
    """Return why a configuration misses, or ``None`` if it already exists on disk.

    Parameters
    ----------
    cache_dir
        The Cache's root folder.
    folder
        The configuration's folder relative to ``cache_dir`` (``<stage>/<digest>``).
    parts
        The configuration's parts.

    Returns
    -------
    str or None
        ``None`` when the configuration's manifest exists (a miss there is a new
        sample); ``"new configuration"`` when the stage has no earlier
        configuration with parts; else the differences from the closest one.
    """
    if (Path(cache_dir) / folder / MANIFEST).is_file():
        return None
    closest = closest_configuration(cache_dir, folder, parts)
    return NEW_CONFIGURATION if closest is None else describe_changes(closest[1], parts)


def _earlier_configurations(
    stage_dir: Path, exclude: str
) -> list[tuple[int, Path, dict[str, str]]]:
    """Return ``(manifest mtime_ns, folder, parts)`` of each configuration with parts."""
    found = []
    try:
        folders = [e for e in os.scandir(stage_dir) if e.name != exclude and e.is_dir()]
    except OSError:
        return []
    for folder in folders:
        manifest = os.path.join(folder.path, MANIFEST)
        try:
            mtime = os.stat(manifest).st_mtime_ns
            with open(manifest, encoding="utf-8") as handle:
                data: Any = json.load(handle)
        except (OSError, ValueError):
            continue
        parts = data.get("parts") if isinstance(data, dict) else None
        if isinstance(parts, dict):
            found.append((mtime, Path(folder.path), {str(k): str(v) for k, v in parts.items()}))
    return found


def _change(label: str, old: str | None, new: str) -> str:
    if old is None:
        return f"{label} added"
    if _is_digest(label, old, new):
        return f"{label} changed"
    # "parameter h: 0.4 → 0.5", but "scikit-image 0.24.0 → 0.25.1" and
    # "upstream Normalise: parameter method 'zscore' → 'minmax'".
    separator = ": " if label.startswith("parameter ") else " "
    return f"{label}{separator}{old} → {new}"


def _is_digest(label: str, old: str, new: str) -> bool:
    plain = label.rsplit(": ", 1)[-1] if label.startswith("upstream ") else label
    if plain.startswith(_DIGEST_LABELS):
        return True
    return all(_HEX.fullmatch(value) and not value.isdigit() for value in (old, new))
