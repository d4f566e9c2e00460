"""``msos efficiency`` on a stored season: the detection-efficiency catalog is published, valid,
its counts add up and follow from what was injected, a rerun is skipped, and the command
prints the counts."""

from __future__ import annotations

import numpy as np
import pytest

from msos.events.efficiency.step import MEDIUM, EfficiencyStep
from msos.partition import Partition
from roman_schemas import write_product
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import DetectionEfficiencyCatalog, LightCurveCatalog
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")
PARAMETERS = {"n_injections": 16, "blank_fraction": 0.25, "seed": 4}


@pytest.fixture
def season(ssc_context, tmp_path):
    """A stored season of 12 constant stars × 1,500 epochs (reference flux 100 µJy, errors
    1 µJy), a few flagged epochs."""
    rng = np.random.default_rng(6)
    product = LightCurveCatalog.example(n_objects=12, n_epochs=1500)
    product.objects.ref_flux_ujy[:] = 100.0
    product.delta_flux_err_ujy[:] = 1.0
    product.delta_flux_ujy[:] = rng.normal(0.0, 1.0, product.delta_flux_ujy.shape)
    product.flags[:] = 0
    product.flags[:, ::97] = 1
    key = PARTITION.season_key()
    ssc_context.storage.put_file(key, write_product(product, tmp_path / "season.asdf"))
    return ssc_context, key, product


def _catalog(ctx) -> DetectionEfficiencyCatalog:
    key = PARTITION.efficiency_key(MEDIUM)
    with open_stored_product(ctx, key, DetectionEfficiencyCatalog) as opened:
        return load_arrays(opened, key)


def test_the_efficiency_catalog_is_published_valid_and_a_rerun_is_skipped(season):
    ctx, key, product = season
    first = EfficiencyStep(ctx, PARTITION).run([key], PARAMETERS, partition=PARTITION.name)
    assert not first.skipped and len(first.products) == 1
    catalog = _catalog(ctx)
    table = catalog.injections
    assert catalog.meta.inject_medium == "lightcurve" and catalog.meta.season == "s01"
    counts = catalog.counts()
    assert sum(counts.values()) == 16
    assert counts["TP"] + counts["FN"] == 12 and counts["FP"] + counts["TN"] == 4
    assert counts["FP"] == 0 and counts["TP"] > 0  # constant hosts: no false alarm
    assert set(np.asarray(table.object_id)) <= set(np.asarray(product.object_id))
    detected = np.asarray(table.detected)
    assert np.all(np.char.startswith(np.asarray(table.recovered_event_id)[detected], "MSOS-s01"))
    assert np.all(np.isfinite(table.recovered_t_0_mjd_tdb[detected]))
    assert set(np.asarray(table.model_type)) == {"PSPL", ""}
    again = EfficiencyStep(ctx, PARTITION).run([key], PARAMETERS, partition=PARTITION.name)
    assert again.skipped and again.products[0].uri == first.products[0].uri


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_msos_efficiency_publishes_the_catalog_and_prints_the_counts(season):
    from typer.testing import CliRunner

    from msos.cli import app

    ctx, _, _ = season
    result = CliRunner().invoke(app, [
        "--storage", ctx.settings.storage_url, "--database", ctx.settings.resolved_database_url(),
        "efficiency", "--n-injections", "10", "--blank-fraction", "0.2", "--seed", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wfi_microlensing_detection_efficiency_catalog_level_4.asdf" in result.output
    counts = _catalog(ctx).counts()
    assert f"TP {counts['TP']} FP 0 TN 2 FN {counts['FN']}" in result.output
    assert f"{counts['TP']}/8 events recovered" in result.output
