"""Epoch photometry → daily light curves → season catalog: every value lands in its cell."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from msos.errors import MsosError
from msos.lightcurves.kernel import LightCurveArrays, summarise
from msos.lightcurves.step import DailyLightCurvesStep, SeasonLightCurvesStep
from msos.partition import Partition
from roman_schemas import write_product
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    DailyLightCurves,
    EpochPhotometry,
    LightCurveCatalog,
    ObjectFiducialCatalog,
    PhotometryFlag,
)
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")
N_OBJECTS = 40


def _store(ctx, product, key, tmp_path):
    path = write_product(product, tmp_path / key.replace("/", "_"))
    ctx.storage.put_file(key, path)
    return key


def _epoch(rng, index: int, time: float, object_id: np.ndarray) -> EpochPhotometry:
    product = EpochPhotometry.example(n_objects=object_id.size)
    product.epoch.time_mjd_tdb[0] = time
    product.epoch.exposure_name[0] = f"r0000101001001001{index:04d}_wfi01_cal.asdf"
    product.object_id[:] = object_id
    product.delta_flux_ujy[:] = rng.normal(0, 1, object_id.size)
    product.delta_flux_err_ujy[:] = 1.0
    product.flags[:] = 0
    product.flags[index % object_id.size] = PhotometryFlag.EDGE
    return product


@pytest.fixture
def day_inputs(ssc_context, tmp_path):
    rng = np.random.default_rng(0)
    catalog = ObjectFiducialCatalog.example(n_objects=N_OBJECTS)
    catalog_key = _store(ssc_context, catalog, PARTITION.catalog_key(), tmp_path)
    object_id = np.asarray(catalog.objects.object_id)
    times = 61465.0 + np.arange(6) * 15 / 1440
    order = [3, 0, 5, 1, 4, 2]  # stored out of time order on purpose
    epochs = {}
    for index in order:
        product = _epoch(rng, index, times[index], object_id)
        key = PARTITION.photometry_key(str(product.epoch.exposure_name[0]))
        epochs[index] = product
        _store(ssc_context, product, key, tmp_path)
    keys = [PARTITION.photometry_key(str(epochs[i].epoch.exposure_name[0])) for i in order]
    return catalog, catalog_key, keys, epochs


def test_a_day_of_epochs_becomes_the_daily_light_curves_in_time_order(ssc_context, day_inputs):
    catalog, catalog_key, keys, epochs = day_inputs
    result = DailyLightCurvesStep(ssc_context, PARTITION).run(
        [catalog_key, *keys], {"day": "2027-03-01"}, partition=PARTITION.name
    )
    assert not result.skipped
    key = PARTITION.daily_key(date(2027, 3, 1))
    with open_stored_product(ssc_context, key, DailyLightCurves) as opened:
        daily = load_arrays(opened, key)
    assert daily.meta.day == date(2027, 3, 1) and daily.meta.detector == "WFI01"
    assert np.all(np.diff(daily.epochs.time_mjd_tdb) > 0)
    for column in range(6):
        np.testing.assert_array_equal(
            daily.delta_flux_ujy[:, column], epochs[column].delta_flux_ujy
        )
        np.testing.assert_array_equal(daily.flags[:, column], epochs[column].flags)
    np.testing.assert_array_equal(daily.objects.ref_flux_ujy, catalog.objects.ref_flux_ujy)
    assert list(daily.objects.n_epochs_good) == [5 if i < 6 else 6 for i in range(N_OBJECTS)]
    assert len(ssc_context.db.inputs_of(result.products[0].uri)) == 7


def test_days_become_the_season_catalog(ssc_context, day_inputs):
    _, catalog_key, _, epochs = day_inputs
    for day, indices in (("2027-03-02", (3, 4, 5)), ("2027-03-01", (0, 1, 2))):
        keys = [PARTITION.photometry_key(str(epochs[i].epoch.exposure_name[0])) for i in indices]
        DailyLightCurvesStep(ssc_context, PARTITION).run([catalog_key, *keys], {"day": day})
    day_keys = [PARTITION.daily_key(date(2027, 3, d)) for d in (2, 1)]
    SeasonLightCurvesStep(ssc_context, PARTITION).run([catalog_key, *day_keys], {})
    with open_stored_product(ssc_context, PARTITION.season_key(), LightCurveCatalog) as season:
        assert season.delta_flux_ujy.shape == (N_OBJECTS, 6)
        assert season.meta.exposure.exptime_s == pytest.approx(6 * 46.8, rel=1e-3)
        times = np.asarray(season.epochs.time_mjd_tdb)
    assert len(times) == 6


def test_epochs_of_other_objects_are_refused(ssc_context, day_inputs, tmp_path):
    _, catalog_key, _, _ = day_inputs
    stranger = _epoch(np.random.default_rng(1), 9, 61466.0, np.arange(N_OBJECTS) + 10_000)
    key = _store(ssc_context, stranger, PARTITION.photometry_key("stranger.asdf"), tmp_path)
    with pytest.raises(MsosError, match="objects differ"):
        DailyLightCurvesStep(ssc_context, PARTITION).run([catalog_key, key], {"day": "2027-03-01"})
    assert not ssc_context.storage.exists(PARTITION.daily_key(date(2027, 3, 1)))


def test_unfilled_epochs_are_nan_and_flagged_no_data(tmp_path):
    arrays = LightCurveArrays.create(tmp_path, 5, 3)
    arrays.set_epoch(1, np.arange(5, dtype="float32"), np.ones(5, "float32"), np.zeros(5, "uint16"))
    assert np.isnan(arrays.delta_flux[:, 0]).all()
    assert (arrays.flags[:, 2] == PhotometryFlag.NO_DATA).all()
    stats = summarise(arrays)
    assert list(stats["n_epochs_good"]) == [1] * 5
    np.testing.assert_array_equal(stats["median"], np.arange(5))
