"""``msos process-partition`` on a simulated partition: the science the issue asks for.

Constant stars' light curves scatter as their pixel errors predict (reduced χ² ≈ 1 at every
magnitude), injected flux changes come back unbiased, pulls are N(0, 1), and bad epochs are
rejected one by one while the rest of the partition is processed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from msos.partition import Partition
from msos.partition_run import process_partition
from msos.simulate.write import read_table
from roman_schemas import read_product
from roman_schemas.products.msos import DailyLightCurves, PhotometryFlag

PARTITION = Partition("s01", "f03", "WFI01")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """32 epochs of a 256×256 crowded partition with variables and microlensing events."""
    from msos.simulate.command import write_partition
    from msos.simulate.partition import SimulationConfig

    out = tmp_path_factory.mktemp("sim")
    config = SimulationConfig(
        n_epochs=32, shape=(256, 256), n_pspl=3, n_binary=0, periodic_fraction=0.02, seed=11
    )
    write_partition(config, out, compression="none")
    return out


@pytest.fixture(scope="module")
def processed(simulated, tmp_path_factory):
    from ssc_common.context import Context
    from ssc_common.settings import Settings

    store = tmp_path_factory.mktemp("store")
    ctx = Context(Settings(storage_url=store.as_uri()))
    images = [str(p) for p in sorted(simulated.glob("*_cal.asdf"))]
    run = process_partition(ctx, PARTITION, images, reference_epochs=32)
    daily = _whole_run(store, run.days)
    yield run, daily, ctx
    ctx.close()


def _whole_run(store: Path, days: list) -> SimpleNamespace:
    """The daily products of the run (the 8 hours cross midnight) joined along time."""
    products = [read_product(store / PARTITION.daily_key(day), DailyLightCurves) for day in days]
    first = products[0]
    for product in products[1:]:
        assert np.array_equal(product.object_id, first.object_id)
    join = lambda name: np.concatenate([np.asarray(getattr(p, name)) for p in products], 1)  # noqa: E731
    names = np.concatenate([np.asarray(p.epochs.exposure_name) for p in products])
    return SimpleNamespace(
        objects=first.objects, object_id=np.asarray(first.object_id),
        delta_flux_ujy=join("delta_flux_ujy"), delta_flux_err_ujy=join("delta_flux_err_ujy"),
        flags=join("flags"), epochs=SimpleNamespace(exposure_name=names),
    )  # fmt: skip


def _matched_truth(simulated: Path, daily: SimpleNamespace) -> tuple[np.ndarray, np.ndarray]:
    """For each light-curve row, the truth star it measures (nearest within 0.3 pix, else -1)."""
    from scipy.spatial import cKDTree

    truth = read_table(simulated / "truth_stars.parquet")
    tx, ty = np.asarray(truth["x_pix"]), np.asarray(truth["y_pix"])
    ra, dec = np.asarray(daily.objects.ra_deg), np.asarray(daily.objects.dec_deg)
    tra, tdec = np.asarray(truth["ra_deg"]), np.asarray(truth["dec_deg"])
    scale = np.cos(np.radians(np.median(dec)))
    tree = cKDTree(np.column_stack([tra * scale, tdec]))
    distance, index = tree.query(np.column_stack([ra * scale, dec]))
    close = distance * 3600 / 0.11 < 0.3
    del tx, ty
    return np.where(close, index, -1), truth


@pytest.mark.slow
def test_every_epoch_is_processed_into_one_daily_product(processed):
    run, daily, _ = processed
    assert len(run.processed) == 32 and not run.rejected
    assert daily.delta_flux_ujy.shape == (len(daily.objects), 32)
    assert len(daily.objects) > 1000


@pytest.mark.slow
def test_constant_stars_scatter_as_their_errors_predict_at_every_magnitude(processed, simulated):
    _, daily, _ = processed
    match, truth = _matched_truth(simulated, daily)
    kinds = np.asarray(truth["kind"])
    constant = (match >= 0) & (kinds[np.clip(match, 0, None)] == "constant")
    flux = np.asarray(daily.delta_flux_ujy, dtype=float)
    error = np.asarray(daily.delta_flux_err_ujy, dtype=float)
    good = (np.asarray(daily.flags) == 0) & np.isfinite(flux)
    mag = np.asarray(daily.objects.ref_flux_ujy)
    mag = 23.9 - 2.5 * np.log10(np.clip(mag, 1e-3, None))
    chi2 = []
    for lo, hi in ((16, 20), (20, 22), (22, 23.5), (23.5, 25)):
        rows = constant & (mag >= lo) & (mag < hi)
        mean = np.nansum(np.where(good, flux / error**2, 0), 1) / np.nansum(
            np.where(good, 1 / error**2, 0), 1
        )
        resid = np.where(good, (flux - mean[:, None]) / error, np.nan)[rows]
        dof = np.sum(np.isfinite(resid), 1) - 1
        value = np.nansum(resid**2) / np.sum(dof)
        chi2.append((lo, hi, int(rows.sum()), value))
    report = ", ".join(f"{lo}-{hi} mag: n={n} chi2={c:.3f}" for lo, hi, n, c in chi2)
    assert all(n > 20 for _, _, n, _ in chi2), report
    # the issue: scatter within 10 % of the noise the pixel errors predict
    assert all(0.9 <= c**0.5 <= 1.1 for *_, c in chi2), report


@pytest.mark.slow
def test_flux_changes_are_recovered_without_bias_and_pulls_are_unit(processed, simulated):
    _, daily, _ = processed
    match, truth = _matched_truth(simulated, daily)
    variable = read_table(simulated / "truth_variable_fluxes.parquet")
    epochs = read_table(simulated / "truth_epochs.parquet")
    names = {str(n): k for k, n in enumerate(epochs["filename"])}
    column = np.array([names[str(n)] for n in daily.epochs.exposure_name])
    truth_id = np.asarray(truth["truth_id"])
    baseline = np.asarray(truth["flux_ujy"])
    pulls = []
    for row in np.flatnonzero(match >= 0):
        star = truth_id[match[row]]
        rows = variable[np.asarray(variable["truth_id"]) == star]
        if len(rows) == 0:
            continue
        true_delta = np.full(len(epochs), np.nan)
        true_delta[np.asarray(rows["epoch"])] = np.asarray(rows["flux_ujy"]) - baseline[match[row]]
        expected = true_delta[column]
        flux = np.asarray(daily.delta_flux_ujy[row], dtype=float)
        error = np.asarray(daily.delta_flux_err_ujy[row], dtype=float)
        good = (np.asarray(daily.flags[row]) == 0) & np.isfinite(flux) & np.isfinite(expected)
        # the reference's own flux of the star is the zero point of delta flux: remove it
        offset = np.median((flux - expected)[good]) if good.sum() > 3 else 0.0
        pulls.append(((flux - offset - expected) / error)[good])
    pulls = np.concatenate(pulls)
    assert pulls.size > 100
    assert abs(np.median(pulls)) <= 0.1
    assert 0.9 <= 1.4826 * np.median(np.abs(pulls - np.median(pulls))) <= 1.1


@pytest.mark.slow
def test_flags_mark_edges_saturation_and_bad_pixels_and_nothing_is_garbage(processed):
    _, daily, _ = processed
    flux = np.asarray(daily.delta_flux_ujy)
    flags = np.asarray(daily.flags)
    unflagged = flags == 0
    assert np.isfinite(flux[unflagged]).all()
    assert np.isnan(flux[(flags & PhotometryFlag.NO_DATA) != 0]).all()
    assert ((flags & PhotometryFlag.EDGE) != 0).any()
    error = np.asarray(daily.delta_flux_err_ujy)[unflagged]
    assert np.all(error > 0) and np.all(np.isfinite(error))


@pytest.mark.slow
def test_bad_epochs_are_rejected_and_recorded_while_the_rest_is_processed(
    processed, simulated, tmp_path
):
    _, _, ctx = processed
    import roman_datamodels.datamodels as rdd

    good = sorted(simulated.glob("*_cal.asdf"))[-1]
    garbage = tmp_path / "garbage_cal.asdf"
    garbage.write_bytes(b"\x00 not asdf " * 200)
    nan_file = tmp_path / "nan_cal.asdf"
    with rdd.open(good) as model:
        model.data[:] = np.nan
        model.save(nan_file)
    other = tmp_path / "other_cal.asdf"
    shutil.copy(good, other)
    with rdd.open(other) as model:
        model.meta.instrument.detector = "WFI07"
        model.save(tmp_path / "other2_cal.asdf")
    images = [str(garbage), str(nan_file), str(tmp_path / "other2_cal.asdf"), str(good)]
    run = process_partition(ctx, PARTITION, images)
    reasons = sorted(str(r) for r in run.rejected)
    assert len(reasons) == 3, reasons
    assert any("garbage_cal.asdf: not a readable Level-2 file" in r for r in reasons)
    assert any("nan_cal.asdf: has no valid pixel" in r for r in reasons)
    assert any("is detector WFI07, partition is WFI01" in r for r in reasons)
    assert run.skipped == [str(good)]  # already processed earlier: nothing redone
    with ctx.db.engine.connect() as connection:
        from sqlalchemy import text

        rows = connection.execute(
            text("SELECT error FROM tasks WHERE status = 'rejected' AND step = 'msos.epoch'")
        ).fetchall()
    assert len(rows) == 3 and all("\n" not in row[0] for row in rows)
