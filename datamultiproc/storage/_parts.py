"""The parts of a cache key: every input of a configuration, labelled in the user's words.

:class:`KeyParts` walks a pipeline's processors into labelled parts, each with its
own digest and a short display value, e.g. ``"parameter h" -> "0.4"``,
``"code of Denoise.process" -> "3f2a..."``, ``"helper utils.scale"``, ``"global CONFIG"``,
``"scikit-image" -> "0.24.0"``. The configuration digest is the digest of all parts,
so comparing two configurations' parts says exactly what changed.

The walk follows code by name. From a processor's methods it follows the names the
bytecode loads as globals (see ``_bytecode``) into the user's own functions and
classes, transitively, wherever they live (notebook cells, files beside the
notebook); data those names hold is keyed by value; code and modules of an
installed distribution are keyed by its name and version; the standard library and
datamultiproc by name. A global the code writes into (a counter, a log) is state
and is keyed by type only.
"""

from __future__ import annotations

import decimal
import hashlib
import os
import types
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel

from datamultiproc.core import BaseSample, Processor, walk
from datamultiproc.storage._bytecode import (
    CodeNames,
    code_names,
    environment_names,
    uses_decimal,
)
from datamultiproc.storage._fingerprint import Fingerprinter, class_identity
from datamultiproc.storage._origins import Origin, module_origin

__all__ = ["DataRead", "Dependency", "FunctionCheck", "KeyParts", "data_reads", "display_value"]

#: A name the key read: (namespace, name, value seen). The key holds while each is unchanged.
Dependency = tuple[Mapping[str, Any], str, Any]
#: A function whose code the key read, with its code, defaults and keyword defaults.
FunctionCheck = tuple[types.FunctionType, types.CodeType, Any, Any]


MISSING: Any = object()
_DISPLAY_CHARS = 60
_SHORT_DIGEST = 12
_MAIN_MODULES = frozenset({"__main__", "__mp_main__"})
_LIBRARY_BASES = frozenset({*Processor.__mro__, BaseModel})
_SKIPPED_CLASS_ATTRS = frozenset(
    {"_abc_impl", "model_config", "model_fields", "model_computed_fields"}
)


class KeyParts:
    """Walk processors into labelled key parts.

    Attributes
    ----------
    parts
        Label -> short display value, in walk order, covering everything in the key.
    dependencies
        Names read (globals, module attributes); the key holds while each names the same object.
    functions
        Functions whose code was read; the key holds while their code objects are the same.
    unstable
        Paths of values that have no stable representation (keyed by type only).
    data_reads
        The data globals the code reads (not code, not state it writes): the namespace
        (a module's or a notebook's globals), the name, and the value seen.
    class_data
        The data attributes of the user's classes the walk keyed (not methods, not
        state the code writes): the class, the name, and the value seen.
    """

    #: Follow the code of a class with ``cache_version`` too (for :attr:`data_reads`).
    follow_pinned = False

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}
        self.dependencies: list[Dependency] = []
        self.data_reads: list[Dependency] = []
        self.class_data: list[tuple[type, str, Any]] = []
        self.functions: list[FunctionCheck] = []
        self.unstable: list[str] = []
        self._digests: dict[str, str] = {}
        self._prefix = ""
        self._follow = True
        self._seen: set[int] = set()
        self._alive: list[Any] = []  # keeps walked objects alive, so their ids stay unique
        self._queue: deque[tuple[Any, str]] = deque()

    def hexdigest(self) -> str:
        """Return the digest of all parts (64 hex characters)."""
        digest = hashlib.blake2b(digest_size=32)
        for label, part in self._digests.items():
            digest.update(f"{len(label)}:{label}:{part}\n".encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def add(self, label: str, digest: str, display: str | None = None) -> None:
        """Add a part; a label met again with another digest gets a number."""
        label = self._prefix + label
        base, count = label, 1
        while label in self._digests and self._digests[label] != digest:
            count += 1
            label = f"{base} #{count}"
        if label not in self._digests:
            self._digests[label] = digest
            self.parts[label] = digest[:_SHORT_DIGEST] if display is None else display

    def processor(self, processor: Processor, prefix: str) -> None:
        """Add one processor: its class, its code (or ``cache_version``) and its parameters."""
        self._prefix = prefix
        cls = type(processor)
        self.add("processor", _digest(class_identity(cls)), class_identity(cls))
        self._follow = cls.cache_version is None or self.follow_pinned
        if self._follow:
            self._enqueue(cls, f"class {cls.__qualname__}")
            self._sample_schema(cls)
        else:
            self.add("cache_version", _digest(str(cls.cache_version)), str(cls.cache_version))
        for name in cls.model_fields:
            value = getattr(processor, name)
            self.add(
                f"parameter {name}",
                self._value_digest(value, f"{cls.__qualname__}.{name}"),
                display_value(value),
            )
        self._drain()
        self._follow, self._prefix = True, ""

    def _sample_schema(self, cls: type[Processor]) -> None:
        # The sample classes process() declares (``def process(self, sample: Item) -> Item``).
        samples = _declared_sample_classes(cls.process)
        if samples:
            fingerprinter = Fingerprinter(self)
            for sample_cls in samples:
                fingerprinter.token("sample", class_identity(sample_cls))
                _schema(fingerprinter, sample_cls)
            self.add("sample schema", fingerprinter.hexdigest())

    # -- CodeSink: code met inside values -------------------------------------------------

    def code_reference(self, value: Any) -> str | None:
        """Return a token for a function, class or module (following the user's own)."""
        if isinstance(value, types.ModuleType):
            self._library(module_origin(value.__name__))
            return f"module {value.__name__}"
        if isinstance(value, (types.FunctionType, type)):
            origin = module_origin(getattr(value, "__module__", None))
            if origin.kind == "user":
                self._enqueue(value, _node_label(value))
            self._library(origin)
            return f"{value.__module__}.{value.__qualname__}"
        if isinstance(value, (types.BuiltinFunctionType, np.ufunc)):
            self._library(module_origin(getattr(value, "__module__", None) or "builtins"))
        return None

    def instance_class(self, cls: type) -> None:
        """Key the methods of the class of an object met as a value (a parameter's own class)."""
        origin = module_origin(cls.__module__)
        if origin.kind == "user":
            self._enqueue(cls, _node_label(cls))
        self._library(origin)

    # -- the walk ---------------------------------------------------------------------------

    def _enqueue(self, node: Any, label: str) -> None:
        if self._follow and id(node) not in self._seen:
            self._seen.add(id(node))
            self._alive.append(node)
            self._queue.append((node, label))

    def _drain(self) -> None:
        while self._queue:
            node, label = self._queue.popleft()
            if isinstance(node, type):
                self._class(node, label)
            else:
                self._function(node, label)

    def _value_digest(self, value: Any, path: str) -> str:
        fingerprinter = Fingerprinter(self)
        fingerprinter.value(value, path)
        self.unstable += fingerprinter.unstable
        return fingerprinter.hexdigest()

    def _library(self, origin: Origin) -> None:
        if origin.kind == "distribution":
            saved, self._prefix = self._prefix, ""  # one part per distribution, for every step
            self.add(origin.distribution, _digest(origin.version), origin.version)
            self._prefix = saved

    def _function(self, function: types.FunctionType, label: str) -> None:
        self.functions.append(
            (function, function.__code__, function.__defaults__, function.__kwdefaults__)
        )
        fingerprinter = Fingerprinter(self)
        fingerprinter.code(function.__code__)
        fingerprinter.value(function.__defaults__, f"{function.__qualname__}.__defaults__")
        fingerprinter.value(function.__kwdefaults__, f"{function.__qualname__}.__kwdefaults__")
        cells = zip(function.__code__.co_freevars, function.__closure__ or (), strict=False)
        for name, cell in cells:
            fingerprinter.token("cell", name)
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            fingerprinter.value(content, f"{function.__qualname__}.<closure {name}>")
        names = code_names(function.__code__)
        for name in names.globals:
            self._global(fingerprinter, function.__globals__, name, names, function)
        self.unstable += fingerprinter.unstable
        self.add(label, fingerprinter.hexdigest())
        for variable in environment_names(function.__code__):
            self._environment_variable(variable)
        if uses_decimal(function.__code__):
            self._decimal_context()

    def _decimal_context(self) -> None:
        # The calling thread's decimal context (a worker's is the caller's: see
        # execution._environ); the conditions met so far (flags) are no setting.
        context = decimal.getcontext()
        shown = f"prec={context.prec} rounding={context.rounding}"
        settings = (
            context.prec,
            context.rounding,
            context.Emin,
            context.Emax,
            context.capitals,
            context.clamp,
            sorted(signal.__name__ for signal, on in context.traps.items() if on),
        )
        self.add("decimal context", _digest(repr(settings)), shown)

    def _environment_variable(self, name: str) -> None:
        # Shown as set or unset with a digest, never the value: it may be a secret, and
        # the parts are written to the manifest.
        value = os.environ.get(name)
        digest = _digest("unset" if value is None else f"set:{value}")
        shown = "unset" if value is None else f"set ({digest[:_SHORT_DIGEST]})"
        self.add(f"environment variable {name}", digest, shown)

    def _global(
        self,
        fingerprinter: Fingerprinter,
        namespace: dict[str, Any],
        name: str,
        names: CodeNames,
        function: types.FunctionType,
    ) -> None:
        target = namespace.get(name, MISSING)
        self.dependencies.append((namespace, name, target))
        fingerprinter.token("global", name)
        if target is MISSING:
            return  # a builtin, or not defined yet
        if isinstance(target, types.ModuleType) and module_origin(target.__name__).kind == "user":
            fingerprinter.token("module", target.__name__)
            for chain in names.chains:
                if chain[0] == name:
                    self._chain(fingerprinter, target, chain, function)
            return
        self._target(fingerprinter, target, name, name in names.written, function, namespace)

    def _chain(
        self,
        fingerprinter: Fingerprinter,
        module: types.ModuleType,
        chain: tuple[str, ...],
        function: types.FunctionType,
    ) -> None:
        target: Any = module
        for index, attr in enumerate(chain[1:], start=2):
            namespace = vars(target)
            target = namespace.get(attr, MISSING)
            self.dependencies.append((namespace, attr, target))
            dotted = ".".join(chain[:index])
            fingerprinter.token("attribute", dotted)
            if target is MISSING:
                return
            if not (
                isinstance(target, types.ModuleType)
                and module_origin(target.__name__).kind == "user"
            ):
                self._target(fingerprinter, target, dotted, False, function, namespace, attr)
                return

    def _target(
        self,
        fingerprinter: Fingerprinter,
        target: Any,
        name: str,
        written: bool,
        function: types.FunctionType,
        namespace: Mapping[str, Any],
        attr: str | None = None,
    ) -> None:
        reference = self.code_reference(target)
        if reference is not None:
            fingerprinter.token("reference", reference)
        elif target is os.environ or target is getattr(os, "environb", None):
            # ``from os import environ``: the variables read are keyed one by one (see
            # _environment_variable); the whole environment differs between sessions.
            fingerprinter.token("environment", name)
        elif isinstance(target, (types.BuiltinFunctionType, np.ufunc)):
            fingerprinter.value(target, name)
        elif written:
            fingerprinter.token("state", class_identity(type(target)))
        else:
            where = "" if function.__module__ in _MAIN_MODULES else f"{function.__module__}."
            path = f"global {where}{name}"
            self.data_reads.append((namespace, name if attr is None else attr, target))
            self.add(path, self._value_digest(target, path), None)
            fingerprinter.token("data", name)

    def _class(self, cls: type, label: str) -> None:
        fingerprinter = Fingerprinter(self)
        fingerprinter.token("class", class_identity(cls))
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            _schema(fingerprinter, cls)
        for base in cls.__mro__:
            if base in _LIBRARY_BASES or base is object:
                continue
            origin = module_origin(base.__module__)
            if origin.kind != "user":
                fingerprinter.token("base", class_identity(base))
                self._library(origin)
                continue
            self._namespace(fingerprinter, base)
        self.unstable += fingerprinter.unstable
        self.add(label, fingerprinter.hexdigest())

    def _namespace(self, fingerprinter: Fingerprinter, cls: type) -> None:
        namespace = vars(cls)
        written = _written_attributes(cls)
        keyed = tuple(
            name
            for name in namespace
            if name not in written
            and (_code_bearing(namespace[name]) or not name.startswith("__"))
            and name not in _SKIPPED_CLASS_ATTRS
        )
        # The class namespace (a live mapping proxy) as dependencies: a method or constant
        # assigned later (`P.process = f`) is seen on the next sample.
        self.dependencies += [(namespace, name, namespace[name]) for name in keyed]
        fingerprinter.token("namespace", class_identity(cls))
        for name in sorted(namespace):
            attr = namespace[name]
            functions = _code_bearing(attr)
            if functions:
                fingerprinter.token("method", name)
                for function in functions:
                    if module_origin(function.__module__).kind == "user":
                        self._enqueue(function, f"code of {cls.__qualname__}.{name}")
                    else:
                        fingerprinter.token(
                            "function", f"{function.__module__}.{function.__qualname__}"
                        )
            elif name == "__private_attributes__":
                _private_defaults(fingerprinter, attr, cls)
            elif name.startswith("__") or name in _SKIPPED_CLASS_ATTRS:
                continue
            elif name in written:
                fingerprinter.token("state", name)  # class state the code writes: a counter
            else:
                self.class_data.append((cls, name, attr))
                fingerprinter.token("attr", name)
                fingerprinter.value(attr, f"{cls.__qualname__}.{name}")


class DataRead(NamedTuple):
    """A value the code reads: a module global (``owner`` empty) or a class attribute."""

    module: str | None  # the module's name (``None`` if the namespace has none)
    owner: str  # the qualified name of the class in ``module``, or ""
    name: str
    value: Any


def data_reads(pipeline: Processor) -> list[DataRead]:
    """Return the data the code of ``pipeline``'s steps reads, as a Cache keys it.

    The walk of a cache key (code followed into the user's own functions, classes and
    modules), without hashing anything, and into classes with ``cache_version`` too:
    the module globals it reads and the data attributes of the user's classes it
    meets, each once.
    """
    reads = _DataReads()
    for position in walk(pipeline):
        reads.processor(position.step, "")
    found = [
        DataRead(namespace.get("__name__"), "", name, value)
        for namespace, name, value in reads.data_reads
    ]
    found += [
        DataRead(cls.__module__, cls.__qualname__, name, value)
        for cls, name, value in reads.class_data
    ]
    seen: set[tuple[str | None, str, str]] = set()
    unique = []
    for read in found:
        if read[:3] not in seen:
            seen.add(read[:3])
            unique.append(read)
    return unique


class _DataReads(KeyParts):
    follow_pinned = True

    def _value_digest(self, value: Any, path: str) -> str:
        return ""  # only the names are wanted, not the data's digest


def display_value(value: Any) -> str | None:
    """Return a short text for a part: the value's repr when short and stable, else None.

    Examples
    --------
    >>> display_value(0.4), display_value({"b", "a"}), display_value(list(range(100)))
    ('0.4', "{'a', 'b'}", None)
    """
    if isinstance(value, (set, frozenset)):
        text = "{" + ", ".join(sorted(map(repr, value))) + "}"
    elif isinstance(value, (np.ndarray, BaseModel)) or hasattr(value, "__array__"):
        return None  # shown by a short digest
    else:
        text = repr(value)
    if len(text) > _DISPLAY_CHARS or "0x" in text:
        return None
    return text


def _declared_sample_classes(function: Any) -> list[type[BaseSample]]:
    annotations = getattr(function, "__annotations__", None) or {}
    namespace = getattr(function, "__globals__", {})
    found: list[type[BaseSample]] = []
    for name in sorted(annotations):
        annotation = annotations[name]
        if isinstance(annotation, str):  # `from __future__ import annotations`: a plain name only
            annotation = namespace.get(annotation)
        is_sample = isinstance(annotation, type) and issubclass(annotation, BaseSample)
        if is_sample and annotation is not BaseSample and annotation not in found:
            found.append(annotation)
    return found


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).hexdigest()


def _node_label(node: Any) -> str:
    where = "" if node.__module__ in _MAIN_MODULES else f"{node.__module__}."
    kind = "class" if isinstance(node, type) else "helper"
    return f"{kind} {where}{node.__qualname__}"


def _schema(fingerprinter: Fingerprinter, cls: type[BaseModel]) -> None:
    # Field names, types and defaults of a model class (a sample or config class).
    for name, field in cls.model_fields.items():
        fingerprinter.token("field", f"{name}:{_annotation_text(field.annotation)}")
        if not field.is_required():
            fingerprinter.value(field.default, f"{cls.__qualname__}.{name}")


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return class_identity(annotation)
    return repr(annotation)


def _written_attributes(cls: type) -> set[str]:
    written: set[str] = set()
    for attr in vars(cls).values():
        for function in _code_bearing(attr):
            for target in code_names(function.__code__).written:
                owner, _, name = target.partition(".")
                if owner in ("self", "cls", cls.__name__) and name:
                    written.add(name.partition(".")[0])
    return written


def _private_defaults(fingerprinter: Fingerprinter, private: dict[str, Any], cls: type) -> None:
    # Defaults of underscore attributes are class code, e.g. `_hidden_arg: int = 1`.
    for name in sorted(private):
        attr = private[name]
        fingerprinter.token("private", name)
        default = getattr(attr, "default", None)
        if type(default).__name__ != "PydanticUndefinedType":
            fingerprinter.value(default, f"{cls.__qualname__}.{name}")
        factory = getattr(attr, "default_factory", None)
        if factory is not None:
            fingerprinter.value(factory, f"{cls.__qualname__}.{name}")


def _code_bearing(attr: Any) -> list[types.FunctionType]:
    if isinstance(attr, (staticmethod, classmethod)):
        attr = attr.__func__
    if isinstance(attr, types.FunctionType):
        return [attr]
    if isinstance(attr, property):
        return [f for f in (attr.fget, attr.fset, attr.fdel) if isinstance(f, types.FunctionType)]
    func = getattr(attr, "func", None)  # functools.cached_property
    if type(attr).__name__ == "cached_property" and isinstance(func, types.FunctionType):
        return [func]
    return []
