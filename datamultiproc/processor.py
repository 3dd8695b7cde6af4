"""Deprecated: the datamultiproc 0.1.3 module path of Processor, ProcessingError.

Use ``from datamultiproc import Processor, ProcessingError``; this module warns with a
``DeprecationWarning`` and will be removed.
"""

from datamultiproc._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "Processor": "datamultiproc",
        "ProcessingError": "datamultiproc",
    },
)
