"""pandas tables of samples: DataFrames in (:meth:`BaseSample.from_frame`) and out.

:func:`samples_frame` makes one row per sample, indexed by id, a column per field;
nested dicts and pydantic models are flattened into dotted columns
(``features.mean``), numpy arrays stay as cells or are summarised. pandas is
imported on first use.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel

from datamultiproc.core import BaseSample
from datamultiproc.core._tables import FrameColumns, none_fields

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = ["read_frame", "samples_frame"]

ArrayMode = Literal["cells", "summary"]
_SUMMARY = ("shape", "dtype", "min", "max", "mean")
_SKIPPED = frozenset({"processing_history"})


def read_frame(frame: Any, none_columns: frozenset[str]) -> FrameColumns:
    """Return a DataFrame's index labels and its columns as Python lists.

    Numbers become Python numbers, object cells (numpy arrays, dicts) pass through;
    missing cells of ``none_columns`` become ``None``.

    Raises
    ------
    TypeError
        If ``frame`` is not a DataFrame.
    ValueError
        If two columns have the same name.
    """
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    if not isinstance(frame, pd.DataFrame):
        msg = f"frame must be a pandas DataFrame, not {type(frame).__name__}"
        raise TypeError(msg)
    names = [str(name) for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        msg = f"frame has repeated column names {repeated}; each column must be one field"
        raise ValueError(msg)
    columns = {}
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        values = series.tolist()
        if name in none_columns or name == "id":
            missing = series.isna().to_numpy()
            if missing.any():
                values = [None if m else v for v, m in zip(values, missing, strict=True)]
        columns[name] = values
    return FrameColumns(frame.index.tolist(), columns)


def samples_frame(
    samples: Iterable[BaseSample],
    *,
    arrays: ArrayMode = "cells",
    sample_class: type[BaseSample] | None = None,
    extra: dict[str, tuple[list[Any], str]] | None = None,
    failures: list[tuple[str, str]] | None = None,
    order: list[int] | None = None,
) -> pd.DataFrame:
    """Return one row per sample, indexed by ``id``, with a column per field.

    See :func:`datamultiproc.samples_frame`. ``extra`` adds columns ``{name: (values,
    dtype)}`` (one value per sample). ``failures``, if given, adds one row per
    ``(id, error)`` after the samples and ``status``/``error`` columns; ``order``
    (a position per row) then sorts the rows.
    """
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    if arrays not in ("cells", "summary"):
        msg = f"arrays must be 'cells' or 'summary', not {arrays!r}"
        raise ValueError(msg)
    samples = list(samples)
    for sample in samples:
        if not isinstance(sample, BaseSample):
            msg = f"samples_frame() takes samples, got a {type(sample).__name__}: {sample!r:.80}"
            raise TypeError(msg)
    classes = list(dict.fromkeys(type(s) for s in samples)) or (
        [sample_class] if sample_class is not None else []
    )
    rows = [dict(_flatten_sample(sample, arrays)) for sample in samples]
    kinds = _declared_kinds(classes)
    pad = [None] * len(failures or ())
    ids = [s.id for s in samples] + [failure[0] for failure in failures or ()]
    index = pd.Index(ids, dtype=str, name="id")
    data: dict[str, Any] = {}
    for name in _column_names(classes, rows, arrays):
        kind, nullable = kinds.get(name, _summary_kind(name))
        values = [row.get(name) for row in rows] + pad
        data[name] = _series(values, kind, nullable or bool(pad)).set_axis(index)
    for name, (values, dtype) in (extra or {}).items():
        data[name] = pd.Series(values + pad, index=index, dtype=dtype)
    frame = pd.DataFrame(data, index=index)
    if failures is not None:
        taken = [name for name in ("status", "error") if name in frame.columns]
        if taken:
            msg = (
                f"include_failures=True adds the columns 'status' and 'error', but the samples "
                f"already have {' and '.join(repr(n) for n in taken)}; use to_frame() for the "
                "samples and failures_frame() for the failures instead"
            )
            raise ValueError(msg)
        status = ["ok"] * len(samples) + ["failed"] * len(failures)
        frame["status"] = pd.Categorical(status, categories=pd.Index(["ok", "failed"], dtype=str))
        errors = [None] * len(samples) + [failure[1] for failure in failures]
        frame["error"] = pd.Series(errors, index=index, dtype=str)
    if order is not None and len(order) == len(frame):
        frame = frame.iloc[np.argsort(np.asarray(order, dtype=np.int64), kind="stable")]
    return frame


def _flatten_sample(sample: BaseSample, arrays: ArrayMode) -> Iterator[tuple[str, Any]]:
    for name in type(sample).model_fields:
        if name not in _SKIPPED and name != "id":
            value = getattr(sample, name)
            if value is not None:  # an unset field's declared columns stay empty
                yield from _flatten(name, value, arrays)


def _summary_kind(name: str) -> tuple[str | None, bool]:
    part = name.rsplit(".", 1)[-1]
    return {"min": "float", "max": "float", "mean": "float", "dtype": "str"}.get(part), True


def _flatten(prefix: str, value: Any, arrays: ArrayMode) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}", item, arrays)
    elif isinstance(value, BaseModel):
        for key in type(value).model_fields:
            yield from _flatten(f"{prefix}.{key}", getattr(value, key), arrays)
    elif isinstance(value, np.ndarray) and arrays == "summary":
        yield from zip((f"{prefix}.{part}" for part in _SUMMARY), _summary(value), strict=True)
    else:
        yield prefix, value


def _summary(array: np.ndarray) -> tuple[Any, ...]:
    numeric = array.dtype.kind in "biuf" and array.size > 0
    if not numeric:
        return tuple(array.shape), str(array.dtype), None, None, None
    return (
        tuple(array.shape),
        str(array.dtype),
        float(np.nanmin(array)) if array.dtype.kind == "f" else float(array.min()),
        float(np.nanmax(array)) if array.dtype.kind == "f" else float(array.max()),
        float(np.nanmean(array)) if array.dtype.kind == "f" else float(array.mean()),
    )


def _column_names(
    classes: list[type[BaseSample]], rows: list[dict[str, Any]], arrays: ArrayMode
) -> list[str]:
    names: dict[str, None] = {}
    for cls in classes:
        for name, info in cls.model_fields.items():
            if name not in _SKIPPED and name != "id":
                names.update(dict.fromkeys(_declared_columns(name, info.annotation, arrays)))
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    parents = {name.rsplit(".", 1)[0] for name in seen if "." in name}
    # A declared column that no row has but whose dotted parts exist was flattened.
    names = {name: None for name in names if name in seen or name not in parents}
    names.update(seen)
    return _grouped(list(names))


def _grouped(names: list[str]) -> list[str]:
    # Keep a field's dotted columns together, in first-seen order of the field.
    order = {name.split(".", 1)[0]: None for name in names}
    position = {top: i for i, top in enumerate(order)}
    return sorted(names, key=lambda name: position[name.split(".", 1)[0]])


def _declared_columns(name: str, annotation: Any, arrays: ArrayMode) -> list[str]:
    inner = _without_none(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return [
            column
            for key, info in inner.model_fields.items()
            for column in _declared_columns(f"{name}.{key}", info.annotation, arrays)
        ]
    if isinstance(inner, type) and issubclass(inner, np.ndarray) and arrays == "summary":
        return [f"{name}.{part}" for part in _SUMMARY]
    if inner is dict or typing.get_origin(inner) is dict:
        return []  # keys are known only from the values
    return [name]


def _without_none(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if type(None) in typing.get_args(annotation) and len(args) == 1:
        return args[0]
    return annotation


_KINDS = {int: "int", float: "float", bool: "bool", str: "str"}


def _declared_kinds(classes: list[type[BaseSample]]) -> dict[str, tuple[str | None, bool]]:
    kinds: dict[str, tuple[str | None, bool]] = {}
    for cls in classes:
        for name, kind, nullable in _field_kinds(cls, "", False):
            if name in kinds:
                known_kind, known_nullable = kinds[name]
                kind = kind if known_kind == kind else None  # classes disagree: infer
                nullable = nullable or known_nullable
            kinds[name] = (kind, nullable)
    return kinds


def _field_kinds(
    model: type[BaseModel], prefix: str, nullable: bool
) -> Iterator[tuple[str, str | None, bool]]:
    optional = none_fields(model)
    for name, info in model.model_fields.items():
        inner = _without_none(info.annotation)
        field_nullable = nullable or name in optional
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _field_kinds(inner, f"{prefix}{name}.", field_nullable)
        else:
            yield f"{prefix}{name}", _KINDS.get(inner), field_nullable


def _series(values: list[Any], kind: str | None, nullable: bool) -> pd.Series[Any]:
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    present = [v for v in values if v is not None]
    nullable = nullable or len(present) < len(values)
    if kind is None:
        kind = _inferred_kind(present)
    if kind == "int" and all(type(v) is int or isinstance(v, np.integer) for v in present):
        return pd.Series(values, dtype="Int64" if nullable else "int64")
    if kind == "bool" and all(isinstance(v, (bool, np.bool_)) for v in present):
        return pd.Series(values, dtype="boolean" if nullable else bool)
    if kind == "float" and all(isinstance(v, (int, float, np.number)) for v in present):
        return pd.Series(values, dtype="float64")
    if kind == "str" and all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype=str)
    cells = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        cells[position] = value  # arrays, tuples and lists stay single cells
    return pd.Series(cells, dtype=object)


def _inferred_kind(present: list[Any]) -> str | None:
    for kind, types in (
        ("bool", (bool, np.bool_)),
        ("int", (int, np.integer)),
        ("float", (int, float, np.number)),
        ("str", (str,)),
    ):
        if present and all(isinstance(v, types) for v in present):
            return kind
    return None
