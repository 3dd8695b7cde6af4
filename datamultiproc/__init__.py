"""datamultiproc: per-sample data pipelines on pydantic, run in parallel from notebooks.

Define samples (:class:`BaseSample`), write processors (:class:`Processor`),
chain them (:class:`Compose`), keep results on disk (:class:`Cache`,
:class:`Save`). Notebook features live in :mod:`datamultiproc.notebook`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from datamultiproc._wiring import connect_layers as _connect_layers
from datamultiproc.core import BaseSample, Compose, Processor, StepRecord, Trace, TraceStep
from datamultiproc.exceptions import (
    CacheCorruptedError,
    DatamultiprocError,
    DatamultiprocWarning,
    ExecutionError,
    MissingDependencyError,
    NotPicklableError,
    ProcessingError,
    StorageError,
    TableError,
    TableProblem,
    WorkerLostError,
)
from datamultiproc.execution import RunResult, run
from datamultiproc.storage import Cache, Plan, Save, SavedSamples, load_saved

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__version__ = "0.2.0"


def history_frame(samples: Iterable[BaseSample]) -> pd.DataFrame:
    """Return one row per sample and history entry, from ``processing_history`` alone.

    Works for any samples, e.g. ones loaded from a Save folder. Imports pandas on first use.
    """
    from datamultiproc.notebook import _frames

    return _frames.history_frame(samples)


def samples_frame(
    samples: Iterable[BaseSample],
    *,
    arrays: Literal["cells", "summary"] = "cells",
    sample_class: type[BaseSample] | None = None,
) -> pd.DataFrame:
    """Return one row per sample, indexed by id, with a column per field.

    Nested dicts and pydantic models are flattened into dotted columns
    (``features.mean``); ``processing_history`` is left out (see
    :func:`history_frame`). Integer fields stay ``int64`` (nullable ``Int64`` when
    the field is optional or a value is missing), booleans ``bool``/``boolean``,
    floats ``float64``, strings pandas' string dtype (``str`` on pandas 3, object on
    pandas 2); anything else is an object column. Imports pandas on first use.

    Parameters
    ----------
    samples
        Any samples, e.g. a run's results or :func:`load_saved`'s collection.
    arrays
        ``"cells"`` (default) keeps numpy arrays as cells; ``"summary"`` replaces each
        by ``<field>.shape``, ``.dtype``, ``.min``, ``.max`` and ``.mean`` columns.
    sample_class
        The columns of an empty frame come from this class's fields.

    Returns
    -------
    pandas.DataFrame
        In the samples' order; with no samples, empty with the class's columns.

    Raises
    ------
    TypeError
        If an item is not a sample.
    ValueError
        If ``arrays`` is not ``"cells"`` or ``"summary"``.

    Examples
    --------
    >>> import numpy as np
    >>> class Tile(BaseSample):
    ...     size: int
    ...     pixels: np.ndarray
    ...     features: dict[str, float] = {}
    >>> tile = Tile(id="a", size=2, pixels=np.arange(4), features={"mean": 1.5})
    >>> samples_frame([tile], arrays="summary").T  # doctest: +NORMALIZE_WHITESPACE
    id               a
    size             2
    pixels.shape  (4,)
    pixels.dtype  int64
    pixels.min     0.0
    pixels.max     3.0
    pixels.mean    1.5
    features.mean  1.5
    """
    from datamultiproc.core._services import table_service

    frame: pd.DataFrame = table_service().samples_frame(
        samples, arrays=arrays, sample_class=sample_class
    )
    return frame


_connect_layers()

__all__ = [
    "BaseSample",
    "Cache",
    "CacheCorruptedError",
    "Compose",
    "DatamultiprocError",
    "DatamultiprocWarning",
    "ExecutionError",
    "MissingDependencyError",
    "NotPicklableError",
    "Plan",
    "ProcessingError",
    "Processor",
    "RunResult",
    "Save",
    "SavedSamples",
    "StepRecord",
    "StorageError",
    "TableError",
    "TableProblem",
    "Trace",
    "TraceStep",
    "WorkerLostError",
    "__version__",
    "history_frame",
    "load_saved",
    "run",
    "samples_frame",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "datamultiproc"
del _name, _obj
