"""Samples from tables: rows of values validated into samples all at once.

Core knows no pandas. :meth:`BaseSample.from_records` works on plain mappings;
:meth:`BaseSample.from_frame` asks the registered table service (``core._services``;
the notebook layer's, registered by ``import datamultiproc``) to turn a DataFrame
into columns.
The rows are validated in one pydantic call (a ``list[cls]`` adapter), which is faster
than a ``cls(**row)`` loop and collects every row's errors, so a bad table gets one
:class:`~datamultiproc.exceptions.TableError` before any sample is returned.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from datamultiproc.exceptions import TableError, TableProblem

__all__ = [
    "FrameColumns",
    "build_samples",
    "none_fields",
    "samples_from_columns",
    "samples_from_records",
]


@dataclass(frozen=True)
class FrameColumns:
    """A table as plain Python columns.

    Attributes
    ----------
    labels
        The row labels (DataFrame index values), shown in errors.
    columns
        Column name to values, one per row; missing cells of the columns listed as
        ``none_columns`` when reading are ``None``.
    """

    labels: list[Any]
    columns: dict[str, list[Any]]


def none_fields(cls: type[Any]) -> frozenset[str]:
    """Return the names of ``cls``'s fields that accept ``None``."""
    return frozenset(
        name for name, info in cls.model_fields.items() if _accepts_none(info.annotation)
    )


def samples_from_columns(
    cls: type[Any], table: FrameColumns, id_values: list[Any], *, ignore_unknown: bool
) -> list[Any]:
    """Validate a table's rows into ``cls`` samples; ``id_values`` gives each row's id."""
    fields = cls.model_fields
    unknown = [] if ignore_unknown else [name for name in table.columns if name not in fields]
    names = [name for name in table.columns if name in fields and name != "id"]
    if names:
        columns = [table.columns[name] for name in names]
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    else:
        rows = [{} for _ in table.labels]
    return build_samples(cls, table.labels, rows, id_values, unknown)


def samples_from_records(
    cls: type[Any], records: Iterable[Mapping[str, Any]], id_key: str, *, ignore_unknown: bool
) -> list[Any]:
    """Validate mappings into ``cls`` samples; ``id_key`` names the key holding the ids."""
    fields = cls.model_fields
    nullable = none_fields(cls)
    rows: list[dict[str, Any]] = []
    ids: list[Any] = []
    unknown: dict[str, None] = {}
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            msg = f"records must be mappings; item {position} is a {type(record).__name__}"
            raise TypeError(msg)
        ids.append(record.get(id_key, _MISSING))
        row = {key: value for key, value in record.items() if key in fields and key != "id"}
        if len(row) + (id_key in record) + ("id" in record and id_key != "id") < len(record):
            unknown.update((key, None) for key in record if key not in fields and key != id_key)
        for name in nullable.intersection(row):
            if _is_nan(row[name]):
                row[name] = None
        rows.append(row)
    if id_key != "id" and any("id" in row for row in rows):
        msg = f"the records have an 'id' key and id_key={id_key!r}: drop or rename one"
        raise ValueError(msg)
    unknown_names = [] if ignore_unknown else [str(key) for key in unknown]
    return build_samples(cls, list(range(len(rows))), rows, ids, unknown_names)


def build_samples(
    cls: type[Any],
    labels: list[Any],
    rows: list[dict[str, Any]],
    id_values: list[Any],
    unknown: list[str],
) -> list[Any]:
    """Validate ``rows`` (without ids) into ``cls`` samples, or raise one :class:`TableError`."""
    ids, problems = _ids(labels, id_values)
    duplicates = _duplicates(ids)
    for row, sample_id in zip(rows, ids, strict=True):
        if sample_id is not _MISSING:
            row["id"] = sample_id
    try:
        samples: list[Any] = _adapter(cls).validate_python(rows)
    except ValidationError as exc:
        problems += _problems(exc, labels)
        samples = []
    if problems or duplicates or unknown:
        problems.sort(key=lambda problem: problem[0])
        _raise(
            cls,
            labels,
            problems=[TableProblem(*problem[1:]) for problem in problems],
            duplicates=duplicates,
            unknown=unknown,
        )
    return samples


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_adapters: dict[type[Any], TypeAdapter[list[Any]]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[list[Any]]:
    # Building an adapter costs about a millisecond; keep the last few classes' ones.
    adapter = _adapters.get(cls)
    if adapter is None:
        if len(_adapters) >= 32:
            _adapters.clear()  # classes redefined in a notebook: do not keep them all
        adapter = _adapters[cls] = TypeAdapter(list[cls])  # type: ignore[valid-type]
    return adapter


def _ids(labels: list[Any], values: list[Any]) -> tuple[list[Any], list[Any]]:
    ids: list[Any] = []
    problems: list[Any] = []
    for position, (label, value) in enumerate(zip(labels, values, strict=True)):
        if value is _MISSING or _is_nan(value) or value == "" or _is_na(value):
            problems.append((position, label, "id", "missing id: every row needs one"))
            ids.append(_MISSING)
        else:
            ids.append(value if isinstance(value, str) else str(value))
    return ids, problems


def _is_na(value: Any) -> bool:
    # pandas.NA and NaT without importing pandas: they are not equal to themselves.
    try:
        return bool(value != value)
    except TypeError:
        return True


def _duplicates(ids: list[Any]) -> list[str]:
    seen: set[Any] = set()
    repeated: dict[str, None] = {}
    for sample_id in ids:
        if sample_id is _MISSING:
            continue
        if sample_id in seen:
            repeated[sample_id] = None
        seen.add(sample_id)
    return list(repeated)


def _problems(exc: ValidationError, labels: list[Any]) -> list[Any]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        position = loc[0] if loc and isinstance(loc[0], int) else None
        if position is not None and loc[1:2] == ("id",) and error["type"] == "missing":
            continue  # reported as a missing id already
        label = labels[position] if position is not None else None
        field = ".".join(str(part) for part in loc[1:]) or None
        problems.append((position if position is not None else -1, label, field, error["msg"]))
    return problems


def _raise(
    cls: type[Any],
    labels: list[Any],
    *,
    problems: list[Any] | None = None,
    unknown: list[str] | None = None,
    duplicates: list[str] | None = None,
) -> typing.NoReturn:
    raise TableError.describe(
        cls.__qualname__,
        rows=len(labels),
        problems=problems or [],
        unknown_columns=unknown or [],
        duplicate_ids=duplicates or [],
        fields=[name for name in cls.model_fields if name != "processing_history"],
    )


def _accepts_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_none(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_accepts_none(arg) for arg in typing.get_args(annotation))
    return False
