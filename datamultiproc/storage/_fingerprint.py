"""Stable fingerprints of values, functions and processor classes.

A fingerprint is a blake2b digest that is identical in every process that holds
an equal pipeline: the parent, and workers started by fork, spawn or forkserver
with the pipeline shipped by pickle or cloudpickle. It is therefore built from
contents only, never from ``id()``, memory addresses, file paths or line numbers.

Code is fingerprinted from code objects (bytecode, constants minus docstrings,
names, nested code), not from source text, so it works for classes defined in a
notebook cell, ``python -`` or ``exec``, and comments, docstrings and formatting
never change it. Module-level functions and simple constants that a method uses
by name, from the same module, are part of it too: editing a notebook helper
invalidates the processors that call it. So do classes from the same module
that a method uses by name (their methods and constants).
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
from typing import Any

import numpy as np
from pydantic import BaseModel

from datamultiproc.core import Processor

__all__ = ["Dependency", "Fingerprinter", "class_identity"]

#: A global name a fingerprint read: (namespace, name, value seen). Checked by identity.
Dependency = tuple[dict[str, Any], str, Any]

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
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_MAX_DEPTH = 40
_CO_HAS_DOCSTRING = 0x4000000  # Python 3.14+
_SKIPPED_CLASS_ATTRS = frozenset({"_abc_impl", "model_config", "model_fields"})
_LIBRARY_BASES = frozenset(Processor.__mro__)


def class_identity(cls: type) -> str:
    """Return ``module.qualname`` of a class (stable across processes)."""
    return f"{cls.__module__}.{cls.__qualname__}"


class Fingerprinter:
    """Feed values, code and processors into one digest.

    Attributes
    ----------
    dependencies
        Global names read while fingerprinting code; a memoized digest is valid
        while each name still refers to the same object.
    unstable
        Paths of values that have no stable representation; each one is keyed by
        its type only.
    """

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=32)
        self.dependencies: list[Dependency] = []
        self.unstable: list[str] = []
        self._functions_seen: set[int] = set()
        self._active: set[int] = set()  # containers and objects being added (cycle guard)

    def hexdigest(self) -> str:
        """Return the digest so far, as 64 hex characters."""
        return self._hash.hexdigest()

    def token(self, tag: str, payload: bytes | str = b"") -> None:
        """Add one tagged, length-prefixed item, so item boundaries are unambiguous."""
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        self._hash.update(f"{tag}:{len(data)}:".encode())
        self._hash.update(data)

    def processor(self, processor: Processor, path: str) -> None:
        """Add a processor: its class, its code (or ``cache_version``) and its parameters."""
        cls = type(processor)
        self.token("processor", class_identity(cls))
        self.processor_code(cls)
        for name in cls.model_fields:
            self.token("field", name)
            self.value(getattr(processor, name), f"{path}.{name}")

    def processor_code(self, cls: type[Processor]) -> None:
        """Add the code of ``cls`` and its bases, except :class:`Processor` and its own bases."""
        if cls.cache_version is not None:
            self.token("cache_version", str(cls.cache_version))
            return
        for base in cls.__mro__:
            if base not in _LIBRARY_BASES:  # mixins count, pydantic and object do not
                self._class_namespace(base)

    def value(self, value: Any, path: str, depth: int = 0) -> None:
        """Add a parameter or sample value; unstable ones are noted in :attr:`unstable`."""
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

    def function(self, function: types.FunctionType) -> None:
        """Add a function: code, defaults, closure and same-module globals it uses."""
        if id(function) in self._functions_seen:
            self.token("function-again", function.__qualname__)
            return
        self._functions_seen.add(id(function))
        self.token("function", function.__qualname__)
        self.code(function.__code__)
        self.value(function.__defaults__, f"{function.__qualname__}.__defaults__")
        self.value(function.__kwdefaults__, f"{function.__qualname__}.__kwdefaults__")
        for name, cell in zip(
            function.__code__.co_freevars, function.__closure__ or (), strict=False
        ):
            self._closure_cell(name, cell, function.__qualname__)
        self._globals_used(function)

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

    def _class_namespace(self, cls: type) -> None:
        self.token("class", class_identity(cls))
        namespace = vars(cls)
        for name in sorted(namespace):
            attr = namespace[name]
            code_bearing = _code_bearing(attr)
            if code_bearing:
                self.token("attr", name)
                for function in code_bearing:
                    self.function(function)
            elif name == "__private_attributes__":
                self._private_defaults(attr, cls)
            elif (
                not name.startswith("__")
                and name not in _SKIPPED_CLASS_ATTRS
                and _is_simple_constant(attr)
            ):
                # Class constants count; mutable class state (counters, registries) does not.
                self.token("attr", name)
                self.value(attr, f"{cls.__qualname__}.{name}")

    def _private_defaults(self, private: dict[str, Any], cls: type) -> None:
        # Defaults of underscore attributes are class code, e.g. `_hidden_arg: int = 1`.
        for name in sorted(private):
            attr = private[name]
            self.token("private", name)
            default = getattr(attr, "default", None)
            if type(default).__name__ != "PydanticUndefinedType":
                self.value(default, f"{cls.__qualname__}.{name}")
            factory = getattr(attr, "default_factory", None)
            if factory is not None:
                self.value(factory, f"{cls.__qualname__}.{name}")

    def _array(self, array: np.ndarray, path: str, depth: int) -> None:
        self.token("ndarray", f"{array.dtype.str}|{array.dtype!r}{array.shape}")
        if array.dtype.hasobject:
            self.value(array.tolist(), path, depth + 1)
            return
        contiguous = np.ascontiguousarray(array)
        # Hash the buffer in place: no copy for contiguous arrays, any dtype.
        self._hash.update(contiguous.reshape(-1).view(np.uint8).data)

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
                inner = Fingerprinter()
                inner.value(item, f"{path}[item]", depth + 1)
                self.dependencies += inner.dependencies
                self.unstable += inner.unstable
                digests.append(inner.hexdigest())
            self.token("items", ",".join(sorted(digests)))
        else:
            for index, item in enumerate(value):
                self.value(item, f"{path}[{index}]", depth + 1)

    def _object(self, value: Any, path: str, depth: int) -> None:
        cls = type(value)
        if isinstance(value, BaseModel):
            self.token("model", class_identity(cls))
            if isinstance(value, Processor):
                self.processor_code(cls)
            for name in cls.model_fields:
                self.value(getattr(value, name), f"{path}.{name}", depth + 1)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.token("dataclass", class_identity(cls))
            for field in dataclasses.fields(value):
                self.value(getattr(value, field.name), f"{path}.{field.name}", depth + 1)
        elif isinstance(value, enum.Enum):
            self.token("enum", f"{class_identity(cls)}.{value.name}")
        elif isinstance(value, (pathlib.PurePath, *_REPR_STABLE)):
            self.token(class_identity(cls), repr(value))
        elif isinstance(value, type):
            self.token("type", class_identity(value))
        else:
            self._callable_or_object(value, path, depth)

    def _callable_or_object(self, value: Any, path: str, depth: int) -> None:
        cls = type(value)
        if isinstance(value, types.FunctionType):
            self.function(value)
        elif isinstance(value, types.MethodType):
            self.value(value.__func__, path, depth + 1)
            self.value(value.__self__, f"{path}.__self__", depth + 1)
        elif isinstance(value, (types.BuiltinFunctionType, types.ModuleType)):
            name = getattr(value, "__qualname__", value.__name__)
            self.token("builtin", f"{getattr(value, '__module__', '')}.{name}")
        elif isinstance(value, functools.partial):
            self.token("partial")
            self.value((value.func, value.args, value.keywords), path, depth + 1)
        elif _own_repr(cls) and not _ADDRESS.search(text := repr(value)):
            self.token(class_identity(cls), text)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            self.token("object", class_identity(cls))
            self.value(dict(vars(value)), path, depth + 1)
        else:
            self._unstable(value, path)

    def _unstable(self, value: Any, path: str) -> None:
        self.unstable.append(f"{path} ({type(value).__qualname__})")
        self.token("unstable", class_identity(type(value)))

    def _closure_cell(self, name: str, cell: types.CellType, owner: str) -> None:
        self.token("cell", name)
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            return
        if isinstance(content, type):
            # `__class__` for super(): the class is already being fingerprinted.
            self.token("type", class_identity(content))
        else:
            self.value(content, f"{owner}.<closure {name}>")

    def _globals_used(self, function: types.FunctionType) -> None:
        namespace = function.__globals__
        for name in sorted(_global_names(function.__code__)):
            if name not in namespace:
                continue
            target = namespace[name]
            if isinstance(target, types.FunctionType) and target.__module__ == function.__module__:
                self.dependencies.append((namespace, name, target))
                self.token("global", name)
                self.function(target)
            elif isinstance(target, type) and target.__module__ == function.__module__:
                self.dependencies.append((namespace, name, target))
                self.token("global-class", name)
                self._helper_class(target)
            elif _is_simple_constant(target):
                self.dependencies.append((namespace, name, target))
                self.token("global", name)
                self.value(target, name)

    def _helper_class(self, cls: type) -> None:
        # A class from the same module (a notebook helper): its own code, bases from
        # that module included, library bases not.
        if id(cls) in self._functions_seen:
            self.token("class-again", cls.__qualname__)
            return
        self._functions_seen.add(id(cls))
        for base in cls.__mro__:
            if base.__module__ == cls.__module__ and base not in (Processor, BaseModel):
                self._class_namespace(base)


def _own_repr(cls: type) -> bool:
    return getattr(cls, "__repr__", None) is not getattr(object, "__repr__", None)


def _code_bearing(attr: Any) -> list[types.FunctionType]:
    if isinstance(attr, (staticmethod, classmethod)):
        attr = attr.__func__
    if isinstance(attr, types.FunctionType):
        return [attr]
    if isinstance(attr, property):
        return [f for f in (attr.fget, attr.fset, attr.fdel) if isinstance(f, types.FunctionType)]
    if isinstance(attr, functools.cached_property) and isinstance(attr.func, types.FunctionType):
        return [attr.func]
    return []


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


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _is_simple_constant(value: Any) -> bool:
    if isinstance(value, (*_SCALARS, bytes)):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_is_simple_constant(item) for item in value)
    return False
