"""The processor: one configured step of a pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from datamultiproc.core._records import StepRecord, StepRecorder, current_recorder
from datamultiproc.core._sample import BaseSample, values_equal
from datamultiproc.core._services import planner, runner
from datamultiproc.exceptions import ProcessingError

if TYPE_CHECKING:
    from datamultiproc.core._trace import Trace

__all__ = ["FunctionStep", "Processor", "check_is_sample", "not_a_sample"]


class Processor(BaseModel):
    """Base class of pipeline steps.

    Subclasses declare their parameters as pydantic fields and implement
    :meth:`process`. Underscore attributes are private state: not parameters,
    not compared, not part of a cache key. Calling a processor runs
    :meth:`process`, appends ``(ClassName, parameters)`` to the sample's
    ``processing_history`` and returns the sample.

    Examples
    --------
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddStep(Processor):
    ...     step_size: int = 1
    ...     def process(self, sample):
    ...         sample.data = sample.data + self.step_size
    ...         return sample
    >>> s = AddStep(step_size=2)(Sample(id="a", data=1))
    >>> s.data, s.processing_history
    (3, [('AddStep', 'step_size=2')])
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        validate_assignment=True,
        protected_namespaces=(),
    )

    #: Pins the code part of this processor's cache key: when set (e.g. ``"2"``), edits to
    #: the class's code no longer invalidate cached results until the string changes.
    cache_version: ClassVar[str | None] = None

    #: Whether this step can change the samples it gets. A step that only looks at them
    #: (``Save``) sets it to ``False`` and is then left out of the cache keys of later steps.
    changes_samples: ClassVar[bool] = True

    def process(self, sample: Any) -> Any:
        """Process one sample and return it (the same object or a new one).

        Raises
        ------
        NotImplementedError
            If a subclass does not implement it.
        """
        msg = f"{type(self).__name__} must implement process(self, sample) -> sample"
        raise NotImplementedError(msg)

    def setup(self) -> None:
        """Prepare the processor once per worker, before its first sample.

        Override to load a model or open a file; store the result in private
        (underscore) attributes. The default does nothing.
        """

    @property
    def stage_name(self) -> str:
        """Name of this step in histories, records and cache folders."""
        return type(self).__name__

    def describe_params(self) -> str:
        """Return the parameters as the text stored in ``processing_history``.

        Like ``str(self)``, but sets are shown sorted, so the text is the same in every
        process whatever the hash seed (step records from workers match the parent's).
        """
        return " ".join(
            repr(value) if name is None else f"{name}={_stable_repr(value)}"
            for name, value in self.__repr_args__()
        )

    def iter_processors(self) -> tuple[Processor, ...]:
        """Return the leaf processors this step runs, in order (itself for a plain step)."""
        return (self,)

    def substeps(self) -> tuple[Processor, ...]:
        """Return the steps this step runs inside itself, in order (none for a plain step).

        :func:`~datamultiproc.core.walk` follows them: a Compose returns its steps, a
        Cache the processor it wraps. Override it in a step that holds other steps.
        """
        return ()

    def storage_directories(self) -> tuple[str, ...]:
        """Return the directories this step itself reads or writes (none for a plain step).

        A Cache returns its ``cache_dir``, a Save its ``save_to_dir``; backends check
        that their workers can write to them.
        """
        return ()

    def update_stats(self, records: Iterable[StepRecord]) -> None:
        """Count step records shipped back by worker processes in this step's statistics.

        Workers run copies of the pipeline, so counters kept on a step (a Cache's
        ``stats``) miss the workers' work; the runner calls this on every step of the
        pipeline in the parent, with every step record of the run. The default does nothing.
        """

    def __call__(self, sample: Any) -> Any:
        if not isinstance(sample, BaseSample):  # the message only when needed: runs per sample
            check_is_sample(sample, where=f"{self.stage_name}()")
        return self._run_step(sample, ())

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        """Run this step as part of a pipeline; ``upstream`` are the steps already run."""
        recorder = current_recorder()
        stage = self.stage_name
        started = time.perf_counter()
        try:
            result = self.process(sample)
        except ProcessingError:
            raise
        except Exception as exc:
            raise self._step_error(sample, stage, exc, recorder, started) from exc
        if not isinstance(result, BaseSample):
            raise not_a_sample(sample, stage, result)
        params = self.describe_params() if recorder is None else recorder.describe(self)
        result.processing_history.append((stage, params))
        if recorder is not None:
            recorder.add(stage, params, time.perf_counter() - started)
        return result

    def _step_error(
        self,
        sample: Any,
        stage: str,
        exc: Exception,
        recorder: StepRecorder | None,
        started: float,
    ) -> ProcessingError:
        """Record a step whose ``process()`` raised ``exc``; return the error to raise from it.

        The parent's loop for a pipeline of one plain processor (``execution/_plainstep``)
        shares it with :meth:`_run_step`, so its failures are recorded as a worker's are.
        """
        if recorder is not None:
            recorder.add(
                stage, self.describe_params(), time.perf_counter() - started, status="failed"
            )
        sample_id = getattr(sample, "id", None)
        msg = f"sample {sample_id!r} failed in {stage}: {type(exc).__name__}: {exc}"
        return ProcessingError(msg, sample_id=sample_id, processor=stage)

    def _trace_step(self, sample: Any, upstream: tuple[Processor, ...]) -> tuple[Any, str]:
        """Run this leaf step for :meth:`trace` without writing anything.

        Returns the sample and the cache status: ``"-"`` here; a Cache overrides this
        to load a hit and compute a miss without storing it, a Save to write nothing.
        """
        return self._run_step(sample, upstream), "-"

    def trace(self, sample: Any) -> Trace:
        """Run one sample through this pipeline stage by stage, in this process, writing nothing.

        The sample is copied first (the input is left untouched), and :meth:`setup`
        runs first as in a sequential run; breakpoints and ``print`` in ``process``
        work as in a plain call. A :class:`~datamultiproc.Cache`
        step loads a hit and computes a miss without storing it; a
        :class:`~datamultiproc.Save` step writes nothing. A stage that raises ends
        the trace: ``trace.error`` holds the exception and the stages before it remain
        (``trace`` itself does not raise).

        Parameters
        ----------
        sample
            The sample to follow.

        Returns
        -------
        Trace
            One entry per leaf stage: a snapshot of the sample after it, seconds,
            cache status (``"hit"``, ``"miss: ..."``, ``"-"``) and the fields it changed.
            ``trace[i]`` or ``trace["Stage"]`` is a snapshot.

        Raises
        ------
        TypeError
            If ``sample`` is not a :class:`~datamultiproc.BaseSample`.

        Examples
        --------
        >>> class Sample(BaseSample):
        ...     data: int
        >>> class AddStep(Processor):
        ...     step_size: int = 1
        ...     def process(self, sample):
        ...         sample.data = sample.data + self.step_size
        ...         return sample
        >>> from datamultiproc.core._compose import Compose
        >>> trace = Compose(AddStep(), AddStep(step_size=10)).trace(Sample(id="a", data=0))
        >>> [step.sample.data for step in trace], trace.steps[0].changed
        ([1, 11], ('data',))
        """
        from datamultiproc.core._trace import trace

        check_is_sample(sample, where=f"{self.stage_name}.trace()")
        return trace(self, sample)

    def run(self, samples: Iterable[Any], **options: Any) -> Any:
        """Run this processor (or pipeline) over many samples in parallel.

        Same as :func:`datamultiproc.run` with ``self`` as the pipeline; see there
        for the options (``workers``, ``backend``, ``on_error``, ...).

        Returns
        -------
        RunResult
            Processed samples in input order, failures and step records.
        """
        return runner().run(self, samples, **options)

    def plan(self, samples: Iterable[Any]) -> Any:
        """Say what running this pipeline over ``samples`` would load and compute; run nothing.

        Same as :func:`datamultiproc.storage.plan` with ``self`` as the pipeline: per
        Cache, how many samples would hit and miss, why, and the estimated worker
        seconds of the misses. Nothing runs and nothing is written.

        Returns
        -------
        Plan
            Shows as a table in a notebook; ``plan.to_frame()`` gives a DataFrame.
        """
        return planner()(self, samples)

    def imap(self, samples: Iterable[Any], **options: Any) -> Iterator[Any]:
        """Run over many samples lazily, yielding processed samples.

        Same as :func:`datamultiproc.execution.imap` with ``self`` as the pipeline;
        ``ordered=False`` yields samples as they finish.

        Returns
        -------
        Iterator
            The processed samples; input is read only as they are consumed.
        """
        return runner().imap(self, samples, **options)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(
            values_equal(getattr(self, name), getattr(other, name))
            for name in type(self).model_fields
        )

    def __hash__(self) -> int:
        return hash((type(self).__module__, type(self).__qualname__, repr(self)))


class FunctionStep(Processor):
    """A plain function ``f(sample) -> sample`` used as a pipeline step.

    :class:`Compose` wraps callables that are not processors in this class.
    """

    function: Callable[[Any], Any]

    @property
    def stage_name(self) -> str:
        """The function's name."""
        return getattr(self.function, "__name__", type(self.function).__name__)

    def describe_params(self) -> str:
        """Functions have no parameters."""
        return ""

    def process(self, sample: Any) -> Any:
        """Call the function."""
        return self.function(sample)

    def __repr__(self) -> str:
        return f"FunctionStep({self.stage_name})"


def _stable_repr(value: Any) -> str:
    if isinstance(value, (set, frozenset)) and value:
        items = ", ".join(sorted(map(repr, value)))
        return f"{{{items}}}" if isinstance(value, set) else f"frozenset({{{items}}})"
    return repr(value)


def not_a_sample(sample: Any, stage: str, result: Any) -> ProcessingError:
    """Return the error for a ``process()`` of ``stage`` that returned ``result``, not a sample."""
    sample_id = getattr(sample, "id", None)
    hint = " (did process() forget to return the sample?)" if result is None else ""
    msg = (
        f"sample {sample_id!r}: {stage}.process() returned "
        f"{type(result).__name__}, not a sample{hint}"
    )
    return ProcessingError(msg, sample_id=sample_id, processor=stage)


def check_is_sample(item: object, *, where: str) -> None:
    """Raise ``TypeError`` unless ``item`` is a :class:`BaseSample`."""
    if not isinstance(item, BaseSample):
        msg = f"{where} expects a BaseSample, got {type(item).__name__}: {item!r:.80}"
        raise TypeError(msg)
