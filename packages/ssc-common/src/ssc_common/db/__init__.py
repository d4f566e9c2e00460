"""The processing database: runs, tasks, products and provenance (see :class:`ProcessingDB`).

It makes every pipeline step idempotent (finished tasks are found by their input and
parameter digests) and every product traceable (products record the inputs they came from).
"""

from ssc_common.db.database import (
    ProcessingDB,
    ProductRecord,
    RunRecord,
    TaskRecord,
    head_revision,
)
from ssc_common.provenance import InputRef

__all__ = ["InputRef", "ProcessingDB", "ProductRecord", "RunRecord", "TaskRecord", "head_revision"]
