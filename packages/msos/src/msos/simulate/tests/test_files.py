"""The written partition: valid romancal L2 files whose pixels, errors, flags and WCS agree
with the truth written beside them."""

from __future__ import annotations

import numpy as np
import pytest
import roman_datamodels.datamodels as rdm
from astropy.time import Time
from roman_datamodels.dqflags import pixel

from msos.psf.model import EPSFGrid, render_stars
from msos.simulate import instrument as wfi
from msos.simulate.scene import WING_TOLERANCE_DN_S
from msos.simulate.variability import pspl_magnification
from msos.simulate.write import read_truth_psf


def _truth_epsf(simulated, epoch):
    """The truth ePSF of ``epoch`` from ``truth_psf.asdf``, as the pipeline's model."""
    return EPSFGrid.from_gridded_psf(read_truth_psf(simulated.out / "truth_psf.asdf", epoch),
                                     normalize=True)  # fmt: skip


def _truth_fluxes(simulated, epoch):
    """Every star's flux at ``epoch``, from the truth tables alone."""
    flux = np.array(simulated.stars["flux_dn_s"], np.float64)
    rows = np.asarray(simulated.variable_fluxes["epoch"]) == epoch
    ids = np.asarray(simulated.variable_fluxes["truth_id"])[rows]
    flux[ids] = np.asarray(simulated.variable_fluxes["flux_dn_s"])[rows]
    return flux


def _open(simulated, epoch):
    with rdm.open(simulated.image(epoch)) as model:
        return {
            "data": np.array(model.data),
            "err": np.array(model.err, np.float64),
            "dq": np.array(model.dq),
            "wcs": model.meta.wcs,
            "meta": model.meta.to_flat_dict() if hasattr(model.meta, "to_flat_dict") else None,
        }


def test_the_files_are_valid_romancal_level_2_images(simulated):
    epochs = simulated.epochs
    assert len(epochs) == simulated.config.n_epochs
    for e, name in enumerate(epochs["filename"]):
        assert name == f"r00001010010010030{e + 1:02d}_0001_wfi01_f146_cal.asdf"
        with rdm.open(simulated.out / name) as model:
            model.validate()
            assert isinstance(model, rdm.ImageModel)
            assert model.meta.filename == name
            assert model.data.dtype == np.float32 and model.data.shape == (192, 192)
            assert model.err.dtype == np.float16 and model.dq.dtype == np.uint32
            assert model.meta.instrument.detector == "WFI01"
            assert model.meta.instrument.optical_element == "F146"
            exposure = model.meta.exposure
            assert exposure.start_time.scale == "utc"
            assert exposure.start_time == Time(epochs["start_utc"][e], scale="utc")
            assert (exposure.end_time - exposure.start_time).sec == pytest.approx(45.6)
            assert exposure.exposure_time == pytest.approx(45.6)
            assert exposure.effective_exposure_time == pytest.approx(42.56)
            mid = exposure.start_time + (exposure.end_time - exposure.start_time) / 2
            assert mid.mjd == pytest.approx(epochs["time_mjd_utc"][e], abs=1e-9)
            assert mid.tdb.mjd == pytest.approx(epochs["time_mjd_tdb"][e], abs=1e-9)
            assert model.meta.file_date == exposure.end_time  # fixed: reproducible files
            photometry = model.meta.photometry
            assert photometry.pixel_area == pytest.approx((0.11 / 206264.806) ** 2)
            # 1 DN/s of a point source is 0.063 µJy (F146 AB zero point 26.90 for 1 DN/s)
            ujy = photometry.conversion_megajanskys * photometry.pixel_area * 1e12
            assert ujy == pytest.approx(wfi.UJY_PER_DN_S) and 0.05 < ujy < 0.08
            assert model.meta.observation.observation_id.startswith(name[1:20])
            assert model.meta.wcsinfo.s_region.startswith("POLYGON ICRS")


def test_dq_marks_the_defects_and_only_flagged_pixels_are_nan(simulated):
    fixed = int(pixel.HOT | pixel.DEAD | pixel.NO_LIN_CORR)
    first = _open(simulated, 0)["dq"]
    jumps = []
    for e in range(simulated.config.n_epochs):
        image = _open(simulated, e)
        dq, data = image["dq"], image["data"]
        np.testing.assert_array_equal(dq & fixed, first & fixed)  # fixed on the detector
        nan = np.isnan(data)
        assert nan.any()
        np.testing.assert_array_equal(nan, (dq & pixel.NO_LIN_CORR) > 0)
        assert np.all(dq[nan] & pixel.DO_NOT_USE)
        assert np.all(np.isfinite(image["err"][~nan]))
        saturated = (dq & pixel.SATURATED) > 0
        assert saturated.sum() == simulated.epochs["n_saturated_pixels"][e] > 0
        assert np.all(dq[saturated] & pixel.DO_NOT_USE)
        np.testing.assert_array_equal(data[saturated], np.float32(wfi.SATURATION_RATE_DN_S))
        assert ((dq & pixel.JUMP_DET) > 0).sum() == simulated.epochs["n_cosmic_ray_pixels"][e]
        jumps.append((dq & pixel.JUMP_DET) > 0)
        column = simulated.partition.defects.dead_column
        assert np.all(dq[:, column] & pixel.DEAD)
        allowed = int(pixel.DO_NOT_USE | pixel.SATURATED | pixel.JUMP_DET | pixel.DEAD
                      | pixel.HOT | pixel.NO_LIN_CORR)  # fmt: skip
        assert int(np.bitwise_or.reduce(dq.ravel())) & ~allowed == 0
    assert not np.array_equal(jumps[0], jumps[1])  # cosmic rays differ every epoch


def test_the_noise_matches_err(simulated):
    partition = simulated.partition
    for e in (0, 2):
        image = _open(simulated, e)
        model = partition.model(e)
        good = image["dq"] == 0
        pull = (image["data"] - model) / image["err"]
        assert abs(pull[good].std() - 1) < 0.03
        blank = good & (model < simulated.epochs["sky_dn_s"][e] + 0.05)  # < 0.4σ of starlight
        assert blank.sum() > 1500
        assert abs(pull[blank].std() - 1) < 0.05 and abs(pull[blank].mean()) < 0.05


def test_the_truth_files_reproduce_the_noiseless_images(simulated):
    """Sky + the truth stars rendered by the pipeline's ePSF model with the truth ePSF (and
    the simulator's wing tolerance) is the image the noise was drawn on."""
    stars, epochs = simulated.stars, simulated.epochs
    for e in range(simulated.config.n_epochs):
        x = np.asarray(stars["x_pix"]) + epochs["dx_pix"][e]
        y = np.asarray(stars["y_pix"]) + epochs["dy_pix"][e]
        flux = _truth_fluxes(simulated, e)
        np.testing.assert_array_equal(flux, simulated.partition.fluxes(e))
        truth = np.full((192, 192), epochs["sky_dn_s"][e], np.float32)
        render_stars(truth.shape, x, y, flux, _truth_epsf(simulated, e), out=truth,
                     wing_tolerance=WING_TOLERANCE_DN_S)  # fmt: skip
        model = simulated.partition.model(e)
        np.testing.assert_allclose(truth, model, rtol=1e-6, atol=0)
        # the wings left out: at most the tolerance per star, nowhere near the noise
        whole = np.full((192, 192), epochs["sky_dn_s"][e])
        render_stars(whole.shape, x, y, flux, _truth_epsf(simulated, e), out=whole)
        assert 0 <= (whole - model).sum() <= WING_TOLERANCE_DN_S * len(x)
        assert np.abs(whole - model).max() < 0.02 * np.nanmin(_open(simulated, e)["err"])


def _bright_stars(simulated, n=3):
    """The brightest constant, unsaturated stars well inside the image."""
    stars = simulated.stars
    x, y, flux = (np.asarray(stars[c]) for c in ("x_pix", "y_pix", "flux_dn_s"))
    ok = (
        (flux < 2500)
        & (np.asarray(stars["kind"]) == "constant")
        & (x > 20) & (x < 171) & (y > 20) & (y < 171)
    )  # fmt: skip
    chosen = np.flatnonzero(ok)[np.argsort(-flux[ok])][:n]
    assert len(chosen) == n and flux[chosen].min() > 1000
    return chosen


def _alone(simulated, image, e, k):
    """The image of epoch ``e`` minus the sky and every star but ``k`` (from the truth)."""
    stars, epochs = simulated.stars, simulated.epochs
    others = simulated.partition.fluxes(e)
    others[k] = 0.0
    rest = np.full(image["data"].shape, epochs["sky_dn_s"][e], np.float32)
    x = np.asarray(stars["x_pix"]) + epochs["dx_pix"][e]
    y = np.asarray(stars["y_pix"]) + epochs["dy_pix"][e]
    render_stars(rest.shape, x, y, others, _truth_epsf(simulated, e), out=rest,
                 wing_tolerance=WING_TOLERANCE_DN_S)  # fmt: skip
    return image["data"] - rest, x[k], y[k]


def test_the_summed_flux_of_a_bright_star_matches_the_truth(simulated):
    """Its pixels, once the sky and the neighbours are taken away with the truth, add up to
    its truth flux within the noise."""
    yy, xx = np.mgrid[:192, :192]
    checked = 0
    for k in _bright_stars(simulated):
        for e in range(simulated.config.n_epochs):
            image = _open(simulated, e)
            alone, x, y = _alone(simulated, image, e, k)
            ix, iy = int(np.floor(x)), int(np.floor(y))
            box = (abs(xx - ix) <= 12) & (abs(yy - iy) <= 12)  # the whole ePSF footprint
            if not (image["dq"][box] == 0).all():
                continue
            total = alone[box].sum()
            sigma = np.sqrt(np.sum(image["err"][box] ** 2))
            truth = simulated.stars["flux_dn_s"][k]
            assert abs(total - truth) < 5 * sigma, (k, e, total, truth, sigma)
            assert sigma < 0.01 * truth
            checked += 1
    assert checked >= 4


def test_the_wcs_carries_the_true_pointing_offsets(simulated):
    stars, epochs = simulated.stars, simulated.epochs
    inside = np.flatnonzero(np.asarray(stars["on_image"]))[:200]
    ra, dec = np.asarray(stars["ra_deg"])[inside], np.asarray(stars["dec_deg"])[inside]
    for e in range(simulated.config.n_epochs):
        wcs = _open(simulated, e)["wcs"]
        x, y = wcs.world_to_pixel_values(ra, dec)
        np.testing.assert_allclose(x - stars["x_pix"][inside], epochs["dx_pix"][e], atol=1e-6)
        np.testing.assert_allclose(y - stars["y_pix"][inside], epochs["dy_pix"][e], atol=1e-6)
    assert epochs["dx_pix"][0] == 0.0 and epochs["dy_pix"][0] == 0.0
    assert np.abs(np.concatenate([epochs["dx_pix"], epochs["dy_pix"]])).max() > 0.01


def test_stars_move_on_the_detector_by_the_true_offsets(simulated):
    yy, xx = np.mgrid[:192, :192]
    for k in _bright_stars(simulated):
        for e in range(simulated.config.n_epochs):
            image = _open(simulated, e)
            alone, x, y = _alone(simulated, image, e, k)
            box = (abs(xx - round(x)) <= 4) & (abs(yy - round(y)) <= 4)
            if not (image["dq"][box] == 0).all():
                continue
            weight = np.where(box, alone, 0.0)
            # the first moment of an undersampled star is biased by < 0.02 pixel
            assert np.sum(weight * xx) / weight.sum() == pytest.approx(x, abs=0.03)
            assert np.sum(weight * yy) / weight.sum() == pytest.approx(y, abs=0.03)


def test_microlensing_fluxes_follow_paczynski_at_the_epoch_times(simulated):
    stars, epochs, fluxes = simulated.stars, simulated.epochs, simulated.variable_fluxes
    pspl = np.flatnonzero(np.asarray(stars["model"]) == "pspl")
    assert len(pspl) == 3
    for k in pspl:
        rows = np.asarray(fluxes["truth_id"]) == k
        np.testing.assert_array_equal(fluxes["epoch"][rows], np.arange(len(epochs)))
        t = np.asarray(epochs["time_mjd_tdb"])
        a = pspl_magnification(t, stars["t0_mjd_tdb"][k], stars["u0"][k], stars["te_d"][k])
        fs = stars["fs"][k]
        expected = stars["flux_dn_s"][k] * (fs * a + 1 - fs)
        np.testing.assert_allclose(fluxes["flux_dn_s"][rows], expected, rtol=1e-12)
        np.testing.assert_allclose(
            fluxes["flux_ujy"][rows], expected * wfi.UJY_PER_DN_S, rtol=1e-12
        )
    assert (np.asarray(stars["model"]) == "binary").sum() == 1


def test_the_images_carry_the_magnified_source_flux(simulated):
    """A PSF fit of each event's source, its neighbours taken away with the truth, gives the
    truth flux of that epoch within the noise."""
    stars, epochs, fluxes = simulated.stars, simulated.epochs, simulated.variable_fluxes
    partition = simulated.partition
    events = np.flatnonzero(np.asarray(stars["kind"]) == "microlensing")
    for e in range(simulated.config.n_epochs):
        image = _open(simulated, e)
        epsf = _truth_epsf(simulated, e)
        truth = partition.fluxes(e)
        x = np.asarray(stars["x_pix"]) + epochs["dx_pix"][e]
        y = np.asarray(stars["y_pix"]) + epochs["dy_pix"][e]
        for k in events:
            others = truth.copy()
            others[k] = 0.0
            rest = np.full((192, 192), epochs["sky_dn_s"][e], np.float32)
            render_stars(rest.shape, x, y, others, epsf, out=rest,
                         wing_tolerance=WING_TOLERANCE_DN_S)  # fmt: skip
            shape = render_stars((192, 192), x[k : k + 1], y[k : k + 1], [1.0], epsf)
            use = (shape > 1e-3) & (image["dq"] == 0)
            w = shape[use] / image["err"][use] ** 2
            fit = np.sum(w * (image["data"][use] - rest[use])) / np.sum(w * shape[use])
            sigma = 1 / np.sqrt(np.sum(w * shape[use]))
            row = (np.asarray(fluxes["truth_id"]) == k) & (np.asarray(fluxes["epoch"]) == e)
            expected = float(fluxes["flux_dn_s"][row][0])
            assert expected == pytest.approx(truth[k])
            assert abs(fit - expected) < 5 * sigma, (k, e, fit, expected, sigma)


def test_the_same_seed_gives_the_same_arrays(simulated):
    from msos.simulate.partition import Partition

    again = Partition(simulated.config)
    e = 1
    arrays = again.observe(e)
    image = _open(simulated, e)
    np.testing.assert_array_equal(arrays.data, image["data"])
    np.testing.assert_array_equal(arrays.dq, image["dq"])
    np.testing.assert_array_equal(arrays.err.astype(np.float64), image["err"])
    np.testing.assert_array_equal(again.stars.x, simulated.stars["x_pix"])
