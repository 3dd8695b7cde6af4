"""Stable fingerprints of values and code objects.

A fingerprint is a blake2b digest that is identical in every process that holds
an equal pipeline: the parent, and workers started by fork, spawn or forkserver
with the pipeline shipped by pickle or cloudpickle, under any ``PYTHONHASHSEED``.
It is therefore built from contents only, never from ``id()``, memory addresses,
file paths, line numbers or set iteration order.

Code objects are fingerprinted from bytecode, constants minus docstrings and
names, so comments, docstrings and formatting never change them. Functions,
classes and objects of the user's own code met inside a value are handed to a
:class:`CodeSink` (the key walk in ``_parts``), which keys their code separately.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import hashlib
import pathlib
import re
import types
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

__all__ = ["CodeSink", "Fingerprinter", "class_identity", "register_value_hasher"]

_SCALARS = (type(None), bool, int, float, complex, str)
_REPR_STABLE = (
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    range,
    slice,
    re.Pattern,
    pathlib.PurePath,
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_MAX_DEPTH = 40
_LARGE_BUFFER = 1 << 20
_CO_HAS_DOCSTRING = 0x4000000  # Python 3.14+
#: Hashers for values of other libraries, by top-level module of their type (e.g. pandas).
_hashers: dict[str, Callable[[Any], bytes]] = {}


def class_identity(cls: type) -> str:
    """Return ``module.qualname`` of a class (stable across processes)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_value_hasher(package: str, hasher: Callable[[Any], bytes]) -> None:
    """Key values whose type comes from ``package`` by ``hasher(value)`` (bytes of their content).

    A higher layer registers the libraries it knows (``notebook`` registers pandas),
    so storage never imports them.

    Examples
    --------
    >>> register_value_hasher("fractions", lambda value: repr(value).encode())
    >>> del _hashers["fractions"]
    """
    _hashers[package] = hasher


class CodeSink(Protocol):
    """Receives the code met inside values: the key walk follows it into the user's code."""

    def code_reference(self, value: Any) -> str | None:
        """Return a token for a function, class or module, or None if it is plain data."""

    def instance_class(self, cls: type) -> None:
        """Note the class of an object met as a value (its methods are keyed)."""


class Fingerprinter:
    """Feed values and code objects into one digest.

    Attributes
    ----------
    unstable
        Paths of values that have no stable representation; each one is keyed by
        its type only.
    """

    def __init__(self, sink: CodeSink | None = None) -> None:
        self._hash = hashlib.blake2b(digest_size=32)
        self.unstable: list[str] = []
        self._sink = sink
        self._active: set[int] = set()  # containers and objects being added (cycle guard)

    def hexdigest(self) -> str:
        """Return the digest so far, as 64 hex characters."""
        return self._hash.hexdigest()

    def token(self, tag: str, payload: bytes | str = b"") -> None:
        """Add one tagged, length-prefixed item, so item boundaries are unambiguous."""
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        self._hash.update(f"{tag}:{len(data)}:".encode())
        self._hash.update(data)

    def value(self, value: Any, path: str, depth: int = 0) -> None:
        """Add a parameter or data value; unstable ones are noted in :attr:`unstable`."""
        if depth > _MAX_DEPTH:
            self._unstable(value, path)
        elif isinstance(value, _SCALARS):
            self.token(type(value).__name__, repr(value))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self.token("bytes", bytes(value))
        elif isinstance(value, np.ndarray):
            self._array(value, path, depth)
        elif isinstance(value, np.generic):
            self.token("np.generic", f"{value.dtype.str}")
            self.token("data", value.tobytes())
        elif id(value) in self._active:
            self.token("cycle", type(value).__qualname__)
        else:
            self._active.add(id(value))
            try:
                if isinstance(value, (list, tuple, dict, set, frozenset)):
                    self._container(value, path, depth)
                else:
                    self._object(value, path, depth)
            finally:
                self._active.discard(id(value))

    def code(self, code: types.CodeType) -> None:
        """Add a code object without its line numbers, file name or docstring."""
        self.token(
            "code",
            f"{code.co_argcount},{code.co_posonlyargcount},{code.co_kwonlyargcount},{code.co_flags}",
        )
        self.token("bytecode", code.co_code)
        self.token("exceptiontable", getattr(code, "co_exceptiontable", b""))
        for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
            self.token("names", "\0".join(names))
        for const in _consts_without_docstring(code):
            if isinstance(const, types.CodeType):
                self.code(const)
            else:
                self.value(const, code.co_name)

    def _array(self, array: np.ndarray, path: str, depth: int) -> None:
        self.token("ndarray", f"{array.dtype.str}|{array.dtype!r}{array.shape}")
        if isinstance(array, np.ma.MaskedArray):
            self.token("masked")
            self.value(np.ma.getmaskarray(array), f"{path}.mask", depth + 1)
            self.value(array.fill_value, f"{path}.fill_value", depth + 1)
            array = array.data
        if array.dtype.hasobject:
            self.value(array.tolist(), path, depth + 1)
            return
        contiguous = np.ascontiguousarray(array)
        # Hash the buffer in place: no copy for contiguous arrays, any dtype. Large buffers
        # go through sha256, about twice as fast as blake2b where the CPU has SHA extensions.
        buffer = contiguous.reshape(-1).view(np.uint8).data
        if contiguous.nbytes >= _LARGE_BUFFER:
            self.token("sha256", hashlib.sha256(buffer).digest())
        else:
            self._hash.update(buffer)

    def _container(self, value: Any, path: str, depth: int) -> None:
        self.token(type(value).__name__, str(len(value)))
        if isinstance(value, dict):
            for key, item in value.items():
                self.value(key, f"{path}[key]", depth + 1)
                self.value(item, f"{path}[{key!r:.30}]", depth + 1)
        elif isinstance(value, (set, frozenset)):
            # Set order depends on hash randomization; sort the items' own digests.
            digests = []
            for item in value:
                inner = Fingerprinter(self._sink)
                inner.value(item, f"{path}[item]", depth + 1)
                self.unstable += inner.unstable
                digests.append(inner.hexdigest())
            self.token("items", ",".join(sorted(digests)))
        else:
            for index, item in enumerate(value):
                self.value(item, f"{path}[{index}]", depth + 1)

    def _object(self, value: Any, path: str, depth: int) -> None:
        cls = type(value)
        hasher = _hashers.get(cls.__module__.partition(".")[0])
        if hasher is not None:
            self.token(class_identity(cls), hasher(value))
        elif isinstance(value, BaseModel):
            self._model(value, path, depth)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.token("dataclass", class_identity(cls))
            self._instance_class(cls)
            for field in dataclasses.fields(value):
                self.value(getattr(value, field.name), f"{path}.{field.name}", depth + 1)
        elif isinstance(value, enum.Enum):
            self.token("enum", f"{class_identity(cls)}.{value.name}")
            self.value(value.value, f"{path}.value", depth + 1)
        elif isinstance(value, _REPR_STABLE):
            self.token(class_identity(cls), repr(value))
        else:
            self._callable_or_object(value, path, depth)

    def _model(self, value: BaseModel, path: str, depth: int) -> None:
        cls = type(value)
        self.token("model", class_identity(cls))
        self._instance_class(cls)
        for name in cls.model_fields:
            self.token("field", name)
            self.value(getattr(value, name), f"{path}.{name}", depth + 1)
        extra = value.__pydantic_extra__
        if extra:
            self.token("extra")
            self.value(dict(sorted(extra.items())), f"{path}.<extra>", depth + 1)

    def _callable_or_object(self, value: Any, path: str, depth: int) -> None:
        cls = type(value)
        reference = None if self._sink is None else self._sink.code_reference(value)
        if reference is not None:
            self.token("code-reference", reference)
        elif isinstance(value, types.FunctionType):
            self.token("function", f"{value.__module__}.{value.__qualname__}")
            self.code(value.__code__)
        elif isinstance(value, type):
            self.token("type", class_identity(value))
        elif isinstance(value, types.MethodType):
            self.value(value.__func__, path, depth + 1)
            self.value(value.__self__, f"{path}.__self__", depth + 1)
        elif isinstance(value, (types.BuiltinFunctionType, types.ModuleType, np.ufunc)):
            name = getattr(value, "__qualname__", value.__name__)
            self.token("builtin", f"{getattr(value, '__module__', '')}.{name}")
        elif isinstance(value, functools.partial):
            self.token("partial")
            self.value((value.func, value.args, value.keywords), path, depth + 1)
        elif isinstance(value, np.vectorize):
            self.token("vectorize")
            parts = (value.pyfunc, value.otypes, sorted(value.excluded), value.signature)
            self.value(parts, path, depth + 1)
        elif callable(value) and hasattr(value, "__wrapped__"):  # lru_cache, functools.wraps
            self.token("wrapped", class_identity(cls))
            self.value(value.__wrapped__, path, depth + 1)
        else:
            self._plain_object(value, path, depth)

    def _plain_object(self, value: Any, path: str, depth: int) -> None:
        cls = type(value)
        if _own_repr(cls) and not _ADDRESS.search(text := repr(value)):
            self.token(class_identity(cls), text)
            self._instance_class(cls)
        elif hasattr(value, "__dict__"):
            self.token("object", class_identity(cls))
            self._instance_class(cls)
            self.value(dict(vars(value)), path, depth + 1)
        else:
            self._unstable(value, path)

    def _instance_class(self, cls: type) -> None:
        if self._sink is not None:
            self._sink.instance_class(cls)

    def _unstable(self, value: Any, path: str) -> None:
        self.unstable.append(f"{path} ({type(value).__qualname__})")
        self.token("unstable", class_identity(type(value)))


def _own_repr(cls: type) -> bool:
    return getattr(cls, "__repr__", None) is not getattr(object, "__repr__", None)


def _consts_without_docstring(code: types.CodeType) -> tuple[Any, ...]:
    consts = code.co_consts
    if not consts:
        return consts
    if code.co_flags & _CO_HAS_DOCSTRING:
        return consts[1:]
    is_function = bool(code.co_flags & 0x2) and not code.co_name.startswith("<")  # CO_NEWLOCALS
    # Up to 3.13 a function's first constant is its docstring, or None if it has none.
    if is_function and (consts[0] is None or isinstance(consts[0], str)):
        return consts[1:]
    return consts
