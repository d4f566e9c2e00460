"""``msos events`` on a season's light curves: the point-lens events are catalogued with
their parameters, variable stars and constant stars are not, and the trigger's state limits
the search to the objects it picked."""

from __future__ import annotations

import numpy as np
import pytest

from msos.events.catalog.step import EventsStep
from msos.events.model.pspl import magnification
from msos.partition import Partition
from roman_schemas import write_product
from roman_schemas.io import load_arrays
from roman_schemas.products.msos import LightCurveCatalog, MicrolensingEventCatalog, TriggerState
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")


@pytest.fixture
def season(ssc_context, tmp_path):
    """A stored season of 60 objects × 1,500 epochs: 8 events, 8 variables, the rest flat."""
    rng = np.random.default_rng(3)
    product = LightCurveCatalog.example(n_objects=60, n_epochs=1500)
    time = np.asarray(product.epochs.time_mjd_tdb)
    err = rng.uniform(0.5, 2.0, (60, 1)) * np.ones(time.size)
    flux = rng.normal(0, err)
    truth = {}
    for k in range(8):
        t_0, u_0, t_e = (
            rng.uniform(time[200], time[-200]),
            rng.uniform(0.05, 0.5),
            rng.uniform(1, 8),
        )
        source = rng.uniform(30, 100)
        flux[k] += source * (magnification(time, t_0, u_0, t_e) - 1)
        truth[int(product.object_id[k])] = (t_0, u_0, t_e)
    for k in range(8, 16):
        flux[k] += rng.uniform(10, 40) * err[k, 0] * np.sin(2 * np.pi * time / rng.uniform(0.3, 3))
    product.delta_flux_ujy[:] = flux
    product.delta_flux_err_ujy[:] = err
    product.flags[:] = 0
    product.flags[0, ::50] = 1  # flagged epochs stay out of the fits
    key = PARTITION.season_key()
    ssc_context.storage.put_file(key, write_product(product, tmp_path / "season.asdf"))
    return ssc_context, key, truth, product


def _catalog(ctx):
    key = PARTITION.events_key()
    with open_stored_product(ctx, key, MicrolensingEventCatalog) as opened:
        return load_arrays(opened, key).events


def test_events_are_catalogued_with_their_parameters_and_variables_are_not(season):
    ctx, key, truth, _ = season
    EventsStep(ctx, PARTITION).run([key], {}, partition=PARTITION.name)
    events = _catalog(ctx)
    assert sorted(np.asarray(events.object_id)) == sorted(truth)
    for k, oid in enumerate(np.asarray(events.object_id)):
        t_0, u_0, t_e = truth[int(oid)]
        assert abs(events.t_0_mjd_tdb[k] - t_0) < 5 * events.t_0_err_d[k] + 1e-3
        assert abs(events.t_E_d[k] - t_e) / t_e < 0.1
        assert abs(events.u_0[k] - u_0) < 0.03
    assert set(np.asarray(events.model_type)) == {"PSPL"}
    assert np.all(np.isnan(events.q)) and np.all(events.dof > 1000)
    assert np.all(np.diff(events.t_0_mjd_tdb) >= 0)


def test_with_a_trigger_state_only_its_objects_are_searched(season, tmp_path):
    ctx, key, truth, _ = season
    state = TriggerState.example(n_objects=3)
    state.object_id[:] = np.sort(list(truth))[:3]
    state.trigger_time_mjd_tdb[:] = [61466.0, np.nan, 61467.0]
    state_key = PARTITION.trigger_state_key(state.meta.day)
    ctx.storage.put_file(state_key, write_product(state, tmp_path / "state.asdf"))
    EventsStep(ctx, PARTITION).run([key, state_key], {}, partition=PARTITION.name)
    assert sorted(np.asarray(_catalog(ctx).object_id)) == [state.object_id[0], state.object_id[2]]


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_msos_events_publishes_the_catalog(season):
    from typer.testing import CliRunner

    from msos.cli import app

    ctx, _, truth, _ = season
    result = CliRunner().invoke(app, ["--storage", ctx.settings.storage_url, "--database",
                                      ctx.settings.resolved_database_url(), "events"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wfi_microlensing_event_catalog_level_4.asdf" in result.output
    assert sorted(np.asarray(_catalog(ctx).object_id)) == sorted(truth)


def test_every_event_has_its_dqa_report_and_plot(season):
    from msos.events.dqa import event_plot_key
    from roman_schemas.products.msos import DqaEventsLevel4

    ctx, key, _, _ = season
    EventsStep(ctx, PARTITION).run([key], {"models": ""}, partition=PARTITION.name)
    events = _catalog(ctx)
    for k, event in enumerate(np.asarray(events.event_id)):
        report_key = PARTITION.dqa_event_key(str(event))
        with open_stored_product(ctx, report_key, DqaEventsLevel4) as opened:
            report = load_arrays(opened, report_key)
        assert report.event_id == event and report.model_type == events.model_type[k]
        assert report.chi2_dof == pytest.approx(events.chi2[k] / events.dof[k])
        assert report.meta.object_id == str(events.object_id[k])
        assert ctx.storage.get_bytes(event_plot_key(report_key))[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_model_name_is_refused():
    from msos.events.catalog.step import selection_settings

    assert not selection_settings("").binary and selection_settings("2L1S").binary
    with pytest.raises(ValueError, match="unknown models"):
        selection_settings("FSPL,3L1S")


def test_a_planetary_event_is_catalogued_with_its_binary_lens_and_exported(ssc_context, tmp_path):
    """The whole path: a planet's anomaly on an hourly 72-day season comes out of the step as
    a planetary 2L1S row (s, q, alpha with errors), the point-lens event beside it keeps empty
    binary cells in the export."""
    from msos.events.model.lens import magnification as model_magnification
    from roman_schemas.export import export_table

    product = LightCurveCatalog.example(n_objects=3, n_epochs=1728)
    product.epochs.time_mjd_tdb[:] = 61465.0 + np.arange(1728) / 24
    time = np.asarray(product.epochs.time_mjd_tdb)
    planet = dict(t_0=61501.3, u_0=0.1, t_E=30.0, rho=0.001, s=1.2, q=1e-3, alpha=60.0)
    ref = np.asarray(product.objects.ref_flux_ujy, dtype=np.float64)
    flux = np.zeros((3, time.size))
    flux[0] = 100.0 * (model_magnification("2L1S", time, planet) - 1)
    flux[1] = 100.0 * (magnification(time, 61480.0, 0.3, 8.0) - 1)
    err = np.sqrt(0.5**2 + 0.01 * np.abs(flux + ref[:, None] + 100.0))
    rng = np.random.default_rng(2)
    product.delta_flux_ujy[:] = flux + rng.normal(0.0, err)
    product.delta_flux_err_ujy[:] = err
    product.flags[:] = 0
    key = PARTITION.season_key()
    ssc_context.storage.put_file(key, write_product(product, tmp_path / "season.asdf"))
    EventsStep(ssc_context, PARTITION).run([key], {}, partition=PARTITION.name)
    with open_stored_product(ssc_context, PARTITION.events_key(), MicrolensingEventCatalog) as c:
        catalog = load_arrays(c, PARTITION.events_key())
    events = catalog.events
    rows = {int(oid): k for k, oid in enumerate(np.asarray(events.object_id))}
    p, single = rows[int(product.object_id[0])], rows[int(product.object_id[1])]
    assert events.classification[p] == "planetary" and events.model_type[p] == "2L1S"
    assert events.q[p] == pytest.approx(1e-3, rel=0.2)
    assert events.s[p] == pytest.approx(1.2, rel=0.02)
    assert abs(events.alpha_deg[p] - 60.0) < 5 * events.alpha_err_deg[p] + 0.5
    assert events.classification[single] == "single_lens" and events.model_type[single] == "PSPL"
    from astropy.table import Table

    assert export_table(catalog, tmp_path / "events.ecsv") == len(events)
    exported = Table.read(tmp_path / "events.ecsv", format="ascii.ecsv")
    assert exported["q"].mask[single] and not exported["q"].mask[p]  # empty cell, not NaN
    assert list(exported["model"]) == list(events.model_type)
    assert exported["s_err"][p] > 0 and exported["classification"][p] == "planetary"
