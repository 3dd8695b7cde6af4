"""A notebook's classes as a script: defined in ``__main__``, with no file behind them."""

from __future__ import annotations

import textwrap

_SCRIPT = """
import json
from distributed import Client, LocalCluster
from datamultiproc import BaseSample, Compose, Processor

class CellSample(BaseSample):
    data: int

OFFSET = 10

class CellStep(Processor):
    factor: int = 2

    def process(self, sample):
        sample.data = sample.data * self.factor + OFFSET
        return sample

options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
with LocalCluster(host="127.0.0.1", **options) as cluster, Client(cluster) as client:
    samples = [CellSample(id=f"c{{i}}", data=i) for i in range({count})]
    result = Compose(CellStep(), CellStep(factor=3)).run(
        samples, backend="dask", progress=False
    )
    print(json.dumps({report}))
"""


def notebook_script(count: int, report: str) -> str:
    """Run ``Compose(CellStep(), CellStep(factor=3))`` on ``count`` cell samples on a local
    cluster, then print ``report`` (a dict expression over ``result``) as JSON."""
    return textwrap.dedent(_SCRIPT).format(count=count, report=report)
