"""Outside photometry through the event pipeline: long-format tables (Parquet or CSV, e.g.
OGLE's and MOA's light curves of the same objects) become an event table with the catalog's
columns, written as the catalog's export would be (``t_0`` on the input's time scale, fluxes
on the flux scale of each object's primary dataset, the one with the most points).

There is no survey product to file it under, so the result is an export file (``.parquet``
or ``.ecsv``) at a local path or an ``s3://`` URI, its metadata naming the input.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from msos.errors import MsosError
from msos.events.catalog.kernel import DEFAULT_THRESHOLD, EventRow, event_row
from msos.events.catalog.step import EVENT_CLASSES, event_rows_table
from msos.events.inputs import LightCurves
from msos.events.model.select import SelectionSettings
from roman_schemas.export import export_rows
from roman_schemas.products.msos import Events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutsideEvents:
    """The events of a table, and what was left out: objects (id → reason), datasets of
    objects that kept another ((id, dataset) → reason), points (reason → count)."""

    events: Events
    rows: list[EventRow]
    skipped: dict[int, str]
    dropped_points: dict[str, int]
    dropped_datasets: dict[tuple[int, str], str]


def events_of_table(
    curves: LightCurves,
    name: str,
    threshold: float = DEFAULT_THRESHOLD,
    selection: SelectionSettings | None = None,
    sky: tuple[float, float, float] | None = None,
) -> OutsideEvents:
    """Search, classify and model every object of a table's light curves (as read by
    :func:`msos.events.inputs.read_tables`; event ids are ``<name>-<object id>``); ``sky`` is
    (ra, dec, jd_offset: what turns the table's times into Julian dates) for parallax."""
    skipped = dict(curves.rejected)
    rows = []
    selection = selection or SelectionSettings()
    for oid, data in curves.objects():
        row = event_row(oid, data, threshold, None, sky, selection, skipped)
        if row is not None and row.classification.classification in EVENT_CLASSES:
            rows.append(row)
    rows.sort(key=lambda row: row.fit.t_0)
    n = len(rows)
    ra, dec = (np.nan, np.nan) if sky is None else sky[:2]
    events = event_rows_table(rows, [f"{name}-{row.object_id}"[-32:] for row in rows],
                              "", "", np.full(n, ra), np.full(n, dec))  # fmt: skip
    return OutsideEvents(events, rows, skipped, curves.dropped, curves.rejected_datasets)


def write_events(
    result: OutsideEvents, out: str, source: str, jd_offset: float | None, settings: Any = None
) -> int:
    """Write the event table to ``out`` (a path or ``s3://bucket/…/name.parquet``; the
    format follows the suffix), atomically; returns the rows written. ``settings``: the
    S3 endpoint and retries (default: the environment's)."""
    datasets: dict[str, dict[str, str]] = {}
    for (oid, name), reason in result.dropped_datasets.items():
        datasets.setdefault(str(oid), {})[name] = reason
    metadata = {"source": source, "time": "the input's time scale",
                "jd_offset": jd_offset, "skipped": {str(k): v for k, v in result.skipped.items()},
                "flux": "the scale of each object's dataset with the most points",
                "dropped_points": result.dropped_points, "dropped_datasets": datasets}  # fmt: skip
    parsed = urlparse(out)
    if parsed.scheme in ("", "file"):
        return export_rows(result.events, parsed.path if parsed.scheme else out, metadata)
    if parsed.scheme != "s3":
        raise MsosError(out, "--out must be a path, file://… or s3://…")
    from ssc_common.storage import open_storage

    folder, _, name = parsed.path.rpartition("/")
    storage = open_storage(f"s3://{parsed.netloc}{folder}", settings)
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / name
        rows = export_rows(result.events, local, metadata)
        storage.put_file(name, local)
    return rows
