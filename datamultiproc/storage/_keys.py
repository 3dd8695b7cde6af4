"""Cache keys: sample id + configuration (processor, parameters, code, upstream steps).

An entry lives at ``<cache_dir>/<stage>/<configuration>/<id>.pickle``. The
configuration folder is named by a digest of everything except the sample: the
wrapped processor's class, parameters and code, the same for every processor
that runs before the Cache in its pipeline, and the key mode. A change to any of
them is a new folder, so new results land beside the old ones.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from datamultiproc.core import BaseSample, Processor, walk
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage._fingerprint import Dependency, Fingerprinter, class_identity
from datamultiproc.storage._names import stage_folder_name

__all__ = [
    "FORMAT",
    "CacheConfig",
    "KeyMode",
    "cache_config",
    "content_digest",
    "key_leaves",
    "placeholder_parts",
]

KeyMode = Literal["id", "content"]
FORMAT = "datamultiproc-cache-1"
_DIGEST_CHARS = 16
_warned: set[str] = set()


@dataclass(frozen=True)
class CacheConfig:
    """One configuration of a cached stage.

    Attributes
    ----------
    stage
        The wrapped processor's stage name.
    folder
        Path of the configuration folder relative to the cache dir, ``<stage>/<digest>``.
    digest
        The configuration digest (64 hex characters; the folder uses the first 16).
    manifest
        Plain JSON-able description written to ``manifest.json`` in the folder.
    dependencies
        Global names the code fingerprint read; the digest holds while they are unchanged.
    parts
        Everything in the key as ``label -> short display value``, in user words
        (``"parameter h" -> "0.4"``, ``"code of Denoise" -> digest``); compared with
        earlier configurations to say why a lookup missed.
    """

    stage: str
    folder: str
    digest: str
    manifest: dict[str, Any]
    dependencies: tuple[Dependency, ...]
    parts: dict[str, str] = field(default_factory=dict)

    def is_current(self) -> bool:
        """Return whether every global name the fingerprint read still names the same object."""
        return all(namespace.get(name) is value for namespace, name, value in self.dependencies)


def key_leaves(steps: Iterable[Processor]) -> tuple[Processor, ...]:
    """Return the steps whose results samples depend on, in order.

    These are the steps without sub-steps (a Compose is flattened, a Cache stands for
    the processor it wraps) that change samples (a Save, which only writes them, is
    left out: see ``Processor.changes_samples``).
    """
    return tuple(
        position.step
        for root in steps
        for position in walk(root)
        if position.step.changes_samples and not position.step.substeps()
    )


def cache_config(
    processor: Processor, upstream: Iterable[Processor], key_mode: KeyMode
) -> CacheConfig:
    """Return the configuration of ``processor`` cached after ``upstream`` steps.

    Warns with :class:`~datamultiproc.exceptions.CacheWarning`, once per process and
    field, about parameters that have no stable representation.
    """
    wrapped = key_leaves((processor,))
    before = key_leaves(upstream)
    fingerprinter = Fingerprinter()
    fingerprinter.token("format", FORMAT)
    fingerprinter.token("key", key_mode)
    for role, leaves in (("wrapped", wrapped), ("upstream", before)):
        fingerprinter.token(role, str(len(leaves)))
        for leaf in leaves:
            fingerprinter.processor(leaf, type(leaf).__qualname__)
    _warn_unstable(fingerprinter.unstable, processor.stage_name)
    digest = fingerprinter.hexdigest()
    stage = processor.stage_name
    folder = f"{stage_folder_name(stage)}/{digest[:_DIGEST_CHARS]}"
    parts = placeholder_parts(wrapped, before, key_mode)
    return CacheConfig(
        stage=stage,
        folder=folder,
        digest=digest,
        manifest={**_manifest(stage, digest, key_mode, wrapped, before), "parts": parts},
        dependencies=tuple(fingerprinter.dependencies),
        parts=parts,
    )


def placeholder_parts(
    wrapped: tuple[Processor, ...], upstream: tuple[Processor, ...], key_mode: KeyMode
) -> dict[str, str]:
    """Describe a configuration as ``label -> value`` (placeholder until the full key lands).

    Parameters by their repr, one code digest per processor class, the same for
    upstream steps under an ``"upstream <Stage>: "`` prefix, ``cache_version`` and the
    key mode.
    """
    parts: dict[str, str] = {}
    for prefix, leaves in (("", wrapped), ("upstream ", upstream)):
        for leaf in leaves:
            cls = type(leaf)
            label = f"{prefix}{leaf.stage_name}: " if prefix else ""
            for name in cls.model_fields:
                parts[f"{label}parameter {name}"] = f"{getattr(leaf, name)!r:.80}"
            code = Fingerprinter()
            code.processor_code(cls)
            parts[f"{label}code of {cls.__qualname__}"] = code.hexdigest()[:_DIGEST_CHARS]
            if cls.cache_version is not None:
                parts[f"{label}cache_version"] = str(cls.cache_version)
    parts["key mode"] = key_mode
    return parts


def content_digest(sample: BaseSample) -> str:
    """Return a digest of a sample's class and data (every field but ``processing_history``).

    Numpy arrays are hashed from their buffers, without copies when contiguous.
    """
    fingerprinter = Fingerprinter()
    cls = type(sample)
    fingerprinter.token("sample", class_identity(cls))
    for name in cls.model_fields:
        if name != "processing_history":
            fingerprinter.token("field", name)
            fingerprinter.value(getattr(sample, name), f"{cls.__qualname__}.{name}")
    _warn_unstable(fingerprinter.unstable, "content key")
    return fingerprinter.hexdigest()[:_DIGEST_CHARS]


def _warn_unstable(paths: list[str], stage: str) -> None:
    for path in paths:
        if path in _warned:
            continue
        _warned.add(path)
        msg = (
            f"Cache for {stage}: {path} has no stable representation, so the cache key "
            "uses its type only and changing its value will not invalidate cached results. "
            "Give the type a __repr__ that shows its configuration, or bump the "
            "processor's cache_version when you change it."
        )
        warnings.warn(msg, CacheWarning, stacklevel=4)


def _manifest(
    stage: str,
    digest: str,
    key_mode: KeyMode,
    wrapped: tuple[Processor, ...],
    upstream: tuple[Processor, ...],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "stage": stage,
        "configuration": digest[:_DIGEST_CHARS],
        "digest": digest,
        "key": key_mode,
        "processor": [_describe(leaf) for leaf in wrapped],
        "upstream": [_describe(leaf) for leaf in upstream],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _describe(processor: Processor) -> str:
    return f"{processor.stage_name}({processor.describe_params():.200})"
