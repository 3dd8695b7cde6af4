"""pandas views of a run's plain records: history, cache stats, timings, failures.

Each function converts records into a DataFrame with fixed columns and dtypes:
stage names are categoricals in pipeline order, seconds are float64, and an empty
run gives an empty frame with the same columns. pandas is imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from datamultiproc.core import BaseSample
from datamultiproc.notebook._tallies import tally_by_stage
from datamultiproc.storage._plan import format_reasons

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

    from datamultiproc.execution import RunResult
    from datamultiproc.storage import Plan

__all__ = [
    "history_frame",
    "plan_frame",
    "result_cache_stats_frame",
    "result_failures_frame",
    "result_history_frame",
    "result_timings_frame",
]


def result_history_frame(result: RunResult[Any]) -> pd.DataFrame:
    """Return one row per sample and step of a run.

    Columns: ``sample_index`` (position in the input), ``sample_id``, ``step``
    (from 0), ``stage`` (categorical), ``params``, ``seconds`` (float),
    ``cache_hit`` (nullable boolean: ``<NA>`` when the step was not cached),
    ``reason`` (why a cache miss missed, e.g. ``"parameter h: 0.4 → 0.5"`` or
    ``"new sample"``; missing for other steps), ``worker`` (categorical) and ``status`` (``"ok"``/``"failed"``, categorical).
    A sample whose worker died before any step ended has no rows; see
    :func:`result_failures_frame`.

    Parameters
    ----------
    result
        What :func:`datamultiproc.run` returned.

    Returns
    -------
    pandas.DataFrame
        The history, in input order, then step order.

    Examples
    --------
    >>> from datamultiproc.core import SampleRecord, StepRecord
    >>> from datamultiproc.execution import RunResult
    >>> steps = (StepRecord(0, "Load", "", 0.25, cache_hit=True), StepRecord(1, "Scale", "k=2", 0.5))
    >>> result = RunResult(records=[SampleRecord(0, "a", "process-1", "ok", steps)])
    >>> result_history_frame(result)[["sample_id", "step", "stage", "seconds", "cache_hit"]]
      sample_id  step  stage  seconds  cache_hit
    0         a     0   Load     0.25       True
    1         a     1  Scale     0.50       <NA>
    """
    records = result.records
    rows = [(record, step) for record in records for step in record.steps]
    columns: dict[str, tuple[list[Any], str]] = {
        "sample_index": ([record.index for record, _ in rows], "int64"),
        "sample_id": ([record.sample_id for record, _ in rows], "str"),
        "step": ([step.step for _, step in rows], "int64"),
        "stage": ([step.stage for _, step in rows], "stage"),
        "params": ([step.params for _, step in rows], "str"),
        "seconds": ([step.seconds for _, step in rows], "float64"),
        "cache_hit": ([step.cache_hit for _, step in rows], "boolean"),
        "reason": ([step.reason for _, step in rows], "str"),
        "worker": ([record.worker for record, _ in rows], "category"),
        "status": ([step.status for _, step in rows], "status"),
    }
    return _frame(columns)


def history_frame(samples: Iterable[BaseSample]) -> pd.DataFrame:
    """Return one row per sample and ``processing_history`` entry.

    Built from the samples alone, so it works for samples loaded from a Save
    folder or processed outside :func:`datamultiproc.run`. Columns:
    ``sample_id``, ``step`` (from 0), ``stage`` (categorical) and ``params``;
    timings, cache hits and workers are only known to a run's
    :meth:`~datamultiproc.RunResult.history`.

    Parameters
    ----------
    samples
        Any samples.

    Returns
    -------
    pandas.DataFrame
        The history, in the samples' order, then step order.

    Raises
    ------
    TypeError
        If an item is not a :class:`~datamultiproc.BaseSample`.

    Examples
    --------
    >>> from datamultiproc import BaseSample
    >>> sample = BaseSample(id="a", processing_history=[("Load", ""), ("Scale", "k=2")])
    >>> history_frame([sample])  # doctest: +NORMALIZE_WHITESPACE
      sample_id  step  stage params
    0         a     0   Load
    1         a     1  Scale    k=2
    """
    entries: list[tuple[str, int, str, str]] = []
    for sample in samples:
        if not isinstance(sample, BaseSample):
            msg = f"history_frame() takes samples, got a {type(sample).__name__}: {sample!r:.80}"
            raise TypeError(msg)
        entries.extend(
            (sample.id, step, stage, params)
            for step, (stage, params) in enumerate(sample.processing_history)
        )
    columns: dict[str, tuple[list[Any], str]] = {
        "sample_id": ([entry[0] for entry in entries], "str"),
        "step": ([entry[1] for entry in entries], "int64"),
        "stage": ([entry[2] for entry in entries], "stage"),
        "params": ([entry[3] for entry in entries], "str"),
    }
    return _frame(columns)


def result_cache_stats_frame(result: RunResult[Any]) -> pd.DataFrame:
    """Return one row per cached stage: hits, misses, hit rate, bytes and seconds saved.

    Indexed by ``stage``. Columns: ``hits``, ``misses``, ``hit_rate`` (0 to 1),
    ``recomputed`` (corrupt entries found and recomputed), ``bytes_read``,
    ``bytes_written``, ``seconds_saved`` and ``reasons``. ``seconds_saved`` is
    worker time (summed over samples, not wall time): the compute seconds stored
    with each entry that hit, less the time spent loading it (entries written
    before timings were stored count the misses' mean; NaN if there were none).
    ``reasons`` says why the misses missed, most frequent first, with counts,
    e.g. ``"parameter h: 0.4 → 0.5 (90); new sample (10)"``. Stages never cached
    are left out.

    Parameters
    ----------
    result
        What :func:`datamultiproc.run` returned.

    Returns
    -------
    pandas.DataFrame
        One row per cached stage, in pipeline order.

    Examples
    --------
    >>> from datamultiproc.core import SampleRecord, StepRecord
    >>> from datamultiproc.execution import RunResult
    >>> def record(i, hit, seconds):
    ...     return SampleRecord(i, f"s{i}", "w", "ok", (StepRecord(0, "Load", "", seconds, hit),))
    >>> result = RunResult(records=[record(0, False, 2.0), record(1, True, 0.5)])
    >>> result_cache_stats_frame(result)[["hits", "misses", "hit_rate", "seconds_saved"]]  # doctest: +NORMALIZE_WHITESPACE
           hits  misses  hit_rate  seconds_saved
    stage
    Load      1       1       0.5            1.5
    """
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    tallies = {stage: t for stage, t in tally_by_stage(result.records).items() if t.cached}
    frame = pd.DataFrame(
        {
            "hits": pd.Series([t.hits for t in tallies.values()], dtype="int64"),
            "misses": pd.Series([t.misses for t in tallies.values()], dtype="int64"),
            "hit_rate": pd.Series([t.hit_rate for t in tallies.values()], dtype="float64"),
            "recomputed": pd.Series([t.recomputed for t in tallies.values()], dtype="int64"),
            "bytes_read": pd.Series([t.bytes_read for t in tallies.values()], dtype="int64"),
            "bytes_written": pd.Series([t.bytes_written for t in tallies.values()], dtype="int64"),
            "seconds_saved": pd.Series(
                [t.seconds_saved for t in tallies.values()], dtype="float64"
            ),
            "reasons": pd.Series([t.reasons_text() for t in tallies.values()], dtype=str),
        }
    )
    frame.index = _stage_index(list(tallies))
    return frame


def result_timings_frame(result: RunResult[Any]) -> pd.DataFrame:
    """Return one row per stage: count, total, mean, median and p95 seconds, and share.

    Indexed by ``stage``. Every step counts, cache hits (their loading time) and
    failed steps included. ``share`` is the stage's part of the time spent in all
    steps (0 to 1); with several workers that total exceeds the wall time.

    Parameters
    ----------
    result
        What :func:`datamultiproc.run` returned.

    Returns
    -------
    pandas.DataFrame
        One row per stage, in pipeline order.

    Examples
    --------
    >>> from datamultiproc.core import SampleRecord, StepRecord
    >>> from datamultiproc.execution import RunResult
    >>> steps = (StepRecord(0, "Load", "", 1.0), StepRecord(1, "Scale", "", 3.0))
    >>> result = RunResult(records=[SampleRecord(0, "a", "w", "ok", steps)])
    >>> result_timings_frame(result)[["count", "total_seconds", "share"]]  # doctest: +NORMALIZE_WHITESPACE
           count  total_seconds  share
    stage
    Load       1            1.0   0.25
    Scale      1            3.0   0.75
    """
    history = result_history_frame(result)
    grouped = history.groupby("stage", observed=True, sort=True)["seconds"]
    frame = grouped.agg(["count", "sum", "mean", "median"]).rename(
        columns={
            "sum": "total_seconds",
            "mean": "mean_seconds",
            "median": "median_seconds",
        }
    )
    frame["p95_seconds"] = grouped.quantile(0.95)
    grand_total = frame["total_seconds"].sum()
    frame["share"] = frame["total_seconds"] / grand_total if grand_total > 0 else 0.0
    frame = frame.astype({"count": "int64"}).astype(
        {name: "float64" for name in frame.columns if name != "count"}
    )
    frame.index = _stage_index([str(stage) for stage in frame.index])
    return frame


def result_failures_frame(result: RunResult[Any]) -> pd.DataFrame:
    """Return one row per failed sample, with the stage, error and worker's traceback.

    Columns: ``sample_index``, ``sample_id``, ``stage`` (categorical; missing
    when no stage was running, e.g. bad input), ``error_type`` (categorical, e.g.
    ``"ValueError"`` or ``"WorkerLostError"``), ``message``, ``traceback`` and
    ``worker`` (categorical).

    Parameters
    ----------
    result
        What :func:`datamultiproc.run` returned.

    Returns
    -------
    pandas.DataFrame
        One row per failure, in input order.

    Examples
    --------
    >>> from datamultiproc.core import FailureRecord
    >>> from datamultiproc.execution import RunResult
    >>> failure = FailureRecord(3, "s3", "Scale", "ValueError", "bad value", "Traceback...", "w")
    >>> result_failures_frame(RunResult(failures=[failure]))[["sample_id", "stage", "error_type"]]
      sample_id  stage  error_type
    0        s3  Scale  ValueError
    """
    failures = result.failures
    columns: dict[str, tuple[list[Any], str]] = {
        "sample_index": ([f.index for f in failures], "int64"),
        "sample_id": ([f.sample_id for f in failures], "str"),
        "stage": ([f.stage for f in failures], "stage"),
        "error_type": ([f.error_type for f in failures], "category"),
        "message": ([f.message for f in failures], "str"),
        "traceback": ([f.traceback for f in failures], "str"),
        "worker": ([f.worker for f in failures], "category"),
    }
    return _frame(columns)


def _frame(columns: dict[str, tuple[list[Any], str]]) -> pd.DataFrame:
    """Build a frame from ``{name: (values, kind)}``.

    Kinds: ``"stage"`` (categorical in first-seen, i.e. pipeline, order),
    ``"status"`` (categorical ``ok``/``failed``), ``"category"`` (sorted
    categorical), ``"str"`` (pandas 3's string dtype, object on pandas 2, as
    inference gives) or any other dtype name.
    """
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    data: dict[str, Any] = {}
    for name, (values, kind) in columns.items():
        if kind == "stage":
            data[name] = _categorical(values, dict.fromkeys(values))
        elif kind == "status":
            data[name] = _categorical(values, ["ok", "failed"])
        elif kind == "category":
            data[name] = _categorical(values, sorted(set(values)))
        else:
            data[name] = pd.Series(values, dtype=str if kind == "str" else kind)
    return pd.DataFrame(data)


def _categorical(values: list[Any], categories: Iterable[Any]) -> pd.Categorical:
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    # An explicit str-dtype Index keeps the categories' dtype the same when the frame is empty.
    index = pd.Index([c for c in categories if c is not None], dtype=str)
    return pd.Categorical(values, categories=index)


def _stage_index(stages: list[str]) -> pd.CategoricalIndex:
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas lazily)

    return pd.CategoricalIndex(stages, categories=pd.Index(stages, dtype=str), name="stage")


def plan_frame(plan: Plan) -> pd.DataFrame:
    """Return one row per cached stage of a :class:`~datamultiproc.storage.Plan`.

    Columns: ``stage`` (categorical, pipeline order), ``configuration``, ``hits``,
    ``misses``, ``unknown`` (lookups that cannot be known before running),
    ``reasons`` (why the misses miss, most frequent first, with counts) and
    ``estimated_seconds`` (worker seconds of the misses; NaN without stored timings).

    Examples
    --------
    >>> from datamultiproc.storage import Plan, StagePlan
    >>> stage = StagePlan("Denoise", "Denoise/0a1b", "/tmp/c", 8, 2, 0, {"new sample": 2}, 1.5)
    >>> plan_frame(Plan(10, (stage,)))[["stage", "hits", "misses", "reasons"]]
         stage  hits  misses         reasons
    0  Denoise     8       2  new sample (2)
    """
    stages = plan.stages
    columns: dict[str, tuple[list[Any], str]] = {
        "stage": ([s.stage for s in stages], "stage"),
        "configuration": ([s.configuration for s in stages], "str"),
        "hits": ([s.hits for s in stages], "int64"),
        "misses": ([s.misses for s in stages], "int64"),
        "unknown": ([s.unknown for s in stages], "int64"),
        "reasons": ([format_reasons(s.reasons) for s in stages], "str"),
        "estimated_seconds": ([s.estimated_seconds for s in stages], "float64"),
    }
    return _frame(columns)
