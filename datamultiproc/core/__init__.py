"""Core objects: samples, processors, composition and step records (pydantic + stdlib only)."""

from datamultiproc.core._compose import Compose
from datamultiproc.core._processor import FunctionStep, Processor, check_is_sample
from datamultiproc.core._records import (
    FailureRecord,
    SampleRecord,
    StepRecord,
    StepRecorder,
    current_recorder,
    recording,
)
from datamultiproc.core._sample import (
    BaseSample,
    register_sample_writer,
    sample_from_old_file,
    values_equal,
)
from datamultiproc.core._trace import Trace, TraceStep, leaf_steps
from datamultiproc.core._walk import StepPosition, walk

__all__ = [
    "BaseSample",
    "Compose",
    "FailureRecord",
    "FunctionStep",
    "Processor",
    "SampleRecord",
    "StepPosition",
    "StepRecord",
    "StepRecorder",
    "Trace",
    "TraceStep",
    "check_is_sample",
    "current_recorder",
    "leaf_steps",
    "recording",
    "register_sample_writer",
    "sample_from_old_file",
    "values_equal",
    "walk",
]
