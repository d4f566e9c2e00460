"""The per-event DQA report: residuals binned as by hand, outliers counted, a plot that is a
real PNG, a product that validates and round-trips, and refusals an operator can act on."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image

from msos.errors import MsosError
from msos.events.dqa import (
    PNG_SIGNATURE,
    event_dqa,
    event_plot_key,
    plot_event,
    publish_event_dqa,
    residuals_by_time,
)
from msos.events.model.fit import Dataset, ModelFit, fit_model
from msos.events.model.lens import magnification
from msos.partition import Partition
from msos.partition_step import PartitionStep
from roman_schemas import read_product, write_product
from roman_schemas.io import validate_file
from roman_schemas.products.msos import DqaEventsLevel4
from ssc_common.errors import SSCError
from ssc_common.publish import open_stored_product

PARTITION = Partition("s01", "f03", "WFI01")
TRUTH = dict(t_0=61430.0, u_0=0.3, t_E=12.0)
EVENT = dict(event_id="MSOS-s01-f03-005532", object_id=5532, classification="single_lens",
             ra_deg=268.15, dec_deg=-29.12, partition=PARTITION)  # fmt: skip
OUTLIERS = [40, 150, 260]


def _simulate(seed: int = 1, n: int = 300) -> Dataset:
    """A PSPL event (source 100, blend 50) over 60 days, errors of photon-noise form."""
    rng = np.random.default_rng(seed)
    t = np.linspace(61400.0, 61460.0, n)
    flux = 100.0 * magnification("PSPL", t, TRUTH) + 50.0
    err = np.sqrt(0.5**2 + 0.01 * flux)
    return Dataset(t, flux + rng.normal(0.0, err), err, "W146")


@pytest.fixture(scope="module")
def event() -> tuple[Dataset, ModelFit]:
    """Clean data and its PSPL fit."""
    data = _simulate()
    start = {k: v * 1.05 for k, v in TRUTH.items()} | {"t_0": TRUTH["t_0"] + 0.1}
    return data, fit_model(data, "PSPL", start)


@pytest.fixture(scope="module")
def event_with_outliers() -> tuple[Dataset, ModelFit]:
    """The same data with three epochs pushed 30σ up, and the fit made with them."""
    clean = _simulate()
    flux = clean.flux.copy()
    flux[OUTLIERS] += 30 * clean.flux_err[OUTLIERS]
    data = Dataset(clean.time, flux, clean.flux_err, clean.name)
    return data, fit_model(data, "PSPL", TRUTH)


# -- residuals_by_time ---------------------------------------------------------------------


def test_residuals_fall_in_equal_time_bins_and_empty_bins_are_dropped():
    # 4 bins of 1 d over [0, 4]: {0, 0.5}, {1}, {} and {3, 4} (the last epoch closes the last)
    time = np.array([0.0, 0.5, 1.0, 3.0, 4.0])
    err = np.array([1.0, 2.0, 1.0, 1.0, 0.5])
    residual = np.array([1.0, -1.0, 2.0, 3.0, -1.0])  # in σ
    model = np.full(5, 10.0)
    binned = residuals_by_time(time, model + residual * err, err, model, n_bins=4)
    np.testing.assert_allclose(binned.time_mjd_tdb, [0.5, 1.5, 3.5])
    np.testing.assert_array_equal(binned.n_points, [2, 1, 2])
    np.testing.assert_allclose(binned.mean_residual_sigma, [0.0, 2.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(binned.rms_residual_sigma, [1.0, 2.0, np.sqrt(5.0)], rtol=1e-6)
    assert binned.n_points.dtype == np.uint32
    assert binned.mean_residual_sigma.dtype == np.float32


def test_epochs_all_at_one_time_make_one_bin_there():
    binned = residuals_by_time(np.full(3, 61430.0), np.array([1.0, 2.0, 3.0]), np.ones(3),
                               np.full(3, 2.0))  # fmt: skip
    np.testing.assert_array_equal(binned.time_mjd_tdb, [61430.0])
    np.testing.assert_array_equal(binned.n_points, [3])
    np.testing.assert_allclose(binned.rms_residual_sigma, [np.sqrt(2 / 3)], rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, f, e, m: (t, np.where(np.arange(t.size) == 2, np.nan, f), e, m), "NaN"),
        (lambda t, f, e, m: (t, f, np.where(np.arange(t.size) == 1, 0.0, e), m), "errors ≤ 0"),
        (lambda t, f, e, m: (t[:0], f[:0], e[:0], m[:0]), "no epochs"),
        (lambda t, f, e, m: (t, f[:-1], e, m), "one length"),
        (lambda t, f, e, m: (t, f, e, m[:-1]), "model_flux has shape"),
        (lambda t, f, e, m: (t, f, e, m * np.inf), "model is NaN or infinite"),
    ],
    ids=["nan-flux", "zero-error", "empty", "ragged", "short-model", "infinite-model"],
)
def test_unusable_epochs_are_refused_with_the_reason(change, message):
    t, f, e, m = np.arange(5.0), np.ones(5), np.ones(5), np.ones(5)
    with pytest.raises(ValueError, match=message):
        residuals_by_time(*change(t, f, e, m))


def test_no_bins_is_refused():
    with pytest.raises(ValueError, match="n_bins is 0"):
        residuals_by_time(np.arange(5.0), np.ones(5), np.ones(5), np.ones(5), n_bins=0)


# -- event_dqa -----------------------------------------------------------------------------


def test_a_good_fit_reports_its_chi2_no_outliers_and_residuals_near_zero(event):
    data, fit = event
    report = event_dqa(data=data, fit=fit, program=1, **EVENT)
    assert fit.converged and report.fit_converged
    assert report.chi2_dof == pytest.approx(fit.chi2 / fit.dof)
    assert 0.8 < report.chi2_dof < 1.2
    assert report.n_outliers == 0
    assert report.model_type == "PSPL"
    assert report.event_id == EVENT["event_id"]
    bins = report.residuals
    assert int(bins.n_points.sum()) == data.time.size
    assert bins.time_mjd_tdb.size == 60  # 300 epochs, one every 0.2 d: no bin is empty
    # 5 epochs a bin: the mean of N(0, 1) residuals stays within ±3/√5 σ
    assert np.all(np.abs(bins.mean_residual_sigma) < 3 / np.sqrt(5))
    assert np.mean(bins.rms_residual_sigma**2) == pytest.approx(report.chi2_dof, rel=0.05)


def test_the_meta_names_the_event_and_its_partition(event):
    data, fit = event
    meta = event_dqa(data=data, fit=fit, program=1, **EVENT).meta
    assert (meta.dqa_workflow, meta.dqa_artifact_type) == ("events", "report")
    assert (meta.season, meta.field, meta.detector) == ("s01", "f03", "wfi01")
    assert meta.optical_element == "f146"
    assert (meta.object_id, meta.roman_name) == ("5532", EVENT["event_id"])
    assert meta.classification == "single_lens"
    assert (meta.ra_deg, meta.dec_deg) == (268.15, -29.12)
    assert meta.program == 1
    assert "msos" in meta.software_versions


def test_epochs_beyond_five_sigma_of_the_model_are_counted(event_with_outliers):
    data, fit = event_with_outliers
    report = event_dqa(data=data, fit=fit, **EVENT)
    assert report.n_outliers == len(OUTLIERS)
    # the 1-d bins holding them (5 epochs, one ~30σ off) have an rms of ~√(900/5) ≈ 13σ
    bins = report.residuals
    hit = np.searchsorted(bins.time_mjd_tdb + 0.5, data.time[OUTLIERS])
    assert np.all(bins.rms_residual_sigma[hit] > 10)
    assert np.all(np.delete(bins.rms_residual_sigma, hit) < 2.5)


def test_every_dataset_is_measured_on_its_own_flux_scale(event):
    one, _ = event
    other = Dataset(one.time[::3], 3.0 * one.flux[::3] - 40.0, 3.0 * one.flux_err[::3], "b")
    fit = fit_model([one, other], "PSPL", TRUTH)
    report = event_dqa(data=[one, other], fit=fit, **EVENT)
    assert int(report.residuals.n_points.sum()) == one.time.size + other.time.size
    assert report.n_outliers == 0
    assert 0.8 < report.chi2_dof < 1.2


def test_datasets_other_than_the_fits_are_refused(event):
    data, fit = event
    with pytest.raises(ValueError, match="2 datasets given, but the PSPL fit has fluxes for 1"):
        event_dqa(data=[data, data], fit=fit, **EVENT)


@pytest.mark.parametrize(
    ("flux", "err", "message"),
    [
        (lambda d: np.where(np.arange(d.time.size) == 7, np.nan, d.flux), None, "NaN"),
        (None, lambda d: np.where(np.arange(d.time.size) == 7, 0.0, d.flux_err), "errors ≤ 0"),
    ],
    ids=["nan-flux", "zero-error"],
)
def test_a_report_on_unusable_epochs_is_refused(event, flux, err, message):
    data, fit = event
    bad = Dataset(data.time, flux(data) if flux else data.flux, err(data) if err else data.flux_err)
    with pytest.raises(ValueError, match=message):
        event_dqa(data=bad, fit=fit, **EVENT)
    with pytest.raises(ValueError, match=message):
        plot_event(EVENT["event_id"], bad, fit)


def test_a_report_on_no_data_is_refused(event):
    _, fit = event
    empty = Dataset(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="no epochs"):
        event_dqa(data=empty, fit=fit, **EVENT)


def test_the_report_validates_and_round_trips_through_asdf(event_with_outliers, tmp_path):
    data, fit = event_with_outliers
    report = event_dqa(data=data, fit=fit, program=1, **EVENT)
    path = write_product(report, tmp_path / "dqa.asdf")
    validate_file(path)
    back = read_product(path, DqaEventsLevel4)
    for name in ("event_id", "model_type", "chi2_dof", "n_outliers", "fit_converged"):
        assert getattr(back, name) == getattr(report, name), name
    assert back.meta.object_id == "5532"
    for name in ("time_mjd_tdb", "n_points", "mean_residual_sigma", "rms_residual_sigma"):
        np.testing.assert_array_equal(
            getattr(back.residuals, name), getattr(report.residuals, name), err_msg=name
        )


# -- plot_event ----------------------------------------------------------------------------


def test_the_plot_is_an_800_by_600_png_and_the_same_event_gives_the_same_bytes(event):
    data, fit = event
    png = plot_event(EVENT["event_id"], data, fit)
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (800, 600)
        assert "Software" not in image.info
        # not blank: the data, the model curve and the text leave dark pixels
        assert np.asarray(image.convert("L")).min() < 64
    assert plot_event(EVENT["event_id"], data, fit) == png


def test_the_plot_puts_every_dataset_on_the_first_ones_scale(event):
    one, _ = event
    other = Dataset(one.time[::3], 3.0 * one.flux[::3] - 40.0, 3.0 * one.flux_err[::3], "b")
    fit = fit_model([one, other], "PSPL", TRUTH)
    with Image.open(io.BytesIO(plot_event(EVENT["event_id"], [one, other], fit))) as image:
        assert image.size == (800, 600)


# -- publish_event_dqa ---------------------------------------------------------------------


class _DqaStep(PartitionStep):
    """A step that publishes one event's DQA, as EventsStep does for each of its events."""

    name = "msos.test_event_dqa"

    def __init__(self, ctx: Any, report: DqaEventsLevel4, png: bytes) -> None:
        super().__init__(ctx, PARTITION)
        self.report, self.png = report, png

    def process(self, input_keys: Sequence[str], parameters: Mapping[str, Any]) -> None:
        publish_event_dqa(self, self.report, self.png, parameters)


class _BrokenDqaStep(_DqaStep):
    """Its product registration fails (e.g. the database went away)."""

    def publish(self, product: Any, key: str, parameters: Mapping[str, Any]) -> Any:
        raise SSCError("database", "unreachable")


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_the_report_is_published_with_its_plot_beside_it_and_not_twice(ssc_context, event):
    data, fit = event
    report = event_dqa(data=data, fit=fit, program=1, **EVENT)
    png = plot_event(EVENT["event_id"], data, fit)
    result = _DqaStep(ssc_context, report, png).run([], {"threshold": 500.0})
    key = PARTITION.dqa_event_key(EVENT["event_id"])
    assert key == ("msos/s01/f03/wfi01/events/dqa/MSOS-s01-f03-005532/"
                   "wfi_microlensing_dqa_events_level_4.asdf")  # fmt: skip
    assert [ssc_context.storage.key_of(p.uri) for p in result.products] == [key]
    assert ssc_context.storage.get_bytes(event_plot_key(key)) == png
    with open_stored_product(ssc_context, key, DqaEventsLevel4) as stored:
        assert stored.n_outliers == report.n_outliers
        assert stored.meta.provenance.step == "msos.test_event_dqa"
        assert stored.meta.provenance.parameters == {"threshold": 500.0}
    assert _DqaStep(ssc_context, report, png).run([], {"threshold": 500.0}).skipped


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_a_report_that_cannot_be_published_takes_its_plot_back(ssc_context, event):
    data, fit = event
    report = event_dqa(data=data, fit=fit, **EVENT)
    png = plot_event(EVENT["event_id"], data, fit)
    with pytest.raises(SSCError, match="unreachable"):
        _BrokenDqaStep(ssc_context, report, png).run([], {})
    key = PARTITION.dqa_event_key(EVENT["event_id"])
    assert not ssc_context.storage.exists(event_plot_key(key))


@pytest.mark.parametrize("ssc_settings", ["embedded"], indirect=True)
def test_something_other_than_a_png_is_not_stored(ssc_context, event):
    data, fit = event
    report = event_dqa(data=data, fit=fit, **EVENT)
    with pytest.raises(ValueError, match="not a PNG"):
        _DqaStep(ssc_context, report, b"GIF89a").run([], {})
    assert not list(ssc_context.storage.list("msos/"))


def test_an_event_id_that_is_not_a_folder_name_has_no_key():
    with pytest.raises(MsosError, match="cannot name a storage folder"):
        PARTITION.dqa_event_key("MSOS/../x")
