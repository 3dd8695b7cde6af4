"""The sample: a pydantic model carrying one item's data through a pipeline."""

from __future__ import annotations

import inspect
import pickle
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from datamultiproc.exceptions import StorageError

__all__ = [
    "PICKLE_SUFFIXES",
    "BaseSample",
    "register_sample_writer",
    "sample_from_old_file",
    "values_equal",
]

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle"})

_T = typing.TypeVar("_T", bound="BaseSample")
# How write_file writes: the storage layer registers its atomic pickle writer at import.
_writers: list[Callable[[Path, object], int]] = []


def register_sample_writer(write: Callable[[Path, object], int]) -> None:
    """Make ``write(path, sample)`` write :meth:`BaseSample.write_file`'s files.

    The storage layer registers its atomic writer (temporary file plus rename, and
    classes plain pickle cannot reach by name) when it is imported.
    """
    _writers[:] = [write]


class BaseSample(BaseModel):
    """Base class of the data objects that flow through a pipeline.

    Subclasses declare their data as pydantic fields; no ``__init__`` is needed.
    A field annotated ``Optional[X]`` (or ``X | None``) without a default
    defaults to ``None``, so later steps can fill it in. Assignment is validated.

    Attributes
    ----------
    id
        Identifies the sample; it names its cache and save files, so it must be
        unique within a run.
    processing_history
        One ``(stage, parameters)`` entry per processor that ran on the sample.

    Examples
    --------
    >>> import numpy as np
    >>> from typing import Optional
    >>> class CustomSample(BaseSample):
    ...     data: int
    ...     optional_data: Optional[str]
    ...     array: np.ndarray
    >>> s = CustomSample(id="s1", data=1, array=np.zeros(2))
    >>> s.optional_data is None, s.processing_history
    (True, [])
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        validate_assignment=True,
        protected_namespaces=(),
    )

    processing_history: list[tuple[str, str]] = []
    id: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs before pydantic collects the fields, so a default set here is seen.
        _default_optional_fields_to_none(cls)
        super().__init_subclass__(**kwargs)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        assert isinstance(other, BaseSample)
        return all(
            values_equal(getattr(self, name), getattr(other, name))
            for name in type(self).model_fields
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr_args__(self) -> Any:
        # pydantic's repr, with arrays of more than a few values shown as dtype and shape.
        for name, value in super().__repr_args__():
            yield name, _ArrayAbbreviation(value) if _is_large_array(value) else value

    def _repr_html_(self) -> str:
        """Show the sample in a notebook: fields, array summaries and thumbnails, history."""
        from datamultiproc.core._display import sample_html

        return sample_html(self)

    def write_file(self, path: str | Path) -> Path:
        """Write the sample to a ``.pkl`` or ``.pickle`` file and return its path.

        The file appears complete or not at all: it is written to a temporary file
        in the same folder, then renamed. Classes plain pickle cannot reach by name
        (defined in a notebook or inside a function) are written too.

        Parameters
        ----------
        path
            Destination; its folder must exist.

        Raises
        ------
        ValueError
            If the suffix is not ``.pkl`` or ``.pickle``.
        StorageError
            Naming the path, if the file cannot be written; no file is left behind.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.pickle"
        >>> BaseSample(id="a").write_file(path).name
        'a.pickle'
        >>> BaseSample.read_file(path).id
        'a'
        """
        path = _checked_pickle_path(path)
        if not _writers:
            msg = "no sample writer registered: import datamultiproc first"
            raise StorageError(msg)
        if not path.parent.is_dir():
            msg = f"cannot write sample {self.id!r} to {str(path)!r}: {str(path.parent)!r} is not a folder; create it first"
            raise StorageError(msg)
        try:
            _writers[0](path, self)
        except StorageError as exc:
            msg = f"cannot write sample {self.id!r}: {exc}"
            raise StorageError(msg) from (exc.__cause__ or exc)
        return path

    @classmethod
    def from_records(
        cls: type[_T],
        records: Iterable[Mapping[str, Any]],
        *,
        id_key: str | None = None,
        ignore_unknown: bool = False,
    ) -> list[_T]:
        """Build one sample per mapping; keys become fields.

        The same rules as :meth:`from_frame`: ``None`` or NaN (and a missing key) in a
        field that accepts ``None`` becomes ``None``; all rows are validated before
        any sample is returned, and a bad row raises one
        :class:`~datamultiproc.exceptions.TableError` naming every problem.

        Parameters
        ----------
        records
            Mappings of field name to value, e.g. ``json.load``-ed rows or ``csv.DictReader``.
        id_key
            Key holding the ids (converted to ``str``); default ``"id"``.
        ignore_unknown
            Leave out keys that match no field instead of raising.

        Returns
        -------
        list
            The samples, in the records' order.

        Raises
        ------
        TableError
            If any record is invalid, lacks an id, repeats one, or has unknown keys.
        TypeError
            If an item is not a mapping.

        Examples
        --------
        >>> from typing import Optional
        >>> class Tile(BaseSample):
        ...     size: int
        ...     label: Optional[str]
        >>> tiles = Tile.from_records([{"id": "a", "size": 3}, {"id": "b", "size": 4, "label": "x"}])
        >>> [(t.id, t.size, t.label) for t in tiles]
        [('a', 3, None), ('b', 4, 'x')]
        """
        from datamultiproc.core import _tables

        return _tables.samples_from_records(
            cls, records, id_key or "id", ignore_unknown=ignore_unknown
        )

    @classmethod
    def from_frame(
        cls: type[_T],
        frame: Any,
        *,
        id_column: str | None = None,
        ignore_unknown: bool = False,
    ) -> list[_T]:
        """Build one sample per row of a pandas DataFrame; columns become fields.

        The id comes from ``id_column`` if given, else from an ``id`` column, else
        from the index; ids are converted to ``str``. Missing cells (NaN, ``None``,
        ``pd.NA``, ``NaT``) become ``None`` in fields that accept ``None``; other
        fields get the cell as it is (NaN stays NaN in a ``float`` field). Cells
        holding numpy arrays or other objects pass through unchanged.

        Every row is validated before any sample is returned: a bad table raises one
        :class:`~datamultiproc.exceptions.TableError` listing each invalid row (the
        first 20, then a count) with its label, field and pydantic's message, the
        columns that match no field, missing and repeated ids.

        Parameters
        ----------
        frame
            A ``pandas.DataFrame``.
        id_column
            Column holding the ids; default ``"id"`` if present, else the index.
        ignore_unknown
            Leave out columns that match no field instead of raising.

        Returns
        -------
        list
            The samples, in row order.

        Raises
        ------
        TableError
            If any row is invalid, lacks an id, repeats one, or a column matches no field.
        TypeError
            If ``frame`` is not a DataFrame.
        ValueError
            If ``id_column`` is not a column of ``frame``.

        Examples
        --------
        >>> import pandas as pd
        >>> from typing import Optional
        >>> class Tile(BaseSample):
        ...     size: int
        ...     label: Optional[str]
        >>> frame = pd.DataFrame({"size": [3, 4], "label": ["x", None]}, index=["a", "b"])
        >>> [(t.id, t.size, t.label) for t in Tile.from_frame(frame)]
        [('a', 3, 'x'), ('b', 4, None)]
        """
        from datamultiproc.core import _services, _tables

        table = _services.table_service().read_frame(frame, _tables.none_fields(cls))
        if id_column is not None and id_column not in table.columns:
            msg = f"id_column={id_column!r} is not a column; columns: {list(table.columns)}"
            raise ValueError(msg)
        key = id_column or "id"
        if key != "id" and "id" in table.columns:
            msg = f"the table has an 'id' column and id_column={key!r}: drop or rename one"
            raise ValueError(msg)
        columns = dict(table.columns)
        ids = columns.pop(key) if key in columns else list(table.labels)
        table = _tables.FrameColumns(table.labels, columns)
        return _tables.samples_from_columns(cls, table, ids, ignore_unknown=ignore_unknown)

    @classmethod
    def read_file(cls: type[_T], path: str | Path) -> _T:
        """Read a sample written by :meth:`write_file`.

        Parameters
        ----------
        path
            A ``.pkl`` or ``.pickle`` file.

        Files written by datamultiproc 0.1.3 hold a plain dict of the fields; call
        ``MySample.read_file(path)`` on the sample class to read them.

        Returns
        -------
        BaseSample
            The sample, of its original subclass.

        Raises
        ------
        ValueError
            If the suffix is not ``.pkl`` or ``.pickle``.
        FileNotFoundError
            If there is no file at ``path``.
        StorageError
            If the file cannot be read or does not hold a ``cls`` instance.
        """
        path = _checked_pickle_path(path)
        if not path.is_file():
            msg = f"no sample file at {str(path)!r}"
            raise FileNotFoundError(msg)
        try:
            with path.open("rb") as handle:
                sample = pickle.load(handle)
        except Exception as exc:
            msg = f"cannot read a sample from {str(path)!r}: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc
        if isinstance(sample, dict):
            return sample_from_old_file(cls, sample, path)
        if not isinstance(sample, cls):
            msg = f"{str(path)!r} holds a {type(sample).__qualname__}, not a {cls.__qualname__}"
            raise StorageError(msg)
        return sample


def sample_from_old_file(cls: type[_T], data: dict[str, Any], path: str | Path) -> _T:
    """Return the sample a datamultiproc 0.1.3 file held: it pickled ``sample.dict()``.

    Raises
    ------
    StorageError
        If ``cls`` is :class:`BaseSample` itself (the file does not record its class),
        or the fields do not fit ``cls``.
    """
    if cls is BaseSample:
        msg = (
            f"{str(path)!r} was written by datamultiproc 0.1.3 as a plain dict, which "
            "does not record its class: name it, e.g. MySample.read_file(path) or "
            "load_saved(folder, cls=MySample)"
        )
        raise StorageError(msg)
    try:
        return cls.model_validate(data)
    except ValueError as exc:
        msg = f"{str(path)!r} (a 0.1.3 file) does not fit {cls.__qualname__}: {exc}"
        raise StorageError(msg) from exc


class _ArrayAbbreviation:
    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __repr__(self) -> str:
        return f"array(shape={self.array.shape}, dtype={self.array.dtype})"


def _is_large_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.size > ARRAY_REPR_MAX


#: Arrays with more values than this are abbreviated in ``repr(sample)``.
ARRAY_REPR_MAX = 8


def values_equal(left: Any, right: Any) -> bool:
    """Compare two field values, treating numpy arrays by shape, dtype and content."""
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        return (
            isinstance(left, np.ndarray)
            and isinstance(right, np.ndarray)
            and left.dtype == right.dtype
            and np.array_equal(left, right, equal_nan=left.dtype.kind in "fc")
        )
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return (
            type(left) is type(right)
            and len(left) == len(right)
            and all(values_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            values_equal(left[key], right[key]) for key in left
        )
    return bool(left == right)


def _checked_pickle_path(path: str | Path) -> Path:
    if not isinstance(path, (str, Path)):
        msg = f"path must be a str or pathlib.Path, not {type(path).__name__}"
        raise TypeError(msg)
    path = Path(path)
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        msg = (
            f"unsupported sample file suffix {path.suffix!r} in {str(path)!r}; use .pkl or .pickle"
        )
        raise ValueError(msg)
    return path


def _default_optional_fields_to_none(cls: type) -> None:
    annotations = inspect.get_annotations(cls)
    module_globals = getattr(sys.modules.get(cls.__module__), "__dict__", {})
    for name, annotation in annotations.items():
        if name.startswith("_") or name in cls.__dict__:
            continue
        if _is_optional(_resolve(annotation, module_globals)):
            setattr(cls, name, None)


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, dict(namespace), {"typing": typing})
    except Exception:
        # Unresolvable forward reference: fall back to reading the text.
        text = annotation.replace(" ", "")
        return None if text.startswith("Optional[") or "|None" in text else annotation


def _is_optional(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_optional(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(annotation)
    return False
