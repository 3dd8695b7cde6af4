"""Storage: Cache and Save steps and the files they write (imports core only).

Cache and save files are pickles: only load directories you trust.
"""

from datamultiproc.core import register_sample_writer
from datamultiproc.core._services import register_planner
from datamultiproc.storage._cache import Cache
from datamultiproc.storage._files import write_pickle_atomic
from datamultiproc.storage._fingerprint import register_value_hasher
from datamultiproc.storage._inspect import CacheConfigRecord, inspect_cache, prune
from datamultiproc.storage._keys import CacheConfig, begin_run, content_digest
from datamultiproc.storage._names import entry_name
from datamultiproc.storage._plan import Plan, StagePlan, plan, register_plan_frame
from datamultiproc.storage._save import Save
from datamultiproc.storage._saved import SavedFile, SavedSamples, load_saved
from datamultiproc.storage._stats import CacheStats

__all__ = [
    "Cache",
    "CacheConfig",
    "CacheConfigRecord",
    "CacheStats",
    "Plan",
    "Save",
    "SavedFile",
    "SavedSamples",
    "StagePlan",
    "begin_run",
    "content_digest",
    "entry_name",
    "inspect_cache",
    "load_saved",
    "plan",
    "prune",
    "register_plan_frame",
    "register_value_hasher",
]

register_planner(plan)
register_sample_writer(write_pickle_atomic)
