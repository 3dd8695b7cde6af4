"""Cache: run a processor once per sample and configuration, and reuse its stored result."""

from __future__ import annotations

import operator
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr

from datamultiproc.core import (
    BaseSample,
    Processor,
    StepRecord,
    StepRecorder,
    current_recorder,
    walk,
)
from datamultiproc.core._trace import leaf_steps
from datamultiproc.exceptions import CacheCorruptedError, CacheWarning, StorageError
from datamultiproc.storage._classes import remember
from datamultiproc.storage._files import (
    ClassNotFoundError,
    make_folder,
    read_entry,
    write_json_atomic,
    write_pickle_atomic,
)
from datamultiproc.storage._keys import (
    CacheConfig,
    KeyMode,
    cache_config,
    content_digest,
)
from datamultiproc.storage._names import entry_name
from datamultiproc.storage._reasons import (
    ENTRY_CORRUPT,
    ENTRY_UNREADABLE,
    NEW_SAMPLE,
    configuration_reason,
)
from datamultiproc.storage._schema import upgrade_sample
from datamultiproc.storage._stats import CacheStats

__all__ = ["Cache"]

MANIFEST = "manifest.json"
_Outcome = Literal["hit", "missing", "corrupt", "unloadable"]
SUFFIX = ".pickle"
_MAX_NAMES = 1 << 14  # ids whose file names are remembered: about 160 bytes each


class Cache(Processor):
    """Store each sample after ``processor`` and load it on later runs instead of recomputing.

    An entry is reused only while the sample id, the wrapped processor's class,
    parameters and code, and every processor that runs before the Cache in the same
    pipeline are unchanged. Any change is a miss, and the new result is stored
    beside the old one, under ``cache_dir/<stage>/<configuration>/<id>.pickle``.
    Writes are atomic; a corrupt or truncated entry is reported with a
    :class:`~datamultiproc.exceptions.CacheWarning` and recomputed.

    Cache files are pickles: only use cache directories you trust.

    Parameters
    ----------
    processor
        The step whose results are cached (a Compose works too).
    cache_dir
        Root folder of the cache; created as needed.
    key
        ``"id"`` (default): the sample id and the configuration. ``"content"``: also
        the input sample's data (every field but ``processing_history``), for
        inputs that change under the same ids.

    Examples
    --------
    >>> import tempfile
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddStep(Processor):
    ...     step_size: int = 1
    ...     def process(self, sample):
    ...         sample.data = sample.data + self.step_size
    ...         return sample
    >>> cache = Cache(processor=AddStep(), cache_dir=tempfile.mkdtemp())
    >>> cache(Sample(id="a", data=1)).data, cache(Sample(id="a", data=1)).data
    (2, 2)
    >>> cache.stats  # doctest: +ELLIPSIS
    CacheStats(hits=1, misses=1, recomputed=0, bytes_read=..., bytes_written=...)
    """

    processor: Processor
    cache_dir: Path
    key: KeyMode = "id"

    _state: _RuntimeState = PrivateAttr(default_factory=lambda: _RuntimeState())

    @property
    def stage_name(self) -> str:
        """The wrapped processor's stage name."""
        return self.processor.stage_name

    @property
    def stats(self) -> CacheStats:
        """Hits, misses and bytes of this Cache object, added up over every run in this process.

        Cumulative: it keeps counting across runs (and kernel cells) until the Cache
        object is recreated. For one run's counts, use ``result.cache_stats()``.
        """
        return self._state.stats

    @property
    def record_stage(self) -> str:
        """The stage name this Cache's step records carry (the wrapped step's last leaf)."""
        return self.processor.iter_processors()[-1].stage_name

    @property
    def record_params(self) -> str:
        """The parameters text this Cache's step records carry."""
        return self.processor.iter_processors()[-1].describe_params()

    def update_stats(self, records: Iterable[StepRecord]) -> None:
        """Add the counts of this Cache's steps found in ``records`` to :attr:`stats`.

        For the runner: worker processes count on their own copies, and ship step
        records back; calling this in the parent makes ``cache.stats`` complete.
        """
        self._state.stats.merge(
            CacheStats.from_records(records, stage=self.record_stage, params=self.record_params)
        )

    def iter_processors(self) -> tuple[Processor, ...]:
        """Return ``(self,)``: a Cache is one step of its own."""
        return (self,)

    def substeps(self) -> tuple[Processor, ...]:
        """Return ``(processor,)``: in another Cache's key, a Cache stands for it."""
        return (self.processor,)

    def storage_directories(self) -> tuple[str, ...]:
        """Return ``(cache_dir,)``."""
        return (os.fspath(self.cache_dir),)

    def setup(self) -> None:
        """Set up the wrapped processor."""
        self.processor.setup()

    def process(self, sample: Any) -> Any:
        """Load the cached result for ``sample`` or compute and store it."""
        return self._run_step(sample, ())

    def configuration(self, upstream: Iterable[Processor] = ()) -> CacheConfig:
        """Return the configuration this Cache uses after the ``upstream`` steps."""
        return self._memo(tuple(upstream)).config

    def entry_path(self, sample: BaseSample, upstream: Iterable[Processor] = ()) -> Path:
        """Return the file that holds (or will hold) the cached result for ``sample``."""
        return Path(self._entry_path(self._memo(tuple(upstream)), sample))

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        # A hit runs once per sample and should cost little more than a plain pickle.load,
        # so it makes few calls: after a large entry's copy has pushed the interpreter's
        # data out of the CPU caches, every object and function touched costs (see
        # benchmarks/bench_cache.py). Whatever a hit does not need is in _miss.
        # Read the private dict directly: pydantic's private-attribute lookup costs microseconds.
        state: _RuntimeState = self.__pydantic_private__["_state"]  # type: ignore[index]
        recorder = current_recorder()
        started = 0.0 if recorder is None else time.perf_counter()
        memo = state.memos.get(tuple(map(id, upstream)) if upstream else ())
        if memo is None or not memo.is_valid():
            memo = self._memo(upstream, state)
        name = state.names.get(sample.id)
        if name is None or memo.by_content:
            path = self._entry_path(memo, sample, state)
        else:
            path = f"{memo.prefix}{name}{SUFFIX}"
        remember(type(sample))  # lets a spawned worker load entries of notebook classes
        try:
            # The stored compute time only matters to step records (seconds saved).
            cached, size, computed = read_entry(path, timed=recorder is not None)
        except (OSError, StorageError) as exc:
            return self._miss(sample, upstream, memo, path, _read_failure(exc, path), recorder)
        # The entry is the sample's, with the fields its class has now (else _checked).
        if not (
            isinstance(cached, BaseSample)
            and cached.id == sample.id
            and type(cached).__pydantic_fields__.keys() == cached.__dict__.keys()
        ):
            found = _checked(cached, sample, path)
            if found != "hit":
                return self._miss(sample, upstream, memo, path, found, recorder)
        stats = state.stats
        stats.hits += 1
        stats.bytes_read += size
        if recorder is not None:
            recorder.add(
                memo.stage,
                memo.params,
                time.perf_counter() - started,
                cache_hit=True,
                bytes_read=size,
                computed_seconds=computed,
            )
        return cached

    def _miss(
        self,
        sample: Any,
        upstream: tuple[Processor, ...],
        memo: _Memo,
        path: str,
        found: _Outcome,
        recorder: StepRecorder | None,
    ) -> Any:
        state: _RuntimeState = self.__pydantic_private__["_state"]  # type: ignore[index]
        corrupt = found == "corrupt"
        if found == "missing":
            reason = self._miss_reason(memo, state)
        else:
            reason = ENTRY_CORRUPT if corrupt else ENTRY_UNREADABLE
        computing = time.perf_counter()
        result = self.processor._run_step(sample, upstream)
        seconds = time.perf_counter() - computing
        size = 0
        if found != "unloadable":
            self._write_manifest(memo.config, state)
            size = write_pickle_atomic(Path(path), result, seconds=seconds)
        state.stats.misses += 1
        state.stats.recomputed += corrupt
        state.stats.bytes_written += size
        if recorder is not None:
            recorder.mark_last(
                cache_hit=False, bytes_written=size, recomputed=corrupt, reason=reason
            )
        return result

    def _miss_reason(self, memo: _Memo, state: _RuntimeState) -> str:
        # A configuration on disk stays there: remember that. A new one is compared with
        # earlier ones until this process has written its manifest (after its first miss).
        if memo.folder in state.existing:
            return NEW_SAMPLE
        reason = configuration_reason(self.cache_dir, memo.config.folder, memo.config.parts)
        if reason is None:
            state.existing.add(memo.folder)
        return reason or NEW_SAMPLE

    def _trace_step(self, sample: Any, upstream: tuple[Processor, ...]) -> tuple[Any, str]:
        """In a trace, load a hit, or compute a miss without storing it (nor counting either).

        The status is ``"hit"`` or ``"miss: <reason>"``, the reason as in step records.
        """
        state: _RuntimeState = self.__pydantic_private__["_state"]  # type: ignore[index]
        memo = self._memo(upstream, state)
        remember(type(sample))
        path = self._entry_path(memo, sample)
        try:
            cached, _, _ = read_entry(path, timed=False)
        except (OSError, StorageError) as exc:
            found = _read_failure(exc, path)
        else:
            found = _checked(cached, sample, path)
        if found == "hit":
            return cached, "hit"
        if found == "missing":
            reason = self._miss_reason(memo, state)
        else:
            reason = ENTRY_CORRUPT if found == "corrupt" else ENTRY_UNREADABLE
        for leaf, leaf_upstream in leaf_steps(self.processor, upstream):
            sample, _ = leaf._trace_step(sample, leaf_upstream)
        return sample, f"miss: {reason}"

    def _memo(self, upstream: tuple[Processor, ...], state: _RuntimeState | None = None) -> _Memo:
        memos = (state or self._state).memos
        memo = valid_memo(memos, upstream)
        if memo is None:
            config = cache_config(self.processor, upstream, self.key)
            folder = os.path.join(self.cache_dir, config.folder)
            roots = (self, *upstream)
            memo = _Memo.of(upstream, roots, config, folder, self.record_stage, self.record_params)
            memo.by_content = self.key == "content"
            memos[tuple(map(id, upstream))] = memo
        return memo

    def _entry_path(
        self, memo: _Memo, sample: BaseSample, state: _RuntimeState | None = None
    ) -> str:
        # File names by id, remembered: a rerun (the common case for hits) meets the
        # same ids again, and making a name safe costs more than the lookup.
        names = (state or self._state).names
        name = names.get(sample.id)
        if name is None:
            if len(names) >= _MAX_NAMES:
                names.clear()
            name = names[sample.id] = entry_name(sample.id)
        if memo.by_content:
            name = f"{name}.{content_digest(sample)}"
        return f"{memo.prefix}{name}{SUFFIX}"

    def _write_manifest(self, config: CacheConfig, state: _RuntimeState) -> None:
        written = state.manifests
        if config.folder in written:
            return
        path = Path(self.cache_dir) / config.folder / MANIFEST
        if not path.is_file():
            make_folder(path.parent)
            write_json_atomic(path, config.manifest)
        written.add(config.folder)


def _read_failure(exc: OSError | StorageError, path: str) -> _Outcome:
    """Return what a failed read of the entry at ``path`` found, warning as needed."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return "missing"  # NotADirectoryError: a file where a folder should be; writing says so
    if isinstance(exc, ClassNotFoundError):
        _warn_class_not_found(exc)
        return "unloadable"
    if isinstance(exc, CacheCorruptedError):
        warnings.warn(f"{exc}; recomputing and replacing it", CacheWarning, stacklevel=4)
        return "corrupt"
    if isinstance(exc, OSError):
        msg = f"cannot read cache entry {path!r}: {exc}"
        raise StorageError(msg) from exc
    raise exc


def _checked(cached: Any, sample: BaseSample, path: str) -> _Outcome:
    """Return ``"hit"`` if ``cached`` is ``sample``'s entry (upgraded to its class's fields)."""
    if not isinstance(cached, BaseSample) or cached.id != sample.id:
        found = getattr(cached, "id", type(cached).__qualname__)
        msg = f"cache entry {path!r} holds {found!r}, not sample {sample.id!r}; recomputing and replacing it"
        warnings.warn(msg, CacheWarning, stacklevel=4)
        return "corrupt"
    if type(cached).__pydantic_fields__.keys() != cached.__dict__.keys() and not upgrade_sample(
        cached
    ):
        return "missing"  # written by an older class with a required field fewer
    return "hit"


def _warn_class_not_found(exc: ClassNotFoundError) -> None:
    # Once per missing class and process, not once per file.
    cause = str(exc.__cause__)
    if cause in _classes_not_found:
        return
    _classes_not_found.add(cause)
    msg = (
        f"{exc}. The entry is intact but its class cannot be imported in this process "
        "(a class defined in a notebook, in a spawned worker?): computing instead, and "
        "leaving the entry for processes that can load it."
    )
    warnings.warn(msg, CacheWarning, stacklevel=5)


_classes_not_found: set[str] = set()


def _snapshot(node: Processor) -> tuple[Processor, type, tuple[Any, ...]]:
    # Field values by identity: assigning a new value to a parameter changes it. The
    # values are held, not their ids, so a freed value's id cannot be reused unnoticed.
    return node, type(node), tuple(node.__dict__.values())


@dataclass
class _Memo:
    """A configuration, and what must stay the same objects for it to hold."""

    upstream: tuple[Processor, ...]  # held, so no other object can take their ids
    nodes: tuple[tuple[Processor, type, tuple[Any, ...]], ...]
    config: CacheConfig
    folder: str
    stage: str
    params: str
    by_content: bool = False  # a Cache with key="content": file names carry a digest
    prefix: str = field(init=False)  # the folder and a separator, for entry paths

    def __post_init__(self) -> None:
        self.prefix = f"{self.folder}{os.sep}"

    @classmethod
    def of(
        cls,
        upstream: tuple[Processor, ...],
        roots: tuple[Processor, ...],
        config: CacheConfig,
        folder: str,
        stage: str,
        params: str = "",
    ) -> _Memo:
        """Return a memo of ``config`` that holds while every step under ``roots`` is unchanged."""
        nodes = tuple(_snapshot(p.step) for root in roots for p in walk(root))
        return cls(upstream, nodes, config, folder, stage, params)

    def is_valid(self) -> bool:
        """Return whether every step, field value and name the key read is unchanged.

        The steps of ``upstream`` need no check: memos are looked up by their ids, and
        a memo holds them, so no other object can have those ids.
        """
        # Runs on every sample, so identity checks run in C (map + operator.is_).
        for node, cls, values in self.nodes:
            current = node.__dict__
            # Compare the dict's values in place: no tuple built per node and sample.
            if (
                type(node) is not cls
                or len(current) != len(values)
                or not all(map(operator.is_, current.values(), values))
            ):
                return False
        return self.config.is_current()


def valid_memo(
    memos: dict[tuple[int, ...], _Memo], upstream: tuple[Processor, ...]
) -> _Memo | None:
    """Return the memo made for ``upstream`` if nothing it depends on has changed since.

    Fingerprinting costs far more than a hit: it is redone only when a step, a field
    value or a global name the code uses has changed since the last sample.
    """
    memo = memos.get(tuple(map(id, upstream)))
    return memo if memo is not None and memo.is_valid() else None


@dataclass
class _RuntimeState:
    """Per-process state of a Cache; copies and pickles start afresh."""

    stats: CacheStats = field(default_factory=CacheStats)
    memos: dict[tuple[int, ...], _Memo] = field(default_factory=dict)
    manifests: set[str] = field(default_factory=set)
    existing: set[str] = field(default_factory=set)  # configuration folders found on disk
    names: dict[str, str] = field(default_factory=dict)  # sample id -> file name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_RuntimeState, ())

    def __deepcopy__(self, memo: dict[int, Any]) -> _RuntimeState:
        return _RuntimeState()

    def __copy__(self) -> _RuntimeState:
        return _RuntimeState()
