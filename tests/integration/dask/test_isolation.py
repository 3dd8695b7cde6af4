"""On Dask too, samples that share an object each get their own in a worker."""

from __future__ import annotations

from typing import Any

import pytest

from datamultiproc import run
from tests.helpers import ChangeInPlace, sharing_samples

pytestmark = pytest.mark.slow


def test_samples_sharing_objects_see_none_of_each_others_changes(dask_client: Any) -> None:
    expected = run(ChangeInPlace(), sharing_samples(300), backend="sequential", progress=False)
    result = run(ChangeInPlace(), sharing_samples(300), backend=dask_client, progress=False)
    assert {r.worker for r in result.records} != {"parent"}  # the samples ran on the cluster
    assert [s.seen for s in result] == [s.seen for s in expected]
    assert len({s.seen for s in result}) == 1
