"""Forced PSF photometry, specified on synthetic images whose truth is known exactly."""

import numpy as np
import pytest
from scipy import ndimage

from msos.photometry.kernel import forced_psf_photometry
from msos.psf.model import EPSFGrid, gaussian_epsf, render_stars
from roman_schemas.products.msos import PhotometryFlag as F

OVER = 4
SKY_VARIANCE = 25.0


def spatially_varying_epsf(size):
    """FWHM 1.2 → 1.4 pix over a 2×2 grid, so every test also crosses grid cells."""
    stamps = np.array([gaussian_epsf(f, OVER) for f in (1.2, 1.3, 1.3, 1.4)])
    gx, gy = np.meshgrid([size / 4, 3 * size / 4], [size / 4, 3 * size / 4])
    return EPSFGrid(stamps, gx.ravel(), gy.ravel(), OVER)


def scene(n_side=64, spacing=8, background=0.0, seed=0):
    """Isolated stars (``spacing`` pix apart, random sub-pixel phases, fluxes from S/N ~3 to
    ~3000) plus Gaussian noise whose variance — sky plus the stars' own photon noise — is
    known exactly and passed to the fit."""
    rng = np.random.default_rng(seed)
    size = n_side * spacing + 8
    centres = 8 + spacing * np.arange(n_side)
    x, y = (c.ravel() + rng.uniform(-0.5, 0.5, c.size) for c in np.meshgrid(centres, centres))
    flux = rng.lognormal(np.log(300.0), 1.5, x.size)
    epsf = spatially_varying_epsf(size)
    model = render_stars((size, size), x, y, flux, epsf) + np.float32(background)
    variance = (SKY_VARIANCE + 0.5 * (model - background)).astype(np.float32)
    image = (model + rng.normal(0.0, np.sqrt(variance))).astype(np.float32)
    return image, variance, x, y, flux, epsf


@pytest.mark.parametrize(
    ("radius", "fit_background", "background"),
    [(2, False, 0.0), (1, False, 0.0), (2, True, 40.0), (3, True, 40.0)],
)
def test_fluxes_are_unbiased_and_errors_are_right(radius, fit_background, background):
    image, variance, x, y, flux, epsf = scene(background=background)
    assert x.size == 4096
    fit, err, flags = forced_psf_photometry(
        image, variance, None, x, y, epsf, radius, fit_background=fit_background
    )
    assert np.all(flags == 0)
    pull = (fit - flux) / err
    assert abs(np.median(pull)) < 0.05
    assert abs(np.mean(pull)) < 0.05
    assert np.std(pull) == pytest.approx(1.0, abs=0.05)


def test_a_noiseless_image_gives_the_true_fluxes():
    image, variance, x, y, flux, epsf = scene(n_side=16, background=40.0, seed=9)
    noiseless = render_stars(image.shape, x, y, flux, epsf) + np.float32(40.0)
    fit, _, _ = forced_psf_photometry(noiseless, variance, None, x, y, epsf, fit_background=True)
    np.testing.assert_allclose(fit, flux, rtol=1e-4, atol=0.01)
    fit, _, _ = forced_psf_photometry(noiseless - 40, variance, None, x, y, epsf, radius=1)
    np.testing.assert_allclose(fit, flux, rtol=1e-5, atol=1e-3)


def test_pure_noise_gives_zero_flux_within_the_errors():
    rng = np.random.default_rng(1)
    size = 264
    image = rng.normal(0.0, 3.0, (size, size)).astype(np.float32)
    variance = np.full((size, size), 9.0, dtype=np.float32)
    centres = 6 + 8 * np.arange(32)  # 1024 independent footprints
    x, y = (c.ravel() + rng.uniform(-0.5, 0.5, c.size) for c in np.meshgrid(centres, centres))
    flux, err, flags = forced_psf_photometry(
        image, variance, None, x, y, spatially_varying_epsf(size)
    )
    pull = flux / err
    assert np.all(flags == 0)
    assert abs(np.mean(pull)) < 0.1  # 1024 pulls: 3 standard errors
    assert np.std(pull) == pytest.approx(1.0, abs=0.07)
    assert np.mean(np.abs(pull) > 2) == pytest.approx(0.0455, abs=0.02)


def brute_force(image, variance, bad, x0, y0, epsf, radius, fit_background):
    """Weighted least squares with numpy, the ePSF from scipy's cubic spline of the blended
    stamp: independent of the numba code path."""
    stamp = epsf.stamp_at(x0, y0).astype(float)
    c = (stamp.shape[0] - 1) / 2
    ix, iy = int(np.floor(x0 + 0.5)), int(np.floor(y0 + 0.5))
    jj, ii = np.mgrid[iy - radius : iy + radius + 1, ix - radius : ix + radius + 1]
    inside = (ii >= 0) & (jj >= 0) & (ii < image.shape[1]) & (jj < image.shape[0])
    jj, ii = jj[inside], ii[inside]
    keep = ~bad[jj, ii] & np.isfinite(image[jj, ii]) & (variance[jj, ii] > 0)
    jj, ii = jj[keep], ii[keep]
    psf = ndimage.map_coordinates(
        stamp, [c + (jj - y0) * OVER, c + (ii - x0) * OVER], order=3, mode="grid-constant"
    )
    design = np.stack([psf, np.ones_like(psf)], axis=1) if fit_background else psf[:, None]
    weight = 1.0 / np.sqrt(variance[jj, ii].astype(float))
    solution = np.linalg.lstsq(design * weight[:, None], image[jj, ii] * weight, rcond=None)[0]
    covariance = np.linalg.inv((design * weight[:, None] ** 2).T @ design)
    return solution[0], np.sqrt(covariance[0, 0])


@pytest.mark.parametrize("fit_background", [False, True])
def test_isolated_stars_match_brute_force_least_squares(fit_background):
    image, variance, x, y, _, epsf = scene(n_side=16, background=10.0, seed=2)
    bad = np.zeros(image.shape, dtype=bool)
    bad[int(y[5]), int(x[5]) + 1] = True  # a star with a masked pixel in its footprint
    x, y = np.append(x, [0.3, 50.2]), np.append(y, [40.6, 135.4])  # plus edge stars
    flux, err, _ = forced_psf_photometry(
        image, variance, bad, x, y, epsf, 2, fit_background=fit_background
    )
    for k in range(x.size):
        expected, expected_err = brute_force(
            image, variance, bad, x[k], y[k], epsf, 2, fit_background
        )
        assert flux[k] == pytest.approx(expected, rel=1e-5, abs=1e-4 * expected_err)
        assert err[k] == pytest.approx(expected_err, rel=1e-5)


def test_bad_pixels_and_nans_never_reach_a_result_and_are_flagged():
    image, variance, x, y, flux, epsf = scene(n_side=16, seed=3)
    bad = np.zeros(image.shape, dtype=bool)
    clean = forced_psf_photometry(image, variance, bad, x, y, epsf)
    core = (int(np.floor(y[20] + 0.5)), int(np.floor(x[20] + 0.5)))  # star 20's central pixel
    wing = (int(np.floor(y[40] + 0.5)) + 2, int(np.floor(x[40] + 0.5)) + 2)  # star 40's corner
    nan_var = (int(np.floor(y[60] + 0.5)), int(np.floor(x[60] + 0.5)))  # star 60's centre
    bad[core] = bad[wing] = True
    garbage = image.copy()
    garbage[core], garbage[wing] = 1e30, np.nan
    garbage_var = variance.copy()
    garbage_var[nan_var] = np.nan

    masked = forced_psf_photometry(garbage, garbage_var, bad, x, y, epsf)
    # the same pixels masked but holding ordinary values: bit-identical results
    tidy_var = variance.copy()
    tidy_var[nan_var] = 1.0
    bad_tidy = bad.copy()
    bad_tidy[nan_var] = True
    tidy = forced_psf_photometry(image, tidy_var, bad_tidy, x, y, epsf)
    for a, b in zip(masked, tidy, strict=True):
        np.testing.assert_array_equal(a, b)

    fit, err, flags = masked
    touched = [20, 40, 60]
    others = np.setdiff1d(np.arange(x.size), touched)
    for a, b in zip(masked, clean, strict=True):  # neighbours unchanged
        np.testing.assert_array_equal(a[others], b[others])
    assert flags[20] == F.BAD_PIXEL and flags[60] == F.BAD_PIXEL
    assert flags[40] == 0  # a wing pixel: excluded, not worth a flag
    assert np.all(np.abs(fit[touched] - flux[touched]) < 5 * err[touched])
    assert np.all(err[[20, 60]] > 1.1 * clean[1][[20, 60]])  # less data, larger errors


def test_saturated_pixels_are_excluded_and_flagged_saturated():
    image, variance, x, y, flux, epsf = scene(n_side=4, seed=4)
    saturated = np.zeros(image.shape, dtype=bool)
    saturated[int(np.floor(y[5] + 0.5)), int(np.floor(x[5] + 0.5))] = True
    image[saturated] = 6e4
    fit, err, flags = forced_psf_photometry(image, variance, None, x, y, epsf, saturated=saturated)
    assert flags[5] == F.SATURATED
    assert abs(fit[5] - flux[5]) < 5 * err[5]
    assert np.all(flags[np.arange(x.size) != 5] == 0)


def test_stars_at_the_edge_are_fitted_on_what_remains_and_flagged():
    size = 64
    epsf = spatially_varying_epsf(size)
    x = np.array([0.3, 63.4, 1.4, 30.0, 0.2, 62.6, 63.0])
    y = np.array([30.0, 20.0, 40.2, 0.2, -0.1, 63.2, 0.0])
    truth = np.full(x.size, 5000.0)
    rng = np.random.default_rng(5)
    model = render_stars((size, size), x, y, truth, epsf)
    variance = (SKY_VARIANCE + 0.5 * model).astype(np.float32)
    image = (model + rng.normal(0, np.sqrt(variance))).astype(np.float32)
    flux, err, flags = forced_psf_photometry(image, variance, None, x, y, epsf)
    assert np.all(flags == F.EDGE)
    assert np.all(np.abs(flux - truth) < 5 * err)


def test_positions_off_the_image_or_unusable_give_nan_and_no_data():
    size = 64
    epsf = spatially_varying_epsf(size)
    image = np.ones((size, size), dtype=np.float32)
    variance = np.ones((size, size), dtype=np.float32)
    x = np.array([-3.0, 1e12, -1e300, np.nan, 10.0, np.inf, -1.2])
    y = np.array([10.0, 10.0, 5.0, 10.0, np.nan, 3.0, -1.2])
    flux, err, flags = forced_psf_photometry(image, variance, None, x, y, epsf)
    assert np.all(np.isnan(flux)) and np.all(np.isnan(err))
    assert np.all(flags & F.NO_DATA)
    assert np.all(flags[[0, 1, 2, 6]] == F.EDGE | F.NO_DATA)
    assert np.all(flags[[3, 4, 5]] == F.NO_DATA)


def test_a_fully_masked_footprint_gives_nan_and_no_data():
    image, variance, x, y, _, epsf = scene(n_side=4, seed=6)
    bad = np.zeros(image.shape, dtype=bool)
    iy, ix = int(np.floor(y[3] + 0.5)), int(np.floor(x[3] + 0.5))
    bad[iy - 1 : iy + 2, ix - 1 : ix + 2] = True  # the core: > half of the flux
    flux, err, flags = forced_psf_photometry(image, variance, bad, x, y, epsf)
    assert np.isnan(flux[3]) and np.isnan(err[3])
    assert flags[3] == F.BAD_PIXEL | F.NO_DATA
    fit_bg = forced_psf_photometry(image, variance, bad, x, y, epsf, fit_background=True)
    assert fit_bg[2][3] == F.BAD_PIXEL | F.NO_DATA


@pytest.mark.parametrize("fit_background", [False, True])
def test_garbage_data_never_raises(fit_background):
    epsf = spatially_varying_epsf(32)
    x, y = np.array([5.0, 16.3, 30.9]), np.array([5.0, 16.8, 1.0])
    for image, variance in [
        (np.full((32, 32), np.nan), np.ones((32, 32))),
        (np.ones((32, 32)), np.zeros((32, 32))),
        (np.ones((32, 32)), np.full((32, 32), np.inf)),
        (np.full((32, 32), np.inf), -np.ones((32, 32))),
    ]:
        flux, err, flags = forced_psf_photometry(
            image, variance, None, x, y, epsf, fit_background=fit_background
        )
        assert np.all(np.isnan(flux)) and np.all(flags & F.NO_DATA)
    flux, err, flags = forced_psf_photometry(
        np.ones((32, 32)), np.ones((32, 32)), None, [], [], epsf
    )
    assert flux.size == err.size == flags.size == 0


def test_output_types_and_argument_checks():
    image, variance, x, y, _, epsf = scene(n_side=2, seed=7)
    flux, err, flags = forced_psf_photometry(
        image.astype(float), variance, np.zeros(image.shape, int), x, y, epsf
    )
    assert (flux.dtype, err.dtype, flags.dtype) == (np.float32, np.float32, np.uint16)
    with pytest.raises(ValueError, match="variance"):
        forced_psf_photometry(image, variance[1:], None, x, y, epsf)
    with pytest.raises(ValueError, match="differ"):
        forced_psf_photometry(image, variance, None, x, y[1:], epsf)


def test_an_unfitted_background_biases_fluxes_and_the_background_term_removes_it():
    image, variance, x, y, flux, epsf = scene(n_side=16, background=30.0, seed=8)
    without, err, _ = forced_psf_photometry(image, variance, None, x, y, epsf)
    with_bg, err_bg, _ = forced_psf_photometry(
        image, variance, None, x, y, epsf, fit_background=True
    )
    assert np.median((without - flux) / err) > 5
    assert abs(np.median((with_bg - flux) / err_bg)) < 0.15
    # the price of the background term with 5×5 pixels at FWHM 1.2–1.4 pix: ~8 %
    assert np.median(err_bg / err) == pytest.approx(1.08, abs=0.03)
