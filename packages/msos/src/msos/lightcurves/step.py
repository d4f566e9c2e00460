"""``msos lightcurves``: the epochs of a day become the partition's daily light curves, and
the days of a season become its L4 light-curve catalog (memory-bounded, see kernel.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from msos.errors import MsosError
from msos.lightcurves.kernel import LightCurveArrays, summarise
from msos.partition_step import PartitionStep
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    DailyLightCurves,
    EpochPhotometry,
    Epochs,
    LightCurveCatalog,
    LightCurveObjects,
    MsosDailyMeta,
    MsosPartitionMeta,
    ObjectFiducialCatalog,
)
from ssc_common.publish import open_stored_product


def _concatenate_epochs(tables: list[Epochs]) -> Epochs:
    columns = {
        name: np.concatenate([np.asarray(getattr(t, name)) for t in tables])
        for name in Epochs.column_specs()
    }
    return Epochs(**columns)


def _objects(catalog: ObjectFiducialCatalog, stats: dict[str, np.ndarray]) -> LightCurveObjects:
    table = catalog.objects
    return LightCurveObjects(
        object_id=np.asarray(table.object_id),
        ra_deg=np.asarray(table.ra_deg),
        dec_deg=np.asarray(table.dec_deg),
        ref_flux_ujy=np.asarray(table.ref_flux_ujy),
        ref_flux_err_ujy=np.asarray(table.ref_flux_err_ujy),
        n_epochs_good=stats["n_epochs_good"],
        median_delta_flux_ujy=stats["median"],
        rms_delta_flux_ujy=stats["rms"],
    )


def _span(epochs: Epochs, fields: dict[str, Any]) -> dict[str, Any]:
    """The catalog's partition meta with the exposure span of these epochs."""
    from astropy.time import Time

    times = np.asarray(epochs.time_mjd_tdb)
    exposure = np.asarray(epochs.exposure_time_s, dtype=float)
    start = Time(times.min() - exposure[times.argmin()] / 2 / 86400, format="mjd", scale="tdb")
    end = Time(times.max() + exposure[times.argmax()] / 2 / 86400, format="mjd", scale="tdb")
    return {
        **fields,
        "exposure": {
            "exptime_s": float(exposure.sum()),
            "start": start.utc.to_datetime().replace(tzinfo=None).isoformat() + "Z",
            "end": end.utc.to_datetime().replace(tzinfo=None).isoformat() + "Z",
            "start_mjd_utc": float(start.utc.mjd),
            "end_mjd_utc": float(end.utc.mjd),
        },
    }


class DailyLightCurvesStep(PartitionStep):
    """Assembles a day's epoch photometry of a partition into its daily light curves.

    Inputs: the object fiducial catalog, then the day's epoch photometry products (any order).
    """

    name = "msos.lightcurves"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        catalog_key, *epoch_keys = input_keys
        if not epoch_keys:
            raise MsosError(self.partition.name, "no epoch photometry for the day")
        day = date.fromisoformat(str(parameters["day"]))
        with open_stored_product(self.ctx, catalog_key, ObjectFiducialCatalog) as opened:
            catalog = load_arrays(opened, catalog_key)
        object_id = np.asarray(catalog.objects.object_id)
        epochs = []
        for key in epoch_keys:
            with open_stored_product(self.ctx, key, EpochPhotometry) as epoch:
                epochs.append(
                    (float(epoch.epoch.time_mjd_tdb[0]), key, load_arrays(epoch.epoch, key))
                )
        epochs.sort()
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="msos-day-") as scratch:
            arrays = LightCurveArrays.create(Path(scratch), object_id.size, len(epochs))
            for column, (_, key, _) in enumerate(epochs):
                with open_stored_product(self.ctx, key, EpochPhotometry) as epoch:
                    if not np.array_equal(np.asarray(epoch.object_id), object_id):
                        raise MsosError(key, "objects differ from the fiducial catalog's")
                    arrays.set_epoch(
                        column,
                        np.asarray(epoch.delta_flux_ujy),
                        np.asarray(epoch.delta_flux_err_ujy),
                        np.asarray(epoch.flags),
                    )
            arrays.flush()
            table = _concatenate_epochs([row for _, _, row in epochs])
            fields = catalog.meta.model_dump(exclude={"product_type", "model_type", "file_date"})
            meta = MsosDailyMeta(**DailyLightCurves.new_meta(**_span(table, fields), day=day))
            product = DailyLightCurves(
                meta=meta,
                epochs=table,
                object_id=object_id,
                delta_flux_ujy=arrays.delta_flux,
                delta_flux_err_ujy=arrays.delta_flux_err,
                flags=arrays.flags,
                objects=_objects(catalog, summarise(arrays)),
            )
            self.publish(product, self.partition.daily_key(day), parameters)


class SeasonLightCurvesStep(PartitionStep):
    """Joins a season's daily light curves of a partition into its L4 light-curve catalog.

    Inputs: the object fiducial catalog, then the daily light-curve products (any order).
    """

    name = "msos.lightcurves-season"

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        catalog_key, *day_keys = input_keys
        if not day_keys:
            raise MsosError(self.partition.name, "no daily light curves for the season")
        with open_stored_product(self.ctx, catalog_key, ObjectFiducialCatalog) as opened:
            catalog = load_arrays(opened, catalog_key)
        object_id = np.asarray(catalog.objects.object_id)
        days = []
        for key in day_keys:
            with open_stored_product(self.ctx, key, DailyLightCurves) as day:
                days.append((day.meta.day, key, load_arrays(day.epochs, key)))
        days.sort()
        n_epochs = sum(len(table) for _, _, table in days)
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="msos-season-") as scratch:
            arrays = LightCurveArrays.create(Path(scratch), object_id.size, n_epochs)
            column = 0
            for _, key, table in days:
                with open_stored_product(self.ctx, key, DailyLightCurves) as day:
                    if not np.array_equal(np.asarray(day.object_id), object_id):
                        raise MsosError(key, "objects differ from the fiducial catalog's")
                    width = len(table)
                    arrays.set_block(
                        slice(column, column + width),
                        day.delta_flux_ujy,
                        day.delta_flux_err_ujy,
                        day.flags,
                    )
                    column += width
            arrays.flush()
            table = _concatenate_epochs([t for _, _, t in days])
            fields = catalog.meta.model_dump(exclude={"product_type", "model_type", "file_date"})
            meta = MsosPartitionMeta(**LightCurveCatalog.new_meta(**_span(table, fields)))
            product = LightCurveCatalog(
                meta=meta,
                epochs=table,
                object_id=object_id,
                delta_flux_ujy=arrays.delta_flux,
                delta_flux_err_ujy=arrays.delta_flux_err,
                flags=arrays.flags,
                objects=_objects(catalog, summarise(arrays)),
            )
            self.publish(product, self.partition.season_key(), parameters)
