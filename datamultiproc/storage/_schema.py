"""Entries written by an older version of a sample class: upgraded to the current class.

A pickled sample restores its field values as they were written. If its class has
since gained a field, the loaded instance lacks it (``sample.label`` raises
``AttributeError``); if it lost one, the instance carries a stale value. A hit is
therefore upgraded to the current class: fields the class gained take their
defaults, fields it dropped are removed. An entry that lacks a field without a
default cannot be upgraded and is recomputed.
"""

from __future__ import annotations

from typing import Any

from datamultiproc.core import BaseSample

__all__ = ["upgrade_sample"]


def upgrade_sample(sample: BaseSample) -> bool:
    """Bring a loaded sample's fields in line with its current class; False if it cannot be.

    Costs one set comparison when the fields already match (the usual case).

    Examples
    --------
    >>> class Labelled(BaseSample):
    ...     label: str = "x"
    >>> old = Labelled.model_construct(id="a")
    >>> del old.__dict__["label"]  # as if written before the field was added
    >>> upgrade_sample(old), old.label
    (True, 'x')
    """
    fields = type(sample).__pydantic_fields__
    values: dict[str, Any] = sample.__dict__
    if fields.keys() == values.keys():
        return True
    for name in [name for name in values if name not in fields]:
        del values[name]
    for name, field in fields.items():
        if name not in values:
            if field.is_required():
                return False
            values[name] = field.get_default(call_default_factory=True, validated_data=values)
    return True
