"""Deprecated: the datamultiproc 0.1.3 module path of Compose.

Use ``from datamultiproc import Compose``; this module warns with a
``DeprecationWarning`` and will be removed.
"""

from datamultiproc._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "Compose": "datamultiproc",
    },
)
