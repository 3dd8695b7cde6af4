"""Save folders as data sets: :func:`load_saved` and the lazy :class:`SavedSamples`.

Opening a folder lists it once (``os.scandir``, no per-file ``stat``) and reads the
configuration records a :class:`~datamultiproc.Save` keeps beside its files; a
sample's file is read only when that sample is accessed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, TypeVar, overload

from datamultiproc.core import BaseSample, sample_from_old_file
from datamultiproc.core._services import table_service
from datamultiproc.exceptions import MixedConfigurationsWarning, StorageError
from datamultiproc.storage._files import TEMP_PREFIX, read_pickle
from datamultiproc.storage._save_records import RECORDS, read_records

__all__ = ["SavedFile", "SavedSamples", "load_saved", "saved_files"]

SampleT = TypeVar("SampleT", bound=BaseSample)
_SUFFIXES = (".pickle", ".pkl")
UNRECORDED = "unrecorded"


class SavedFile(NamedTuple):
    """One file of a Save folder.

    Attributes
    ----------
    sample_id
        The sample's id (from the records, else from the file name).
    path
        The file (a ``str``, as ``os.scandir`` gives it).
    configuration
        Id of the pipeline configuration that wrote it last, or ``"unrecorded"``
        (written before datamultiproc 0.2.0, or by a writer killed before recording).
    written_ns
        When it was written (ns since the epoch), or ``None`` if unrecorded.
    """

    sample_id: str
    path: str
    configuration: str
    written_ns: int | None


class SavedSamples(Sequence[SampleT], Generic[SampleT]):
    """The samples of a Save folder, read from disk one at a time when accessed.

    Returned by :func:`datamultiproc.load_saved`. Supports ``len()``, iteration,
    ``[i]`` and slices (a slice is another collection); nothing is cached, so each
    access reads the file again.

    Attributes
    ----------
    files
        One :class:`SavedFile` per sample, sorted by id.
    configurations
        Configuration id to its description (the steps before the Save).

    Examples
    --------
    >>> import tempfile
    >>> from datamultiproc import BaseSample, Save, load_saved
    >>> folder = tempfile.mkdtemp()
    >>> _ = Save(save_to_dir=folder)(BaseSample(id="a", processing_history=[("Load", "")]))
    >>> saved = load_saved(folder)
    >>> saved, saved[0].processing_history
    (<SavedSamples: 1 samples ['a']>, [('Load', '')])
    """

    def __init__(
        self,
        files: list[SavedFile],
        *,
        sample_class: type[SampleT] | None,
        configurations: dict[str, dict[str, Any]],
        with_configuration: bool = False,
    ) -> None:
        self.files = files
        self.configurations = configurations
        self._class = sample_class
        self._with_configuration = with_configuration
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    @overload
    def __getitem__(self, index: int) -> SampleT: ...
    @overload
    def __getitem__(self, index: slice) -> SavedSamples[SampleT]: ...
    def __getitem__(self, index: int | slice) -> SampleT | SavedSamples[SampleT]:
        if isinstance(index, slice):
            return SavedSamples(
                self.files[index],
                sample_class=self._class,
                configurations=self.configurations,
                with_configuration=self._with_configuration,
            )
        return self._read(self.files[index])

    def __iter__(self) -> Iterator[SampleT]:
        return (self._read(file) for file in self.files)

    def __repr__(self) -> str:
        shown = ", ".join(repr(i) for i in self.ids[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"<SavedSamples: {len(self)} samples [{shown}{more}]>"

    @property
    def ids(self) -> list[str]:
        """The sample ids, without reading any file."""
        return [file.sample_id for file in self.files]

    def get(self, sample_id: str) -> SampleT:
        """Read the sample with id ``sample_id``.

        Raises
        ------
        KeyError
            If the collection has no sample with that id.
        """
        if self._positions is None:
            self._positions = {file.sample_id: i for i, file in enumerate(self.files)}
        if sample_id not in self._positions:
            msg = f"no saved sample with id {sample_id!r} (of {len(self)}); see .ids"
            raise KeyError(msg)
        return self._read(self.files[self._positions[sample_id]])

    def to_frame(self, *, arrays: Literal["cells", "summary"] = "cells") -> Any:
        """Read every sample; return one row per sample (see :func:`datamultiproc.samples_frame`).

        With ``configuration="all"``, a ``configuration`` column says which
        configuration wrote each file.
        """
        extra = None
        if self._with_configuration:
            extra = {"configuration": ([file.configuration for file in self.files], "category")}
        return table_service().samples_frame(
            list(self), arrays=arrays, sample_class=self._class, extra=extra
        )

    def history(self) -> Any:
        """Read every sample; return one row per ``processing_history`` entry."""
        return table_service().history_frame(list(self))

    def _read(self, file: SavedFile) -> SampleT:
        return read_sample(file.path, self._class)  # type: ignore[return-value]


def read_sample(path: str | Path, sample_class: type[BaseSample] | None) -> BaseSample:
    """Read one saved sample; a 0.1.3 file (a plain dict) becomes ``sample_class``.

    Raises
    ------
    StorageError
        If the file cannot be read, holds another class, or is a 0.1.3 file and no
        class was named.
    """
    obj, _ = read_pickle(path)
    if isinstance(obj, dict):
        return sample_from_old_file(sample_class or BaseSample, obj, path)
    if not isinstance(obj, sample_class or BaseSample):
        expected = (sample_class or BaseSample).__qualname__
        msg = f"{str(path)!r} holds a {type(obj).__qualname__}, not a {expected}"
        raise StorageError(msg)
    return obj


def load_saved(
    path: str | Path,
    *,
    cls: type[SampleT] | None = None,
    configuration: str = "latest",
    stage: str | None = None,
) -> SavedSamples[SampleT]:
    """Open a Save folder as a lazy collection of samples, read one file at a time.

    Opening lists the folder once and reads the Save's configuration records; a
    sample's file is read only when that sample is accessed.

    A :class:`~datamultiproc.Save` records which pipeline configuration (the steps
    before it, with their parameters and code) wrote each file. By default only the
    files of the configuration that wrote most recently are returned, with a
    :class:`~datamultiproc.exceptions.MixedConfigurationsWarning` counting the files
    of other configurations left out, so results of different settings are never
    mixed silently. Folders without records (datamultiproc 0.1.3) load whole.

    Parameters
    ----------
    path
        A Save's ``save_to_dir``, or one stage folder in it.
    cls
        The sample class. Needed for files of datamultiproc 0.1.3, which hold plain
        dicts; otherwise checks that every sample is one.
    configuration
        ``"latest"`` (default), ``"all"`` (every file; ``to_frame()`` adds a
        ``configuration`` column), ``"unrecorded"`` or a configuration id (a prefix
        of one is enough; ``.configurations`` lists them).
    stage
        The stage folder to open when ``path`` holds several.

    Returns
    -------
    SavedSamples
        ``len()``, iteration, ``[i]``, ``.get(id)``, ``.ids``, ``.to_frame()`` and
        ``.history()``; sorted by id.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ValueError
        If ``path`` holds several stage folders and ``stage`` is not given, or
        ``configuration`` matches no configuration.
    StorageError
        If ``path`` holds no saved samples.

    Examples
    --------
    >>> import tempfile
    >>> from datamultiproc import BaseSample, Save
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     _ = Save(save_to_dir=folder)(BaseSample(id=f"s{i}", processing_history=[("Load", "")]))
    >>> saved = load_saved(folder)
    >>> len(saved), saved.ids, saved.get("s1").id
    (3, ['s0', 's1', 's2'], 's1')
    """
    if not isinstance(configuration, str):
        msg = f"configuration must be 'latest', 'all' or a configuration id, not {configuration!r}"
        raise TypeError(msg)
    folder = _stage_folder(Path(path), stage)
    files, descriptions = saved_files(folder)
    chosen, left_out = _choose(files, configuration, descriptions, folder)
    if left_out:
        counts = _count(left_out)
        msg = (
            f"{folder}: left out {len(left_out)} file(s) written by other pipeline "
            f"configurations ({counts}); loaded the {len(chosen)} of configuration "
            f"{chosen[0].configuration if chosen else configuration!r}. "
            "Pass configuration='all' to load every file with a configuration column, "
            "or prune(pipeline) to remove the others."
        )
        warnings.warn(msg, MixedConfigurationsWarning, stacklevel=2)
    return SavedSamples(
        chosen,
        sample_class=cls,
        configurations=descriptions,
        with_configuration=configuration == "all",
    )


def saved_files(folder: Path) -> tuple[list[SavedFile], dict[str, dict[str, Any]]]:
    """List a stage folder's sample files with their records, sorted by id."""
    records, descriptions = read_records(folder)
    files = []
    new = tuple.__new__  # skips NamedTuple's Python-level constructor: runs per file
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(_SUFFIXES) or name.startswith(TEMP_PREFIX):
                continue
            if not entry.is_file():  # from the directory listing, no stat on Linux
                continue
            record = records.get(name)
            if record is None:
                sample_id = _id_from_name(name, folder.name)
                files.append(new(SavedFile, (sample_id, entry.path, UNRECORDED, None)))
            else:
                files.append(new(SavedFile, (record[2], entry.path, record[0], record[1])))
    files.sort()
    return files, descriptions


def _id_from_name(name: str, stage: str) -> str:
    stem = name.rsplit(".", 1)[0]
    old_suffix = f"_{stage}_"  # datamultiproc 0.1.3 named files {id}_{stage}_.pickle
    return stem[: -len(old_suffix)] if stem.endswith(old_suffix) else stem


def _stage_folder(path: Path, stage: str | None) -> Path:
    if not path.is_dir():
        msg = f"no Save folder at {str(path)!r}"
        raise FileNotFoundError(msg)
    if stage is not None:
        path = path / stage
        if not path.is_dir():
            msg = f"stage={stage!r}: no folder {str(path)!r}"
            raise ValueError(msg)
        return path
    if _holds_samples(path):
        return path
    stages = sorted(p.name for p in path.iterdir() if p.is_dir() and _holds_samples(p))
    if len(stages) == 1:
        return path / stages[0]
    if not stages:
        msg = f"{str(path)!r} holds no saved samples (no .pickle files in it or its stage folders)"
        raise StorageError(msg)
    msg = (
        f"{str(path)!r} holds several stage folders {stages}: pass stage=<name> "
        "or open one stage folder"
    )
    raise ValueError(msg)


def _holds_samples(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(entry.name.endswith(_SUFFIXES) or entry.name == RECORDS for entry in entries)


def _choose(
    files: list[SavedFile],
    configuration: str,
    descriptions: dict[str, dict[str, Any]],
    folder: Path,
) -> tuple[list[SavedFile], list[SavedFile]]:
    if configuration == "all":
        return files, []
    recorded = [file for file in files if file.written_ns is not None]
    if configuration == "latest":
        if not recorded:
            return files, []  # nothing recorded (0.1.3 or early 0.2 folders): no way to tell
        newest = max(recorded, key=lambda file: file.written_ns or 0).configuration
        return [f for f in files if f.configuration == newest], [
            f for f in files if f.configuration != newest
        ]
    matches = sorted({name for name in descriptions if name.startswith(configuration)})
    if configuration == UNRECORDED:
        matches = [UNRECORDED]
    if len(matches) != 1:
        known = sorted(descriptions) + ([UNRECORDED] if len(recorded) < len(files) else [])
        msg = (
            f"configuration={configuration!r} matches {len(matches)} configurations of "
            f"{str(folder)!r}; use 'latest', 'all' or one of {known}"
        )
        raise ValueError(msg)
    return [f for f in files if f.configuration == matches[0]], []


def _count(files: list[SavedFile]) -> str:
    counts: dict[str, int] = {}
    for file in files:
        counts[file.configuration] = counts.get(file.configuration, 0) + 1
    return ", ".join(f"{count} of {name}" for name, count in sorted(counts.items()))
