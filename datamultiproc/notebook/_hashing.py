"""Cache keys for pandas values, by content (registered with storage by ``datamultiproc._wiring``).

Storage never imports pandas. A DataFrame or Series parameter (or global the code
reads) is keyed by pandas' own row hashing plus its index, columns and dtypes, so
a change anywhere in it (not only in the part its repr shows) is a new key.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["pandas_content"]


def pandas_content(value: Any) -> bytes:
    """Return bytes identifying a pandas object's content (pandas is already imported).

    Examples
    --------
    >>> pd = importlib.import_module("pandas")
    >>> frame = pd.DataFrame({"a": [1, 2]})
    >>> pandas_content(frame) == pandas_content(frame.copy())
    True
    """
    pandas = importlib.import_module("pandas")  # only called for pandas values
    if isinstance(value, (pandas.DataFrame, pandas.Series, pandas.Index)):
        rows: bytes = pandas.util.hash_pandas_object(value, index=True).to_numpy().tobytes()
        columns = getattr(value, "columns", None)
        dtypes = getattr(value, "dtypes", getattr(value, "dtype", None))
        meta = repr(
            (
                type(value).__name__,
                getattr(value, "name", None),
                list(columns) if columns is not None else None,
            )
        )
        return meta.encode() + repr(dtypes).encode() + rows
    return repr(value).encode()
