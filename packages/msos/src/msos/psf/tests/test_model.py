"""The ePSF model: conventions, interpolation accuracy, grids, rendering, kernel convolution."""

import numpy as np
import pytest
from scipy import ndimage, special

from msos.psf.model import (
    EPSFGrid,
    _blend,
    _pixel_gradient,
    _star_phase,
    convolve_epsf_with_kernel,
    gaussian_epsf,
    render_stars,
    to_gridded_psf,
)
from roman_schemas.products.msos import GriddedPSF

OVER = 4


def analytic_epsf(u, v, fwhm):
    """Exact ePSF of a Gaussian PSF at pixel offsets (u along x, v along y)."""
    scale = np.sqrt(2.0) * fwhm / 2.3548200450309493

    def profile(t):
        return 0.5 * (special.erf((t + 0.5) / scale) - special.erf((t - 0.5) / scale))

    return profile(np.asarray(u)) * profile(np.asarray(v))


def grid_2x2(size=256, fwhms=(1.2, 1.3, 1.35, 1.4)):
    """Stamps of four widths at (x, y) = (64, 64), (192, 64), (64, 192), (192, 192)."""
    stamps = np.array([gaussian_epsf(f, OVER) for f in fwhms])
    gx, gy = np.meshgrid([size / 4, 3 * size / 4], [size / 4, 3 * size / 4])
    return EPSFGrid(stamps, gx.ravel(), gy.ravel(), OVER), stamps


def test_gaussian_stamp_follows_the_convention():
    stamp = gaussian_epsf(1.3, OVER, half_width_pix=4)
    assert stamp.shape == (33, 33)
    assert stamp.sum() == pytest.approx(OVER**2, rel=1e-6)
    assert np.unravel_index(np.argmax(stamp), stamp.shape) == (16, 16)
    np.testing.assert_allclose(stamp, stamp.T, rtol=1e-6)
    np.testing.assert_allclose(stamp, stamp[::-1, ::-1], rtol=1e-6)


def test_interpolation_reproduces_the_stamp_samples():
    stamp = gaussian_epsf(1.2, OVER)
    epsf = EPSFGrid(stamp, oversampling=OVER)
    c = (stamp.shape[0] - 1) // 2
    jj, ii = np.mgrid[0 : stamp.shape[0], 0 : stamp.shape[1]]
    values = epsf.evaluate((ii - c) / OVER, (jj - c) / OVER)
    np.testing.assert_allclose(values, stamp, atol=1e-6 * stamp.max())


def test_interpolation_between_samples_matches_the_exact_undersampled_epsf():
    # FWHM 1.2 pix: the PSF is undersampled, its 4× ePSF stamp is not
    rng = np.random.default_rng(1)
    u, v = rng.uniform(-3, 3, (2, 5000))
    epsf = EPSFGrid(gaussian_epsf(1.2, OVER), oversampling=OVER)
    exact = analytic_epsf(u, v, 1.2)
    assert np.abs(epsf.evaluate(u, v) - exact).max() < 1e-3 * exact.max()  # measured 5e-4


def test_interpolation_is_scipys_interpolating_cubic_spline():
    stamp = gaussian_epsf(1.3, OVER)
    rng = np.random.default_rng(2)
    u, v = rng.uniform(-4.5, 4.5, (2, 2000))
    c = (stamp.shape[0] - 1) / 2
    scipy_values = ndimage.map_coordinates(
        stamp.astype(float), [c + v * OVER, c + u * OVER], order=3, mode="grid-constant"
    )
    ours = EPSFGrid(stamp, oversampling=OVER).evaluate(u, v)
    np.testing.assert_allclose(ours, scipy_values, atol=1e-6 * stamp.max())


def test_epsf_is_zero_outside_the_stamp():
    stamp = gaussian_epsf(1.3, OVER, half_width_pix=3)
    epsf = EPSFGrid(stamp, oversampling=OVER)
    outside = epsf.evaluate([3.6, -10.0, 0.0, 1e9, np.nan], [0.0, 0.0, 4.0, 0.0, 0.0])
    assert np.abs(outside).max() < 1e-7 * stamp.max()  # the spline's ringing off the edge


@pytest.mark.parametrize("fwhm", [1.2, 1.4])
def test_a_rendered_star_sums_to_its_flux_at_any_subpixel_position(fwhm):
    epsf = EPSFGrid(gaussian_epsf(fwhm, OVER), oversampling=OVER)
    rng = np.random.default_rng(3)
    for x0, y0 in rng.uniform(10, 20, (50, 2)):
        image = render_stars((32, 32), [x0], [y0], [1000.0], epsf)
        assert image.dtype == np.float32
        assert image.sum(dtype=float) == pytest.approx(1000.0, rel=2e-6)


def test_rendered_pixels_are_the_exact_epsf_with_x_the_column():
    epsf = EPSFGrid(gaussian_epsf(1.2, OVER), oversampling=OVER)
    x0, y0 = 10.3, 20.7
    image = render_stars((32, 32), [x0], [y0], [1.0], epsf)
    jj, ii = np.mgrid[0:32, 0:32]
    exact = analytic_epsf(ii - x0, jj - y0, 1.2)
    np.testing.assert_allclose(image, exact, atol=1e-3 * exact.max())
    assert np.unravel_index(np.argmax(image), image.shape) == (21, 10)


def test_the_centroid_of_a_rendered_star_is_its_position():
    rng = np.random.default_rng(4)
    broad = EPSFGrid(gaussian_epsf(2.5, OVER, half_width_pix=6), oversampling=OVER)
    narrow = EPSFGrid(gaussian_epsf(1.2, OVER), oversampling=OVER)
    jj, ii = np.mgrid[0:32, 0:32]
    for x0, y0 in rng.uniform(12, 20, (20, 2)):
        image = render_stars((32, 32), [x0], [y0], [1.0], broad).astype(float)
        assert (image * ii).sum() / image.sum() == pytest.approx(x0, abs=1e-4)
        assert (image * jj).sum() / image.sum() == pytest.approx(y0, abs=1e-4)
        # undersampled: the pixel moment itself is off by up to ~1e-3 pix (pixel phase
        # error), but the rendering adds no shift of its own to the exact ePSF's moment
        image = render_stars((32, 32), [x0], [y0], [1.0], narrow).astype(float)
        exact = analytic_epsf(ii - x0, jj - y0, 1.2)
        moment = (exact * ii).sum() / exact.sum()
        assert (image * ii).sum() / image.sum() == pytest.approx(moment, abs=1e-4)


def test_the_grid_is_interpolated_bilinearly_and_clamped_outside():
    epsf, stamps = grid_2x2()
    for k, (x, y) in enumerate([(64, 64), (192, 64), (64, 192), (192, 192)]):
        np.testing.assert_allclose(epsf.stamp_at(x, y), stamps[k], atol=1e-6)
    np.testing.assert_allclose(epsf.stamp_at(128, 128), stamps.mean(axis=0), atol=1e-6)
    # a quarter of the way in x, half way in y
    expected = 0.5 * (0.75 * stamps[0] + 0.25 * stamps[1]) + 0.5 * (
        0.75 * stamps[2] + 0.25 * stamps[3]
    )
    np.testing.assert_allclose(epsf.stamp_at(96, 128), expected, atol=1e-6)
    np.testing.assert_allclose(epsf.stamp_at(-50, 1e6), stamps[2], atol=1e-6)
    # evaluation at a position interpolates that position's blended stamp
    rng = np.random.default_rng(5)
    u, v = rng.uniform(-3, 3, (2, 200))
    local = EPSFGrid(epsf.stamp_at(96, 150), oversampling=OVER)
    np.testing.assert_allclose(
        epsf.evaluate(u, v, 96, 150), local.evaluate(u, v), atol=1e-6 * stamps.max()
    )


def test_grid_order_does_not_matter_and_a_broken_grid_is_refused():
    stamps = np.array([gaussian_epsf(f, OVER) for f in (1.2, 1.3, 1.35, 1.4)])
    x = np.array([64.0, 192.0, 64.0, 192.0])
    y = np.array([64.0, 64.0, 192.0, 192.0])
    order = [3, 0, 2, 1]
    a = EPSFGrid(stamps, x, y, OVER)
    b = EPSFGrid(stamps[order], x[order], y[order], OVER)
    np.testing.assert_array_equal(a.stamp_at(100, 150), b.stamp_at(100, 150))
    with pytest.raises(ValueError, match="rectangular"):
        EPSFGrid(stamps[:3], x[:3], y[:3], OVER)
    with pytest.raises(ValueError, match="rectangular"):
        EPSFGrid(stamps, x, [64.0, 64.0, 192.0, 200.0], OVER)


def test_from_gridded_psf_normalises_stamps_that_sum_to_one():
    stamps = np.array([gaussian_epsf(f, OVER) for f in (1.2, 1.3, 1.35, 1.4)]) / OVER**2
    psf = GriddedPSF(
        stamps=stamps,
        x_pix=np.array([64.0, 192.0, 64.0, 192.0]),
        y_pix=np.array([64.0, 64.0, 192.0, 192.0]),
        oversampling=OVER,
    )
    epsf = EPSFGrid.from_gridded_psf(psf, normalize=True)
    image = render_stars((256, 256), [100.4], [130.8], [50.0], epsf)
    assert image.sum(dtype=float) == pytest.approx(50.0, rel=1e-5)
    # the schema's example: a sampled Gaussian (not an ePSF) cut at 2.5 σ, so its
    # sub-pixel phases hold different sums and the flux of a star depends on its phase
    example = EPSFGrid.from_gridded_psf(GriddedPSF.example(256), normalize=True)
    image = render_stars((256, 256), [100.4], [130.8], [50.0], example)
    assert image.sum(dtype=float) == pytest.approx(50.0, rel=1e-2)


def test_the_product_form_sums_to_one_and_round_trips():
    epsf, stamps = grid_2x2()
    psf = to_gridded_psf(epsf)
    assert isinstance(psf, GriddedPSF) and psf.oversampling == OVER
    assert psf.stamps.dtype == np.float32 and psf.stamps.shape == stamps.shape
    np.testing.assert_allclose(psf.stamps.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    # row-major, y outer: the order grid_2x2 gave the stamps in
    np.testing.assert_array_equal(psf.x_pix, [64.0, 192.0, 64.0, 192.0])
    np.testing.assert_array_equal(psf.y_pix, [64.0, 64.0, 192.0, 192.0])
    np.testing.assert_allclose(psf.stamps * OVER**2, stamps, rtol=1e-6, atol=1e-9)
    back = EPSFGrid.from_gridded_psf(psf, normalize=True)
    np.testing.assert_allclose(back.stamps, epsf.stamps, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(back.grid_x, epsf.grid_x)
    np.testing.assert_array_equal(back.grid_y, epsf.grid_y)
    x, y = [30.2, 100.7, 200.4], [40.9, 150.1, 220.5]
    np.testing.assert_allclose(
        render_stars((256, 256), x, y, 100.0, back),
        render_stars((256, 256), x, y, 100.0, epsf),
        atol=1e-5,
    )


def test_render_many_stars_equals_the_sum_of_single_renders():
    epsf, _ = grid_2x2()
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-3, 259, (2, 30))
    flux = rng.uniform(1, 100, 30)
    together = render_stars((256, 256), x, y, flux, epsf)
    apart = sum(
        render_stars((256, 256), [a], [b], [f], epsf) for a, b, f in zip(x, y, flux, strict=True)
    )
    np.testing.assert_allclose(together, apart, atol=1e-4)
    # into a float64 image (a residual), where a negative flux subtracts
    residual = together.astype(np.float64)
    render_stars((256, 256), x, y, -flux, epsf, out=residual)
    assert np.abs(residual).max() < 1e-5 * together.max()
    # skipped, not crashing: non-finite values and stars far away
    render_stars((256, 256), [np.nan, 1e12, 5.0], [5.0, 5.0, -1e12], [1.0, 1.0, 1.0], epsf)


def test_a_wing_tolerance_leaves_out_at_most_that_flux_at_any_phase():
    # a core and a broad halo (12 % of the flux), two widths on a grid
    stamps = [
        0.88 * gaussian_epsf(f, OVER, half_width_pix=7)
        + 0.12 * gaussian_epsf(3 * f, OVER, half_width_pix=7)
        for f in (1.2, 1.4)
    ]
    epsf = EPSFGrid(np.array(stamps * 2), [64, 192, 64, 192], [64, 64, 192, 192], OVER)
    rng = np.random.default_rng(8)
    tolerance = 0.01
    radii = epsf.footprint_radii(np.array([0.01, 1.0, 10.0, 100.0, 1e6]), tolerance)
    assert np.all(np.diff(radii) >= 0) and radii[0] == 1 and radii[-1] == epsf.render_radius()
    for flux in (1.0, 10.0, 100.0, 1e4):
        for x0, y0 in rng.uniform(60, 196, (12, 2)):
            whole = render_stars((256, 256), [x0], [y0], [flux], epsf, out=np.zeros((256, 256)))
            cut = render_stars((256, 256), [x0], [y0], [flux], epsf, out=np.zeros((256, 256)),
                               wing_tolerance=tolerance)  # fmt: skip
            assert np.abs(whole - cut).sum() <= tolerance


def test_per_pixel_radii_leave_no_pixel_above_the_tolerance_at_any_phase():
    stamps = [
        0.88 * gaussian_epsf(f, OVER, half_width_pix=7)
        + 0.12 * gaussian_epsf(3 * f, OVER, half_width_pix=7)
        for f in (1.2, 1.4)
    ]
    epsf = EPSFGrid(np.array(stamps * 2), [64, 192, 64, 192], [64, 64, 192, 192], OVER)
    edges = epsf.edge_values()
    assert np.all(np.diff(edges) <= 0) and edges[-1] == 0 and edges[0] > 0
    rng = np.random.default_rng(9)
    tolerance = 0.01
    for flux in (1.0, 10.0, 100.0, 1e4):
        [radius] = epsf.footprint_radii(np.array([flux]), tolerance, per_pixel=True)
        # the per-pixel bound cuts less than the bound on the total flux left out
        assert radius <= epsf.footprint_radii(np.array([flux]), tolerance)[0]
        for x0, y0 in rng.uniform(60, 196, (12, 2)):
            whole = render_stars((256, 256), [x0], [y0], [flux], epsf, out=np.zeros((256, 256)))
            cut = render_stars((256, 256), [x0], [y0], [flux], epsf, out=np.zeros((256, 256)),
                               radii=[radius])  # fmt: skip
            assert np.abs(whole - cut).max() <= tolerance


def test_pixels_are_the_rendered_footprint():
    epsf, _ = grid_2x2()
    values, i0, j0 = epsf.pixels(100.3, 80.6, 2)
    assert (i0, j0) == (98, 79)
    image = render_stars((256, 256), [100.3], [80.6], [1.0], epsf)
    np.testing.assert_allclose(values, image[79:84, 98:103], atol=1e-7)


def test_pixel_gradients_are_the_derivatives_by_the_star_position():
    epsf, _ = grid_2x2()
    x0, y0, h = 100.3, 80.4, 1e-5
    values, d_dx0, d_dy0, i0, j0 = epsf.pixels_with_gradient(x0, y0, 2)
    np.testing.assert_allclose(values, epsf.pixels(x0, y0, 2)[0], atol=1e-12)
    assert (i0, j0) == (98, 78)
    local = EPSFGrid(epsf.stamp_at(x0, y0), oversampling=OVER)  # grid weights held fixed
    numeric_x = (local.pixels(x0 + h, y0, 2)[0] - local.pixels(x0 - h, y0, 2)[0]) / (2 * h)
    numeric_y = (local.pixels(x0, y0 + h, 2)[0] - local.pixels(x0, y0 - h, 2)[0]) / (2 * h)
    np.testing.assert_allclose(d_dx0, numeric_x, atol=1e-6)
    np.testing.assert_allclose(d_dy0, numeric_y, atol=1e-6)
    assert d_dx0[2, 1] < 0 < d_dx0[2, 3]  # moving the star right: left dimmer, right brighter


def test_per_pixel_evaluation_of_a_blend_is_the_footprint():
    # what the catalog's group fit evaluates: a star's own blend of the grid's coefficients,
    # read pixel by pixel (any pixel set), equals the footprint with its gradient
    epsf, _ = grid_2x2()
    x0, y0, radius = 100.3, 80.4, 3
    values, d_dx0, d_dy0, i0, j0 = epsf.pixels_with_gradient(x0, y0, radius)
    coef, cy, cx = epsf.coefficients(radius)
    local = np.empty(coef.shape[2:])
    _blend(coef, epsf.grid_x, epsf.grid_y, x0, y0, local)
    origin = np.empty(4, dtype=np.int64)
    phase = np.empty((4, 4))
    _star_phase(OVER, cy, cx, x0, y0, radius, origin, phase)
    size = 2 * radius + 1
    for j in range(j0 - 1, j0 + size + 1):
        for i in range(i0 - 1, i0 + size + 1):
            inside, p, dp_dx, dp_dy = _pixel_gradient(local, OVER, radius, origin, phase, i, j)
            if not (0 <= i - i0 < size and 0 <= j - j0 < size):
                assert not inside
                continue
            assert inside
            np.testing.assert_allclose(
                [p, dp_dx, dp_dy],
                [values[j - j0, i - i0], d_dx0[j - j0, i - i0], d_dy0[j - j0, i - i0]],
                atol=1e-12,
            )


def test_convolving_with_a_delta_is_the_identity():
    stamp = gaussian_epsf(1.3, OVER)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    full = convolve_epsf_with_kernel(stamp, OVER, delta)
    assert full.shape == (stamp.shape[0] + 4 * OVER, stamp.shape[1] + 4 * OVER)
    np.testing.assert_array_equal(full[8:-8, 8:-8], stamp)
    assert np.all(full[:8] == 0) and np.all(full[:, -8:] == 0)
    np.testing.assert_array_equal(convolve_epsf_with_kernel(stamp, OVER, delta, mode="same"), stamp)


def test_convolving_with_a_shifted_delta_shifts_the_epsf():
    stamp = gaussian_epsf(1.3, OVER)
    shifted = np.zeros((3, 3))
    shifted[1, 2] = 1.0  # δ = (0, +1): one pixel towards +x
    epsf = EPSFGrid(convolve_epsf_with_kernel(stamp, OVER, shifted), oversampling=OVER)
    original = EPSFGrid(stamp, oversampling=OVER)
    u, v = np.random.default_rng(7).uniform(-2, 2, (2, 100))
    np.testing.assert_allclose(epsf.evaluate(u + 1, v), original.evaluate(u, v), atol=1e-7)
    ii = np.mgrid[0:32, 0:32][1]
    image = render_stars((32, 32), [12.3], [15.6], [1.0], epsf)
    assert (image * ii).sum() / image.sum() == pytest.approx(13.3, abs=2e-3)


def test_the_convolved_epsf_is_the_epsf_of_the_convolved_image():
    stamp = gaussian_epsf(1.3, OVER)
    rng = np.random.default_rng(8)
    kernel = np.exp(-(np.hypot(*np.mgrid[-3:4, -3:4]) ** 2) / 2.0) + 0.02 * rng.normal(size=(7, 7))
    kernel[2, 5] += 0.3  # asymmetric, so a correlation would not pass
    x, y = rng.uniform(20, 44, (2, 5))
    flux = rng.uniform(10, 100, 5)
    image = render_stars((64, 64), x, y, flux, EPSFGrid(stamp, oversampling=OVER))
    convolved_image = ndimage.convolve(image.astype(float), kernel, mode="constant")
    convolved_epsf = EPSFGrid(convolve_epsf_with_kernel(stamp, OVER, kernel), oversampling=OVER)
    rendered = render_stars((64, 64), x, y, flux, convolved_epsf)
    np.testing.assert_allclose(rendered, convolved_image, atol=1e-5 * convolved_image.max())
    assert rendered.sum(dtype=float) == pytest.approx(flux.sum() * kernel.sum(), rel=1e-5)


def test_spatially_varying_kernels_convolve_each_grid_stamp():
    epsf, stamps = grid_2x2()
    kernels = np.zeros((2, 2, 3, 3))
    kernels[..., 1, 1] = [[1.0, 2.0], [3.0, 4.0]]  # scaled deltas, one per grid point
    convolved = epsf.convolved(kernels)
    for k, (x, y) in enumerate([(64, 64), (192, 64), (64, 192), (192, 192)]):
        np.testing.assert_allclose(convolved.stamp_at(x, y)[4:-4, 4:-4], (k + 1) * stamps[k])
    one = epsf.convolved(kernels[0, 0])
    np.testing.assert_allclose(one.stamp_at(192, 192)[4:-4, 4:-4], stamps[3])
    with pytest.raises(ValueError, match="odd"):
        convolve_epsf_with_kernel(stamps, OVER, np.ones((4, 4)))
