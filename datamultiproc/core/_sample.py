"""The sample: a pydantic model carrying one item's data through a pipeline."""

from __future__ import annotations

import inspect
import pickle
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from datamultiproc.exceptions import StorageError

__all__ = ["PICKLE_SUFFIXES", "BaseSample", "register_sample_writer", "values_equal"]

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
    def read_file(cls: type[_T], path: str | Path) -> _T:
        """Read a sample written by :meth:`write_file`.

        Parameters
        ----------
        path
            A ``.pkl`` or ``.pickle`` file.

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
        if not isinstance(sample, cls):
            msg = f"{str(path)!r} holds a {type(sample).__qualname__}, not a {cls.__qualname__}"
            raise StorageError(msg)
        return sample


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
