"""Storage: Cache and Save steps and the files they write (imports core only)."""

from datamultiproc.storage._cache import Cache
from datamultiproc.storage._save import Save

__all__ = ["Cache", "Save"]
