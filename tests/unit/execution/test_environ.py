"""What counts as a change of the calling process's environment (see ``_environ``)."""

from __future__ import annotations

import decimal

from datamultiproc.execution._environ import CalculationSettings
from datamultiproc.execution._moduledata import dump_pipeline
from tests.helpers import AddStep


def test_decimal_conditions_met_are_not_a_change_of_settings() -> None:
    # A pipeline's key covers the settings: conditions met since (flags) must not change it.
    before = dump_pipeline(AddStep())[0]
    decimal.Decimal(1) / decimal.Decimal(3)  # raises the Inexact and Rounded flags
    assert decimal.getcontext().flags[decimal.Inexact]
    assert dump_pipeline(AddStep())[0] == before
    precision = decimal.getcontext().prec
    try:
        decimal.getcontext().prec = 40
        assert dump_pipeline(AddStep())[0] != before  # a setting did change
    finally:
        decimal.getcontext().prec = precision


def test_settings_are_the_calling_threads() -> None:
    context = decimal.getcontext()
    precision = context.prec
    try:
        context.prec = 40
        assert CalculationSettings.current().decimal_context.prec == 40
    finally:
        context.prec = precision
