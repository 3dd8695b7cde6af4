"""Deprecated: the datamultiproc 0.1.3 module path of Save, Cache.

Use ``from datamultiproc import Save, Cache``; this module warns with a
``DeprecationWarning`` and will be removed.
"""

from datamultiproc._moved import moved_names

__getattr__ = moved_names(
    __name__,
    {
        "Save": "datamultiproc",
        "Cache": "datamultiproc",
    },
)
