"""Cache keys: sample id + configuration (processor, parameters, code, upstream steps).

An entry lives at ``<cache_dir>/<stage>/<configuration>/<id>.pickle``. The
configuration folder is named by a digest of everything except the sample: the
wrapped processor's class, parameters and code (followed into the user's helpers,
the data they read and the distributions they call, see ``_parts``), the same for
every processor that runs before the Cache in its pipeline, and the key mode. A
change to any of them is a new folder, so new results land beside the old ones.

A configuration is computed once per run (see :func:`begin_run`) and reused for
the following samples while every processor field, every name the code read and
every code object it read are the same objects: an in-place code swap
(``%autoreload``, ``P.process = f``) is seen on the next sample.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from datamultiproc.core import BaseSample, Processor, walk
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage._fingerprint import Fingerprinter, class_identity
from datamultiproc.storage._names import stage_folder_name
from datamultiproc.storage._parts import MISSING, Dependency, FunctionCheck, KeyParts

__all__ = [
    "FORMAT",
    "CacheConfig",
    "KeyMode",
    "begin_run",
    "cache_config",
    "content_digest",
    "current_run",
    "key_leaves",
    "key_parts",
]

KeyMode = Literal["id", "content"]
FORMAT = "datamultiproc-cache-2"
_DIGEST_CHARS = 16
_warned: set[tuple[str, str]] = set()
_run = [0]  # the current run's number, see begin_run()


def begin_run() -> None:
    """Start a new run: configurations are computed afresh on their next sample.

    The runner calls it at the start of every run, so data the code reads (a global
    array changed in place, a dict updated) is keyed once per run, not per sample.
    """
    _run[0] += 1


def current_run() -> int:
    """Return the number of the current run (see :func:`begin_run`)."""
    return _run[0]


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
    parts
        Everything in the key, in order: a label in the user's words -> a short display
        value (``"parameter h" -> "0.4"``, ``"code of Denoise.process" -> digest``,
        ``"scikit-image" -> "0.24.0"``, ``"upstream Normalise: parameter method" -> "'zscore'"``).
        Also written to the manifest, so two configurations can be compared.
    dependencies
        ``(namespace, name, value)`` the key read (globals, module attributes, class
        attributes); the digest holds while each names the same object.
    functions
        ``(function, code, defaults, kwdefaults)`` of every function whose code the key read.
    run
        The run (see :func:`begin_run`) this configuration was computed in.
    """

    stage: str
    folder: str
    digest: str
    manifest: dict[str, Any]
    parts: dict[str, str]
    dependencies: tuple[Dependency, ...] = ()
    functions: tuple[FunctionCheck, ...] = ()
    run: int = 0

    def is_current(self) -> bool:
        """Return whether this configuration still holds without computing it again.

        True while in the same run, every name the key read (globals, module and class
        attributes) names the same object and every function read has the same code
        object and defaults (all compared by identity).
        """
        if self.run != _run[0]:
            return False
        for namespace, name, value in self.dependencies:
            if namespace.get(name, MISSING) is not value:
                return False
        for function, code, defaults, kwdefaults in self.functions:
            if (
                function.__code__ is not code
                or function.__defaults__ is not defaults
                or function.__kwdefaults__ is not kwdefaults
            ):
                return False
        return True


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
    value, about values that have no stable representation.
    """
    wrapped = key_leaves((processor,))
    before = key_leaves(upstream)
    key = key_parts(wrapped, before, key_mode)
    _warn_unstable(key.unstable, processor.stage_name)
    digest = key.hexdigest()
    stage = processor.stage_name
    folder = f"{stage_folder_name(stage)}/{digest[:_DIGEST_CHARS]}"
    manifest = _manifest(stage, digest, key_mode, wrapped, before)
    manifest["parts"] = dict(key.parts)
    return CacheConfig(
        stage=stage,
        folder=folder,
        digest=digest,
        manifest=manifest,
        parts=dict(key.parts),
        dependencies=tuple(key.dependencies),
        functions=tuple(key.functions),
        run=_run[0],
    )


def key_parts(
    wrapped: tuple[Processor, ...], upstream: tuple[Processor, ...], key_mode: KeyMode
) -> KeyParts:
    """Walk the wrapped and upstream leaves into labelled parts (the producer of ``parts``)."""
    key = KeyParts()
    key.add("cache format", FORMAT, FORMAT)
    key.add("key mode", key_mode, key_mode)
    for leaf in wrapped:
        key.processor(leaf, f"{leaf.stage_name}: " if len(wrapped) > 1 else "")
    for leaf in upstream:
        key.processor(leaf, f"upstream {leaf.stage_name}: ")
    return key


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
        if (stage, path) in _warned:
            continue
        _warned.add((stage, path))
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
