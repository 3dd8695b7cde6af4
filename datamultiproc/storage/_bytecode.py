"""What a code object reads by name: the globals it loads, and the globals it writes into.

Only names the bytecode *loads as globals* (``LOAD_GLOBAL``, ``LOAD_NAME``) count,
not every entry of ``co_names``, which also holds attribute names: a processor that
reads ``s.x`` does not depend on a notebook variable ``x``. For a global module,
the attribute chains read from it (``utils.scale``) are listed too, so a helper in
the user's own module is found by name.

A global the code *writes into* (``COUNTS[key] += 1``, ``LOG.append(x)``) is state,
not input: keying it by value would make every run miss. Writes are found by a
small simulation of the value stack within each line; anything it does not model
ends the simulation of that line, so an unclear case counts as a read (keyed by
value: at worst a needless miss, never a stale hit).
"""

from __future__ import annotations

import dis
import functools
import re
import sys
import types
from typing import NamedTuple

__all__ = ["CodeNames", "code_names", "environment_names", "uses_decimal"]

_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_ENVIRONMENT_READS = frozenset({"environ", "environb", "getenv", "getenvb"})
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECIMAL_NAMES = frozenset({"decimal", "Decimal", "getcontext", "localcontext"})
_MUTATORS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "clear",
        "discard",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popitem",
        "popleft",
        "remove",
        "setdefault",
        "update",
    }
)
# Loads of locals and constants, exactly as many items as they push; any other opcode
# (another Python version's) ends the simulation of its line.
_PUSH_ONE = frozenset(
    {
        "LOAD_FAST",
        "LOAD_FAST_CHECK",
        "LOAD_FAST_BORROW",
        "LOAD_CONST",
        "LOAD_SMALL_INT",
        "LOAD_DEREF",
    }
)
_PUSH_TWO = frozenset({"LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"})
_NULL_FIRST = sys.version_info < (3, 13)  # where LOAD_GLOBAL puts the NULL of a call


class CodeNames(NamedTuple):
    """Names a code object (and the code nested in it) uses.

    Attributes
    ----------
    globals
        Names loaded as globals, sorted.
    chains
        Attribute chains read from a global, e.g. ``("utils", "scale")``, sorted.
    written
        Targets the code writes into: a global ``"COUNTS"``, an attribute ``"self.cache"``.
    """

    globals: tuple[str, ...]
    chains: tuple[tuple[str, ...], ...]
    written: frozenset[str]


@functools.lru_cache(maxsize=4096)
def code_names(code: types.CodeType) -> CodeNames:
    """Return the global names ``code`` loads and writes into, nested code included.

    Examples
    --------
    >>> def f(s):
    ...     COUNTS[s.x] += 1
    ...     return utils.scale(s.x) + LIMIT
    >>> names = code_names(f.__code__)
    >>> names.globals, names.chains, sorted(names.written)
    (('COUNTS', 'LIMIT', 'utils'), (('utils', 'scale'),), ['COUNTS'])
    """
    loaded: set[str] = set()
    chains: set[tuple[str, ...]] = set()
    written: set[str] = set()
    for nested in _all_code(code):
        instructions = list(dis.get_instructions(nested))
        for index, instruction in enumerate(instructions):
            if instruction.opname in _LOADS:
                loaded.add(instruction.argval)
                chain = _chain(instructions, index)
                if len(chain) > 1:
                    chains.add(chain)
        written |= _writes(instructions)
    return CodeNames(tuple(sorted(loaded)), tuple(sorted(chains)), frozenset(written))


@functools.lru_cache(maxsize=4096)
def environment_names(code: types.CodeType) -> tuple[str, ...]:
    """Return the environment variables ``code`` may read by name, sorted.

    Code that reads the environment (``os.environ``, ``os.getenv``, nested code
    included) may read any variable named by one of its string constants; the names
    are those constants. Names computed at run time are not found.

    Examples
    --------
    >>> def f(s):
    ...     return os.environ.get("LABEL_SET", "v1") + s.name
    >>> environment_names(f.__code__)
    ('LABEL_SET', 'v1')
    >>> environment_names((lambda s: s.get("LABEL_SET")).__code__)
    ()
    """
    nested = _all_code(code)
    if not any(_ENVIRONMENT_READS.intersection(part.co_names) for part in nested):
        return ()
    return tuple(
        sorted(
            {
                const
                for part in nested
                for const in part.co_consts
                if isinstance(const, str) and _VARIABLE_NAME.fullmatch(const)
            }
        )
    )


@functools.lru_cache(maxsize=4096)
def uses_decimal(code: types.CodeType) -> bool:
    """Return whether ``code`` (nested code included) names ``decimal`` or its context.

    Examples
    --------
    >>> uses_decimal((lambda x: decimal.Decimal(x) / 7).__code__)
    True
    >>> uses_decimal((lambda x: x / 7).__code__)
    False
    """
    return any(_DECIMAL_NAMES.intersection(part.co_names) for part in _all_code(code))


def _all_code(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += _all_code(const)
    return found


def _chain(instructions: list[dis.Instruction], index: int) -> tuple[str, ...]:
    chain = [str(instructions[index].argval)]
    for instruction in instructions[index + 1 :]:
        if instruction.opname not in _ATTRS:
            break
        chain.append(str(instruction.argval))
    return tuple(chain)


def _writes(instructions: list[dis.Instruction]) -> set[str]:
    """Targets of subscript stores, attribute stores and mutating method calls."""
    written: set[str] = set()
    stack: list[str | None] = []
    active = True
    for instruction in instructions:
        if instruction.starts_line is not None:
            stack, active = [], True
        if active:
            active = _step(instruction, stack, written)
    return written


def _step(instruction: dis.Instruction, stack: list[str | None], written: set[str]) -> bool:
    """Apply one instruction to the symbolic stack; return False where the model stops."""
    name, arg, value = instruction.opname, instruction.arg or 0, instruction.argval
    if name in ("NOP", "RESUME", "CACHE", "EXTENDED_ARG", "PRECALL", "KW_NAMES"):
        return True
    if name in _LOADS:
        pushed: list[str | None] = [str(value)]
        if name == "LOAD_GLOBAL" and arg & 1:
            pushed = [None, str(value)] if _NULL_FIRST else [str(value), None]
        stack.extend(pushed)
    elif name in _PUSH_ONE:
        is_self = name.startswith("LOAD_FAST") and value in ("self", "cls")
        stack.append(str(value) if is_self else None)
    elif name in _PUSH_TWO:
        stack.extend((None, None))
    elif name == "COPY" and 0 < arg <= len(stack):
        stack.append(stack[-arg])
    elif name == "SWAP" and 0 < arg <= len(stack):
        stack[-1], stack[-arg] = stack[-arg], stack[-1]
    elif name in ("BINARY_SUBSCR", "BINARY_OP"):
        _pop(stack, 2)
        stack.append(None)
    elif name in _ATTRS:
        return _attribute(instruction, stack, written)
    elif name == "CALL" or name.startswith("BUILD_"):
        popped = _pop(stack, arg + 2 if name == "CALL" else arg)
        is_type_of_self = name == "CALL" and arg == 1 and "type" in popped[:2]
        stack.append(popped[2] if is_type_of_self and popped[2] in ("self", "cls") else None)
    elif name in ("STORE_SUBSCR", "DELETE_SUBSCR"):
        popped = _pop(stack, 3 if name == "STORE_SUBSCR" else 2)
        _mark(popped[-2], written)
    elif name in ("STORE_ATTR", "DELETE_ATTR"):
        popped = _pop(stack, 2 if name == "STORE_ATTR" else 1)
        if popped[-1] is not None:
            written.add(f"{popped[-1]}.{value}")
    elif name == "STORE_GLOBAL":
        written.add(str(value))
        return False
    else:
        return False
    return True


def _attribute(instruction: dis.Instruction, stack: list[str | None], written: set[str]) -> bool:
    owner = stack.pop() if stack else None
    if instruction.argval in _MUTATORS:
        _mark(owner, written)
        return False
    is_method = instruction.opname == "LOAD_METHOD" or (
        sys.version_info >= (3, 12) and (instruction.arg or 0) & 1
    )
    if is_method:
        stack.extend((None, None))  # the method and self (or NULL); CALL pops them
        return True
    stack.append(None if owner is None else f"{owner}.{instruction.argval}")
    return True


def _pop(stack: list[str | None], count: int) -> list[str | None]:
    popped: list[str | None] = [None] * count
    for position in range(count - 1, -1, -1):
        popped[position] = stack.pop() if stack else None
    return popped


def _mark(target: str | None, written: set[str]) -> None:
    if target is not None:
        written.add(target)
