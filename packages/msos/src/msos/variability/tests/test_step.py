"""``msos variability`` on a stored season: every object gets its statistics, the variables
are marked, the periodic ones catalogued with their periods, and a rerun does nothing."""

from __future__ import annotations

import numpy as np
import pytest

from msos.partition import Partition
from msos.variability.step import VariabilityStep
from msos.variability.tests.synthetic import light_curve
from roman_schemas import write_product
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import (
    LightCurveCatalog,
    ObjectPeriodicCatalog,
    VariabilityCatalog,
)
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")
PERIODS = {10: 0.37, 11: 1.9, 12: 0.08}


@pytest.fixture
def season(ssc_context, tmp_path):
    """A stored season of 30 objects × 2,000 epochs: 3 periodic, 1 eclipsing binary, 1 event,
    2 without usable epochs, the rest constant."""
    rng = np.random.default_rng(4)
    product = LightCurveCatalog.example(n_objects=30, n_epochs=2000)
    t = np.asarray(product.epochs.time_mjd_tdb)
    ref = np.asarray(product.objects.ref_flux_ujy, dtype=np.float64)
    flux = np.empty((30, t.size))
    err = np.empty((30, t.size))
    for k in range(30):
        if k in PERIODS:
            f, e = light_curve(rng, t, "sine", base=ref[k], err=0.02 * ref[k], period=PERIODS[k],
                               amplitude=0.2)  # fmt: skip
        elif k == 13:
            f, e = light_curve(rng, t, "eclipsing", base=ref[k], err=0.02 * ref[k], period=1.1,
                               amplitude=0.3, amplitude2=0.15, width=0.05)  # fmt: skip
        elif k == 14:
            f, e = light_curve(rng, t, "pspl", base=ref[k], err=0.02 * ref[k], t_0=t[1000], u_0=0.2,
                               t_e=2.0, source=ref[k])  # fmt: skip
        else:
            f, e = light_curve(rng, t, "constant", base=ref[k], err=0.02 * ref[k])
        flux[k], err[k] = f - ref[k], e
    flux[15] = np.nan  # no measurement at all
    product.delta_flux_ujy[:] = flux
    product.delta_flux_err_ujy[:] = err
    product.flags[:] = 0
    product.flags[16, 2:] = 1  # two good epochs
    product.flags[10, ::7] = 1
    key = PARTITION.season_key()
    ssc_context.storage.put_file(key, write_product(product, tmp_path / "season.asdf"))
    return ssc_context, key, product


def _load(ctx, key, cls):
    with open_stored_product(ctx, key, cls) as opened:
        return load_arrays(opened, key)


def test_variables_and_periods_are_catalogued_and_a_rerun_does_nothing(season):
    ctx, key, product = season
    first = VariabilityStep(ctx, PARTITION).run([key], {}, partition=PARTITION.name)
    variability = _load(ctx, PARTITION.variability_key(), VariabilityCatalog)
    table = variability.objects
    ids = np.asarray(product.object_id)
    assert np.array_equal(table.object_id, ids)
    assert set(ids[np.asarray(table.is_variable)]) == set(ids[[10, 11, 12, 13, 14]])
    assert table.n_epochs[15] == 0 and table.n_epochs[16] == 2 and np.isnan(table.chi2_dof[16])
    assert table.n_epochs[10] == 2000 - len(range(0, 2000, 7))
    ref = np.asarray(product.objects.ref_flux_ujy)
    assert np.allclose(table.mean_flux_ujy[17:], ref[17:], rtol=0.01)
    assert set(np.asarray(table.field)) == {"f03"} and variability.meta.season == "s01"

    periodic = _load(ctx, PARTITION.periodic_key(), ObjectPeriodicCatalog)
    objects = periodic.objects
    assert list(objects.object_id) == list(ids[[10, 11, 12, 13]])
    expected = [PERIODS[10], PERIODS[11], PERIODS[12], 1.1]
    assert np.all(np.abs(objects.period_d - expected) < 5 * objects.period_err_d)
    assert objects.variable_class[3] == "eclipsing_binary"
    assert np.all(objects.false_alarm_probability < 1e-3)
    span = product.epochs.time_mjd_tdb[-1] - product.epochs.time_mjd_tdb[0]
    assert periodic.frequency_grid_per_d[0] == pytest.approx(2 / span)
    assert periodic.meta.field == "f03" and periodic.meta.detector == "WFI01"

    again = VariabilityStep(ctx, PARTITION).run([key], {}, partition=PARTITION.name)
    assert again.skipped
    assert [r.uri for r in again.products] == [r.uri for r in first.products]


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_msos_variability_publishes_both_catalogs_and_prints_the_counts(season):
    from typer.testing import CliRunner

    from msos.cli import app

    ctx, _, _ = season
    result = CliRunner().invoke(app, [
        "--storage", ctx.settings.storage_url, "--database", ctx.settings.resolved_database_url(),
        "variability", "--season", "s01", "--field", "f03", "--detector", "WFI01",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wfi_microlensing_variability_catalog_level_4.asdf" in result.output
    assert "wfi_microlensing_object_periodic_catalog_level_4.asdf" in result.output
    assert "30 objects, 5 variable, 4 periodic" in result.output
